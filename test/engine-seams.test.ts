import { describe, expect, it } from 'vitest';
import { silentLogger, systemClock, type Flow } from '../src/index.js';
import { dialect, newFlow, openTestTaskflow } from './support/taskflow.js';
import { until } from './support/until.js';

/**
 * The seams between the engine's parts, as the wave-3 review found them leaking:
 * every source of wakes takes handler slots the same way, nothing starts once
 * stop() resolved, and a claim never costs an attempt by waiting.
 */

type Tf = Awaited<ReturnType<typeof openTestTaskflow>>;

async function eventFlows(tf: Tf, count: number, topic = 'payments'): Promise<Flow[]> {
  const flows: Flow[] = [];
  for (let i = 0; i < count; i++) {
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    flows.push(await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic, correlationId: `inv-${i}` }));
  }
  return flows;
}

/** Counts handlers running at once, and each flow's handler starts. */
function handlerProbe(hold: () => Promise<void> = () => new Promise((resolve) => setTimeout(resolve, 5))) {
  const probe = {
    running: 0,
    most: 0,
    starts: new Map<string, number>(),
    finished: new Set<string>(),
    async onResume(flow: Flow): Promise<void> {
      probe.running++;
      probe.most = Math.max(probe.most, probe.running);
      probe.starts.set(flow.id, (probe.starts.get(flow.id) ?? 0) + 1);
      try {
        await hold();
      } finally {
        probe.running--;
        probe.finished.add(flow.id);
      }
    },
  };
  return probe;
}

describe(`every source of wakes takes a handler slot (${dialect})`, () => {
  it('one deliverBatch of 100 events runs at most resumeConcurrency handlers at once, each flow once', async () => {
    const probe = handlerProbe();
    const tf = await openTestTaskflow({ resumeConcurrency: 2, onResume: (flow) => probe.onResume(flow) });
    const flows = await eventFlows(tf, 100);
    await tf.start();
    const outcomes = await tf.engine.deliverBatch(flows.map((_, i) => ({ topic: 'payments', correlationId: `inv-${i}` })));
    expect(outcomes.every((outcome) => outcome.ok && outcome.result.resumed.length === 1)).toBe(true);
    await until(() => probe.finished.size === flows.length, 60_000);
    expect(probe.most).toBeLessThanOrEqual(2);
    expect([...probe.starts.values()].every((n) => n === 1)).toBe(true);
  });

  it('single deliveries, a batch and signals together never exceed resumeConcurrency', async () => {
    const probe = handlerProbe();
    const tf = await openTestTaskflow({ resumeConcurrency: 3, onResume: (flow) => probe.onResume(flow) });
    const byEvent = await eventFlows(tf, 30);
    const bySignal: Flow[] = [];
    for (let i = 0; i < 10; i++) {
      const flow = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(flow.id);
      bySignal.push(await tf.manager.setWaiting(flow.id, { kind: 'manual' }));
    }
    await tf.start();
    await Promise.all([
      tf.engine.deliverBatch(byEvent.slice(0, 15).map((_, i) => ({ topic: 'payments', correlationId: `inv-${i}` }))),
      ...byEvent.slice(15).map((_, i) => tf.engine.deliver({ topic: 'payments', correlationId: `inv-${i + 15}` })),
      ...bySignal.map((flow) => tf.engine.signal(flow.id)),
    ]);
    await until(() => probe.finished.size === 40, 60_000);
    expect(probe.most).toBeLessThanOrEqual(3);
  });
});

describe(`a clean stop (${dialect})`, () => {
  it('starts no onResume once stop() resolved, and a restart resumes nothing twice', async () => {
    const probe = handlerProbe();
    let stopped = false;
    let startedAfterStop = 0;
    const onResume = async (flow: Flow) => {
      if (stopped) startedAfterStop++;
      await probe.onResume(flow);
    };
    const tf = await openTestTaskflow({ resumeConcurrency: 4, onResume });
    const flows = await eventFlows(tf, 60);
    await tf.start();
    // Deliveries in flight while the engine stops: each either lands before, or is given back for the next start.
    const deliveries = flows.map((_, i) => tf.engine.deliver({ topic: 'payments', correlationId: `inv-${i}` }).catch(() => undefined));
    await new Promise((resolve) => setTimeout(resolve, 2));
    await tf.engine.stop();
    stopped = true;
    await Promise.all(deliveries);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(startedAfterStop).toBe(0);
    const handledBefore = new Set(probe.finished);

    // The next engine on the same database delivers what the first did not, and nothing it did.
    let redelivered = 0;
    const next = await openTestTaskflow({
      database: tf.path,
      clock: tf.clock,
      onResume: async (flow) => {
        if (handledBefore.has(flow.id)) redelivered++;
        await probe.onResume(flow);
      },
    });
    await next.start();
    const resumed = (await Promise.all(flows.map((flow) => next.store.getFlow(flow.id)))).filter((flow) => flow?.status === 'running');
    await until(() => probe.finished.size === resumed.length, 30_000);
    expect(redelivered).toBe(0);
    expect([...probe.starts.values()].every((n) => n === 1)).toBe(true);
  });

  it('gives back notifications claimed ahead when it stops: due again, no attempt counted', async () => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const probe = handlerProbe(() => hold);
    const tf = await openTestTaskflow({ resumeConcurrency: 1, resumeLease: '5s', logger: silentLogger, onResume: (flow) => probe.onResume(flow) });
    const flows = await eventFlows(tf, 5);
    await tf.start();
    await tf.engine.deliverBatch(flows.map((_, i) => ({ topic: 'payments', correlationId: `inv-${i}` })));
    await until(() => probe.running === 1);
    const stopping = tf.engine.stop();
    setTimeout(release, 50);
    await stopping;
    const notifications = await tf.store.listNotifications(flows.map((flow) => flow.id));
    // The one that ran is removed; the four claimed ahead are due again at once, with no attempt counted.
    expect(notifications).toHaveLength(4);
    for (const notification of notifications) {
      expect(notification.attempts).toBe(0);
      expect(notification.dueAt.getTime()).toBeLessThanOrEqual(tf.clock.now());
    }
  });
});

describe(`claims never cost an attempt by waiting (${dialect})`, () => {
  it('with a hung handler holding the only slot, work claimed ahead is given back, never parked dead without running', async () => {
    const reached = new Set<string>();
    let hung: string | undefined;
    const tf = await openTestTaskflow({
      resumeConcurrency: 1,
      resumeLease: '400ms',
      maxResumeAttempts: 2,
      logger: silentLogger,
      clock: systemClock,
      onResume: async (flow) => {
        reached.add(flow.id);
        if (flow.id === hung) await new Promise<void>(() => undefined);
      },
    });
    const flows = await eventFlows(tf, 10);
    hung = flows[0]!.id;
    await tf.start();
    await tf.engine.deliver({ topic: 'payments', correlationId: 'inv-0' });
    await until(() => reached.has(hung!));
    await tf.engine.deliverBatch(flows.slice(1).map((_, i) => ({ topic: 'payments', correlationId: `inv-${i + 1}` })));
    // Several leases pass: the hung handler overruns each, the others get their turn.
    await until(() => reached.size === flows.length, 30_000);
    const dead = await tf.store.listDeadNotifications(100);
    for (const notification of dead) expect(reached.has(notification.flowId)).toBe(true);
    expect(dead.filter((notification) => notification.flowId !== hung)).toEqual([]);
  });
});

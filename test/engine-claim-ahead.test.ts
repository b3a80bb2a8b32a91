import { describe, expect, it } from 'vitest';
import { silentLogger, type Flow } from '../src/index.js';
import { dialect, newFlow, openTestTaskflow, T0 } from './support/taskflow.js';
import { until } from './support/until.js';

/**
 * A burst of resumes larger than the handler slots: the engine claims the
 * notifications of the flows it resumes in the same commit (ahead of a free
 * slot) and starts them as slots free, never more than resumeConcurrency at once.
 */

type Tf = Awaited<ReturnType<typeof openTestTaskflow>>;

async function timerFlows(tf: Tf, count: number, at: number): Promise<Flow[]> {
  const flows: Flow[] = [];
  for (let i = 0; i < count; i++) {
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    flows.push(await tf.manager.setWaiting(flow.id, { kind: 'timer', at }));
  }
  return flows;
}

describe(`claiming resumes ahead of a free slot (${dialect})`, () => {
  it('hands every flow of a due burst to onResume exactly once, never more than resumeConcurrency at once', async () => {
    let running = 0;
    let most = 0;
    const handled = new Map<string, number>();
    const tf = await openTestTaskflow({
      resumeConcurrency: 2,
      onResume: async (flow) => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 2));
        running--;
        handled.set(flow.id, (handled.get(flow.id) ?? 0) + 1);
      },
    });
    const flows = await timerFlows(tf, 40, T0 + 1_000);
    await tf.start();
    tf.clock.set(T0 + 1_000);
    const result = await tf.engine.tick();
    expect(result.resumed).toBe(40);
    await until(() => handled.size === flows.length, 30_000);
    expect(most).toBeLessThanOrEqual(2);
    expect([...handled.values()].every((n) => n === 1)).toBe(true);
    await until(async () => (await tf.store.listNotifications(flows.map((f) => f.id))).length === 0);
  });

  it('claims no further ahead than slow handlers can start within their lease: none is parked dead', async () => {
    const handled = new Set<string>();
    const tf = await openTestTaskflow({
      resumeConcurrency: 1,
      resumeLease: '2s',
      maxResumeAttempts: 2,
      logger: silentLogger,
      onResume: async (flow) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        handled.add(flow.id);
      },
    });
    const flows = await timerFlows(tf, 6, T0 + 1_000);
    await tf.start();
    tf.clock.set(T0 + 1_000);
    await tf.engine.tick();
    // The lease runs on the test's clock; the handlers on the host's. Move the clock on as they go.
    await until(() => {
      tf.clock.advance(10);
      return handled.size === flows.length;
    }, 60_000);
    await until(async () => (await tf.store.listNotifications(flows.map((f) => f.id))).length === 0);
    expect(await tf.store.listDeadNotifications(10)).toEqual([]);
  });

  it('gives back the notifications it claimed ahead when it stops: due at once, no attempt counted', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const started: string[] = [];
    const tf = await openTestTaskflow({
      resumeConcurrency: 1,
      logger: silentLogger,
      onResume: async (flow) => {
        started.push(flow.id);
        await gate;
      },
    });
    const flows = await timerFlows(tf, 4, T0 + 1_000);
    const ids = flows.map((f) => f.id);
    await tf.start();
    tf.clock.set(T0 + 1_000);
    await tf.engine.tick();
    await until(() => started.length === 1);
    // One handler runs, one more is claimed ahead of a free slot, the rest wait unclaimed.
    expect((await tf.store.listNotifications(ids)).filter((n) => n.attempts === 1)).toHaveLength(2);
    const stopping = tf.engine.stop();
    // Given back while the running handler still holds its slot.
    await until(async () => (await tf.store.listNotifications(ids)).filter((n) => n.attempts === 1).length === 1);
    open();
    await stopping;
    const left = await tf.store.listNotifications(ids);
    expect(left.map((n) => n.flowId).sort()).toEqual(ids.filter((id) => id !== started[0]).sort());
    expect(left.every((n) => n.attempts === 0 && n.dueAt.getTime() === T0 + 1_000)).toBe(true);
  });

  it('gives back a notification claimed ahead that waited past half its lease: claimed afresh, its wait costs no attempt', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const started: string[] = [];
    const tf = await openTestTaskflow({
      resumeConcurrency: 1,
      resumeLease: '1s',
      // One attempt only: had the wait counted, the notification would be parked dead.
      maxResumeAttempts: 1,
      logger: silentLogger,
      onResume: async (flow) => {
        started.push(flow.id);
        if (started.length === 1) await gate;
      },
    });
    const flows = await timerFlows(tf, 2, T0 + 1_000);
    const ids = flows.map((f) => f.id);
    await tf.start();
    tf.clock.set(T0 + 1_000);
    await tf.engine.tick();
    await until(() => started.length === 1);
    tf.clock.advance(600);
    open();
    await until(() => started.length === 2);
    expect(new Set(started)).toEqual(new Set(ids));
    await until(async () => (await tf.store.listNotifications(ids)).length === 0);
    expect(await tf.store.listDeadNotifications(10)).toEqual([]);
  });
});

import { RetentionPolicy } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Flow, Taskflow, TaskflowOptions } from '../src/index.js';
import { startNatsServer, type NatsServer } from './support/nats-server.js';
import { consumed, usePrivateNats } from './support/private-nats.js';
import { openTestTaskflow } from './support/taskflow.js';
import { until } from './support/until.js';
import { resumedCount, waitingOnEvent } from './support/event-flows.js';

type TestTaskflow = Awaited<ReturnType<typeof openTestTaskflow>>;

const bus = usePrivateNats();


beforeEach(async () => {
  // Every test starts with no stream, so each creates the default TASKFLOW afresh.
  for await (const name of bus.jsm.streams.names()) await bus.jsm.streams.delete(name);
});

/** The subjects this suite's runtimes declare (captured by their stream) unless a test says otherwise. */
const DECLARED = ['invoices.>', 'jobs.>', 'load.>', 'orders.>'];

/** A runtime whose bridge talks to this suite's server, started. */
async function openBridged(nats: Partial<NonNullable<TaskflowOptions['nats']>> = {}, options: TaskflowOptions = {}): Promise<TestTaskflow> {
  const tf = await openTestTaskflow({ ...options, nats: { servers: bus.server.url, subjects: DECLARED, connection: { reconnectTimeWait: 50 }, ...nats } });
  await tf.start();
  return tf;
}

function publish(subject: string, body: unknown, hdrs: Record<string, string> = {}): void {
  const h = headers();
  for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
  bus.nc.publish(subject, typeof body === 'string' ? body : JSON.stringify(body), { headers: h });
}

async function statusOf(tf: Taskflow, id: string): Promise<string | undefined> {
  return (await tf.manager.get(id))?.status;
}

describe('NATS bridge on JetStream', () => {
  it('an event on the topic a wait declared resumes the flow with the payload', async () => {
    const tf = await openBridged();
    expect(tf.bridge!.mode).toBe('jetstream');
    const flow = await waitingOnEvent(tf, 'invoices.paid', 'INV-42');
    // setWaiting resolved: the topic is covered already, even for a plain core publish.
    publish('invoices.paid', { payload: { amount: 120 } }, { 'Taskflow-Correlation-Id': 'INV-42' });
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
    const resumed = await tf.manager.get(flow.id);
    expect(resumed!.state.resume_event).toEqual({ amount: 120 });
    const last = (await tf.manager.listEvents(flow.id)).at(-1)!;
    expect(last).toMatchObject({ kind: 'resumed', payload: { reason: 'event', topic: 'invoices.paid', correlationId: 'INV-42' } });
  });

  it('reads the correlation id from the JSON body, and without a payload field hands over the whole body', async () => {
    const tf = await openBridged();
    const flow = await waitingOnEvent(tf, 'invoices.paid', 'INV-43');
    await bus.js.publish('invoices.paid', JSON.stringify({ correlation_id: 'INV-43', amount: 80 }));
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
    expect((await tf.manager.get(flow.id))!.state.resume_event).toEqual({ correlation_id: 'INV-43', amount: 80 });
  });

  it('keeps an event that arrives before the wait, and resumes the flow the moment it waits', async () => {
    const tf = await openBridged({ subjects: ['payments.>'] });
    await bus.js.publish('payments.received', JSON.stringify({ correlation_id: 'INV-7', payload: { paid: 50 } }));
    await consumed(bus);
    const flow = await waitingOnEvent(tf, 'payments.received', 'INV-7');
    expect(flow.status).toBe('running');
    expect(flow.state.resume_event).toEqual({ paid: 50 });
  });

  it('honours the reference subject taskflow.resume { flow_id, topic, correlation_id, payload }', async () => {
    const tf = await openBridged();
    const flow = await waitingOnEvent(tf, 'orders.shipped', 'O-1');
    await bus.js.publish('taskflow.resume', JSON.stringify({ flow_id: flow.id, topic: 'orders.shipped', correlation_id: 'O-1', payload: { carrier: 'UPS' } }));
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
    expect((await tf.manager.get(flow.id))!.state.resume_event).toEqual({ carrier: 'UPS' });
  });

  it('refuses, with a message that says what to change, a second stream whose subjects overlap the first', async () => {
    const first = await openBridged();
    await expect(openBridged({ stream: 'OTHER', durable: 'other' })).rejects.toThrow(/overlap.*stream TASKFLOW.*nats\.resumeSubject/s);
    const own = await openBridged({ stream: 'OTHER', durable: 'other', resumeSubject: 'other.resume', subjects: ['other.orders.>'] });
    const flow = await waitingOnEvent(own, 'other.orders.shipped', 'O-2');
    await bus.js.publish('other.resume', JSON.stringify({ topic: 'other.orders.shipped', correlation_id: 'O-2', payload: { ok: true } }));
    await until(async () => (await statusOf(own, flow.id)) === 'running');
    expect(first.bridge).toBeDefined();
  });

  it('resumes once for a duplicate message (same Nats-Msg-Id), even when the flow waits again on the same key', async () => {
    const tf = await openBridged();
    const flow = await waitingOnEvent(tf, 'invoices.paid', 'INV-9');
    const send = () => bus.js.publish('invoices.paid', JSON.stringify({ correlation_id: 'INV-9' }), { msgID: 'evt-9' });
    await send();
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'invoices.paid', correlationId: 'INV-9' });
    await send();
    // A plain publish bypasses the stream's duplicate window; the engine still knows the id.
    publish('invoices.paid', { correlation_id: 'INV-9' }, { 'Nats-Msg-Id': 'evt-9' });
    await consumed(bus);
    expect(await statusOf(tf, flow.id)).toBe('waiting');
    expect(await resumedCount(tf, flow.id)).toBe(1);
  });

  it('terminates a malformed message and changes nothing; the next good event still lands', async () => {
    const tf = await openBridged();
    const flow = await waitingOnEvent(tf, 'invoices.paid', 'INV-1');
    const before = await tf.manager.get(flow.id);
    await bus.js.publish('invoices.paid', JSON.stringify({ amount: 1 })); // no correlation id
    await bus.js.publish('invoices.paid', new Uint8Array([0xff, 0xfe, 0x00])); // not UTF-8
    await bus.js.publish('taskflow.resume', 'not json');
    await bus.js.publish('taskflow.resume', JSON.stringify({ topic: 'invoices.paid' })); // no correlation_id
    await consumed(bus);
    const info = await bus.jsm.consumers.info('TASKFLOW', 'taskflow');
    expect(info.num_redelivered).toBe(0);
    expect(await tf.manager.get(flow.id)).toEqual(before);
    await bus.js.publish('invoices.paid', JSON.stringify({ correlation_id: 'INV-1' }));
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
    expect(await resumedCount(tf, flow.id)).toBe(1);
  });

  it('publishes lifecycle events on taskflow.flow.<id>.<kind>', async () => {
    const seen: Array<{ subject: string; body: Record<string, unknown> }> = [];
    const sub = bus.nc.subscribe('taskflow.flow.>', { callback: (_e, m) => void seen.push({ subject: m.subject, body: m.json() }) });
    await bus.nc.flush();
    const tf = await openBridged({ publishLifecycle: true });
    const flow = await waitingOnEvent(tf, 'invoices.paid', 'INV-5');
    await bus.js.publish('invoices.paid', JSON.stringify({ correlation_id: 'INV-5', payload: { ok: true } }));
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
    await tf.manager.finish(flow.id);
    await until(() => seen.length >= 3);
    sub.unsubscribe();
    expect(seen.map((m) => m.subject)).toEqual([`taskflow.flow.${flow.id}.waiting`, `taskflow.flow.${flow.id}.resumed`, `taskflow.flow.${flow.id}.finished`]);
    expect(seen[1]!.body).toMatchObject({ flow_id: flow.id, kind: 'resumed', status: 'running', revision: 3, detail: { reason: 'event', payload: { ok: true } } });
  });

  it('on start subscribes the topics that waiting flows declared before, read from the database; the stream keeps to the declared subjects', async () => {
    const offline = await openTestTaskflow();
    const a = await waitingOnEvent(offline, 'shipments.delivered', 'S-1');
    await waitingOnEvent(offline, 'shipments.delivered', 'S-2');
    await waitingOnEvent(offline, 'refunds.issued', 'R-1');
    await waitingOnEvent(offline, 'payments.received', 'P-1');
    await offline.close();
    const tf = await openBridged({ subjects: ['payments.>'] }, { database: offline.path });
    expect(tf.bridge!.coveredSubjects()).toEqual(['taskflow.resume', 'payments.>', 'refunds.issued', 'shipments.delivered']);
    const stream = await bus.jsm.streams.info('TASKFLOW');
    expect([...stream.config.subjects!].sort()).toEqual(['payments.>', 'taskflow.resume']);
    publish('shipments.delivered', { correlation_id: 'S-1' });
    await until(async () => (await statusOf(tf, a.id)) === 'running');
  });

  it('an older stream holding wait topics one by one is brought back to the declared subjects, and its stored events still land', async () => {
    const offline = await openTestTaskflow();
    const flow = await waitingOnEvent(offline, 'shipments.delivered', 'S-9');
    await offline.close();
    await bus.jsm.streams.add({ name: 'TASKFLOW', subjects: ['taskflow.resume', 'shipments.delivered'], retention: RetentionPolicy.Workqueue });
    await bus.js.publish('shipments.delivered', JSON.stringify({ correlation_id: 'S-9' }));
    const tf = await openBridged({ subjects: ['payments.>'] }, { database: offline.path });
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
    expect([...(await bus.jsm.streams.info('TASKFLOW')).config.subjects!].sort()).toEqual(['payments.>', 'taskflow.resume']);
  });

  it('delivers the 100 events published while the runtime was stopped when it starts again', async () => {
    const first = await openBridged({}, { synchronous: 'normal' });
    const flows: Flow[] = [];
    for (let i = 0; i < 100; i++) flows.push(await waitingOnEvent(first, 'jobs.done', `job-${i}`));
    await first.close();
    for (let i = 0; i < 100; i++) await bus.js.publish('jobs.done', JSON.stringify({ correlation_id: `job-${i}`, payload: { i } }), { msgID: `job-${i}` });
    const second = await openTestTaskflow({ database: first.path, synchronous: 'normal' });
    expect(second.bridge).toBeUndefined();
    await second.close();
    const third = await openBridged({}, { database: first.path, synchronous: 'normal' });
    expect(third.bridge!.coveredSubjects()).toContain('jobs.>');
    await until(async () => (await third.manager.listByStatus('waiting')).length === 0);
    for (const flow of flows) expect(await resumedCount(third, flow.id)).toBe(1);
    expect((await third.manager.get(flows[42]!.id))!.state.resume_event).toEqual({ i: 42 });
  });

  it('closes cleanly in the middle of a stream of events; a new runtime takes the rest at once, none twice', async () => {
    const first = await openBridged({}, { synchronous: 'normal' });
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push((await waitingOnEvent(first, 'jobs.done', `job-${i}`)).id);
    await Promise.all(ids.map((_, i) => bus.js.publish('jobs.done', JSON.stringify({ correlation_id: `job-${i}` }), { msgID: `close-${i}` })));
    await first.close();
    const started = Date.now();
    const second = await openBridged({}, { database: first.path, synchronous: 'normal' });
    // At once: well before the server would redeliver a message pulled and never acked, 30 s (the ack wait) after
    // it went out, a few seconds before this close. A tighter bound measured how fast a busy machine reopens.
    await until(async () => (await second.manager.listByStatus('waiting')).length === 0, 15_000);
    expect(Date.now() - started).toBeLessThan(15_000);
    const counts = await Promise.all(ids.map((id) => resumedCount(second, id)));
    expect(counts.every((n) => n === 1)).toBe(true);
  });

  it('recreates its stream and consumer when they vanish from the server', async () => {
    const tf = await openBridged();
    const flow = await waitingOnEvent(tf, 'invoices.paid', 'INV-8');
    await bus.jsm.streams.delete('TASKFLOW');
    await until(async () => (await bus.jsm.consumers.info('TASKFLOW', 'taskflow').then(() => true, () => false)), 10_000);
    await bus.js.publish('invoices.paid', JSON.stringify({ correlation_id: 'INV-8' }));
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
  });

  it('closes within seconds while the server is down', async () => {
    const own = await startNatsServer();
    try {
      const tf = await openTestTaskflow({ nats: { servers: own.url, connection: { reconnectTimeWait: 50 } } });
      await tf.start();
      await own.kill();
      const started = Date.now();
      await tf.close();
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await own.dispose();
    }
  });

  it('survives the server being killed and restarted in the middle of 1,000 events: 1,000 resumes, none twice', async () => {
    const tf = await openBridged({}, { synchronous: 'normal' });
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) ids.push((await waitingOnEvent(tf, 'load.event', `c-${i}`)).id);
    const publishUntilStored = async (i: number) => {
      for (;;) {
        try {
          await bus.js.publish('load.event', JSON.stringify({ correlation_id: `c-${i}`, payload: { i } }), { msgID: `load-${i}`, timeout: 500 });
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const killedPid = bus.server.pid;
    let restarted: Promise<void> = Promise.resolve();
    for (let i = 0; i < 1000; i++) {
      if (i === 400) {
        await bus.server.kill();
        restarted = new Promise((r) => setTimeout(r, 300)).then(() => bus.server.restart());
      }
      await publishUntilStored(i);
    }
    await restarted;
    expect(bus.server.pid).not.toBe(killedPid);
    await until(async () => (await tf.manager.listByStatus('waiting')).length === 0, 30_000);
    const counts = await Promise.all(ids.map((id) => resumedCount(tf, id)));
    expect(counts.filter((n) => n === 1)).toHaveLength(1000);
  }, 60_000);
});

describe('NATS bridge on core NATS', () => {
  let core: NatsServer;
  let cc: NatsConnection;

  beforeAll(async () => {
    core = await startNatsServer({ jetstream: false });
    cc = await connect({ servers: core.url });
  });

  afterAll(async () => {
    await cc?.close();
    await core?.dispose();
  });

  it('runs without JetStream when the server has none, and ignores a repeated Nats-Msg-Id', async () => {
    const tf = await openTestTaskflow({ nats: { servers: core.url } });
    await tf.start();
    expect(tf.bridge!.mode).toBe('core');
    const flow = await waitingOnEvent(tf, 'invoices.paid', 'INV-3');
    const other = await waitingOnEvent(tf, 'invoices.paid', 'INV-4');
    const h = headers();
    h.set('Taskflow-Correlation-Id', 'INV-3');
    h.set('Nats-Msg-Id', 'evt-3');
    cc.publish('invoices.paid', JSON.stringify({ payload: 1 }), { headers: h });
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'invoices.paid', correlationId: 'INV-3' });
    cc.publish('invoices.paid', JSON.stringify({ payload: 2 }), { headers: h });
    // Handled in order: once INV-4 resumed, the duplicate before it was seen.
    cc.publish('invoices.paid', JSON.stringify({ correlation_id: 'INV-4' }));
    await until(async () => (await statusOf(tf, other.id)) === 'running');
    expect(await statusOf(tf, flow.id)).toBe('waiting');
    expect(await resumedCount(tf, flow.id)).toBe(1);
  });

  it('refuses to start when JetStream is required and the server has none', async () => {
    const tf = await openTestTaskflow({ nats: { servers: core.url, jetstream: true } });
    await expect(tf.start()).rejects.toThrow(/JetStream/);
  });
});

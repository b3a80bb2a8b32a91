import { describe, expect, it } from 'vitest';
import { FlowError, openTaskflow, type Logger, type Taskflow } from '../src/index.js';
import { newFlow, openTestTaskflow, tempDatabase } from './support/taskflow.js';
import { until } from './support/until.js';

const key = { topic: 'payments.received', correlationId: 'INV-1' };

async function waitingOn(tf: Taskflow, topic = key.topic, correlationId = key.correlationId) {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, { kind: 'external_event', topic, correlationId });
}

const keptEvents = async (tf: Taskflow) => (await tf.store.listInbox()).reduce((sum, k) => sum + k.events, 0);

describe('inbox: bounded per key and in total, dropping the newest', () => {
  it('a key keeps at most maxPerKey events; the next is dropped and said so', async () => {
    const tf = await openTestTaskflow({ inbox: { maxPerKey: 2 } });
    expect((await tf.engine.deliver({ ...key, payload: 1 })).kept).toBe(true);
    expect((await tf.engine.deliver({ ...key, payload: 2 })).kept).toBe(true);
    expect(await tf.engine.deliver({ ...key, payload: 3 })).toEqual({ resumed: [], kept: false, duplicate: false, dropped: 'key_full' });
    expect(await tf.store.listInbox()).toMatchObject([{ ...key, events: 2 }]);
    // The oldest kept event is the one a later wait gets.
    expect((await waitingOn(tf)).state.resume_event).toBe(1);
    expect(tf.engine.inboxDrops).toEqual({ keyFull: 1, inboxFull: 0 });
  });

  it('the inbox keeps at most maxTotal events; events kept before it filled stay', async () => {
    const tf = await openTestTaskflow({ inbox: { maxTotal: 3 } });
    for (const id of ['A', 'B', 'C']) expect((await tf.engine.deliver({ topic: 'junk', correlationId: id })).kept).toBe(true);
    expect((await tf.engine.deliver({ topic: 'junk', correlationId: 'D' })).dropped).toBe('inbox_full');
    expect((await tf.store.listInbox()).map((k) => k.correlationId).sort()).toEqual(['A', 'B', 'C']);
    expect(tf.engine.inboxDrops).toEqual({ keyFull: 0, inboxFull: 1 });
  });

  it('a full inbox never stops an event from resuming the flows that wait for it', async () => {
    const tf = await openTestTaskflow({ inbox: { maxPerKey: 0, maxTotal: 0 } });
    const flow = await waitingOn(tf);
    expect((await tf.engine.deliver({ ...key, payload: 'paid' })).resumed).toEqual([flow.id]);
    expect((await tf.engine.deliver({ topic: 'other', correlationId: 'x' })).dropped).toBe('key_full');
  });

  it("a dropped event's id is not remembered: delivered again once there is room, it is kept", async () => {
    const tf = await openTestTaskflow({ inbox: { maxTotal: 1 } });
    await tf.engine.deliver({ topic: 'junk', correlationId: 'A' });
    expect((await tf.engine.deliver({ ...key, eventId: 'pay-1' })).dropped).toBe('inbox_full');
    await waitingOn(tf, 'junk', 'A'); // consumes A: room again
    expect(await tf.engine.deliver({ ...key, eventId: 'pay-1' })).toMatchObject({ kept: true, duplicate: false });
    expect(await tf.engine.deliver({ ...key, eventId: 'pay-1' })).toMatchObject({ duplicate: true });
  });

  it('logs once when drops start and once when they stop, not once per event', async () => {
    const lines: string[] = [];
    const log = (_fields: object, message?: string) => void lines.push(message ?? '');
    const logger: Logger = { debug: () => undefined, info: log, warn: log, error: log };
    const tf = await openTestTaskflow({ inbox: { maxPerKey: 1 }, logger, tickInterval: '20ms' });
    await tf.engine.deliver(key);
    for (let i = 0; i < 50; i++) await tf.engine.deliver(key);
    expect(lines.filter((line) => line.startsWith('taskflow: inbox full'))).toHaveLength(1);
    expect(lines.filter((line) => line.includes('inbox.maxPerKey'))).toHaveLength(1);
    await tf.start();
    await until(() => lines.some((line) => line.startsWith('taskflow: inbox drops stopped')));
    expect(lines.filter((line) => line.startsWith('taskflow: inbox'))).toHaveLength(2);
  });

  it('maxTotal holds under concurrent deliveries on different keys from several runtimes', async () => {
    // Each delivery locks only its own key: two that both count maxTotal - 1 must not both keep.
    const maxTotal = 5;
    const first = await openTestTaskflow({ inbox: { maxTotal } });
    const runtimes = [first, ...(await Promise.all([1, 2, 3].map(() => openTestTaskflow({ database: first.path, inbox: { maxTotal } }))))];
    const event = (round: number, r: number, i: number) => ({ topic: 'junk', correlationId: `round-${round}-runtime-${r}-event-${i}` });
    let keptInAll = 0;
    for (let round = 0; round < 4; round++) {
      // Single deliveries (alone or grouped with other callers') and batches (one transaction each).
      const results = await Promise.all(
        runtimes.flatMap((tf, r) => [
          ...Array.from({ length: 25 }, (_, i) => tf.engine.deliver(event(round, r, i))),
          tf.engine.deliverBatch(Array.from({ length: 10 }, (_, i) => event(round, r, 100 + i))).then((outcomes) => outcomes.map((o) => (o.ok ? o.result : { kept: false }))),
        ]),
      );
      keptInAll += results.flat().filter((result) => result.kept).length;
      const kept = await keptEvents(first);
      expect(kept).toBeLessThanOrEqual(maxTotal);
      expect(keptInAll).toBe(kept);
    }
    expect(await keptEvents(first)).toBe(maxTotal);
  });

  it('refuses caps that are not non-negative integers', async () => {
    for (const inbox of [{ maxPerKey: -1 }, { maxTotal: 1.5 }]) {
      await expect(openTaskflow({ database: await tempDatabase(), inbox })).rejects.toSatisfy((error) => FlowError.isInstance(error) && error.code === 'invalid_input');
    }
  });

  it('listInbox groups kept events by key, oldest first, with their times', async () => {
    const tf = await openTestTaskflow({ eventRetention: '1d' });
    const t0 = tf.clock.now();
    await tf.engine.deliver({ topic: 'b.topic', correlationId: '1' });
    tf.clock.advance(1_000);
    await tf.engine.deliver({ topic: 'a.topic', correlationId: '2' });
    tf.clock.advance(1_000);
    await tf.engine.deliver({ topic: 'b.topic', correlationId: '1' });
    expect(await tf.store.listInbox()).toEqual([
      { topic: 'b.topic', correlationId: '1', events: 2, oldestAt: new Date(t0), newestAt: new Date(t0 + 2_000), expiresAt: new Date(t0 + 86_400_000) },
      { topic: 'a.topic', correlationId: '2', events: 1, oldestAt: new Date(t0 + 1_000), newestAt: new Date(t0 + 1_000), expiresAt: new Date(t0 + 1_000 + 86_400_000) },
    ]);
    expect(await keptEvents(tf)).toBe(3);
  });
});

describe('inbox: a kept event goes to one later wait, a live event to every waiter', () => {
  it('a live event resumes both flows waiting on its key', async () => {
    const tf = await openTestTaskflow();
    const [a, b] = [await waitingOn(tf), await waitingOn(tf)];
    expect((await tf.engine.deliver({ ...key, payload: 'paid' })).resumed.sort()).toEqual([a.id, b.id].sort());
  });

  it('a kept event resumes only the first of two later waiters, and is then gone', async () => {
    const tf = await openTestTaskflow();
    await tf.engine.deliver({ ...key, payload: 'paid' });
    const first = await waitingOn(tf);
    const second = await waitingOn(tf);
    expect(first).toMatchObject({ status: 'running', state: { resume_event: 'paid' } });
    expect(second.status).toBe('waiting');
    expect(await keptEvents(tf)).toBe(0);
  });
});

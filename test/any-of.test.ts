import { describe, expect, it } from 'vitest';
import { FlowError, type Flow, type WaitInput, type Wake } from '../src/index.js';
import pg from 'pg';
import { WAITERS_SQL } from '../src/runtime/store/postgres/waiters.js';
import { dialect, newFlow, openTestTaskflow, T0 } from './support/taskflow.js';
import { until } from './support/until.js';

type TestTaskflow = Awaited<ReturnType<typeof openTestTaskflow>>;

const paid = { topic: 'payments.received', correlationId: 'INV-42' };
const refunded = { topic: 'payments.refunded', correlationId: 'INV-42' };
const DAY = 86_400_000;

/** "Resume on payments.received/INV-42, or payments.refunded/INV-42, or the cancel_order signal, or in 3 days." */
const firstOf: WaitInput = {
  kind: 'any',
  of: [
    { kind: 'external_event', ...paid },
    { kind: 'external_event', ...refunded },
    { kind: 'manual', signal: 'cancel_order' },
    { kind: 'timer', at: T0 + 3 * DAY },
  ],
};

async function runningFlow(tf: TestTaskflow): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  return tf.manager.startRunning(flow.id);
}

async function waitingFlow(tf: TestTaskflow, wait: WaitInput = firstOf): Promise<Flow> {
  return tf.manager.setWaiting((await runningFlow(tf)).id, wait);
}

async function lastWake(tf: TestTaskflow, id: string): Promise<Record<string, unknown> | undefined> {
  return (await tf.manager.listEvents(id)).filter((e) => e.kind === 'resumed').at(-1)?.payload;
}

describe('waiting on the first of several conditions', () => {
  it('stores the conditions as given and wakes at the timer condition', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf);
    expect(flow).toMatchObject({ status: 'waiting', revision: 2 });
    expect(flow.wait).toEqual({
      kind: 'any',
      of: [
        { kind: 'external_event', ...paid },
        { kind: 'external_event', ...refunded },
        { kind: 'manual', signal: 'cancel_order' },
        { kind: 'timer', at: new Date(T0 + 3 * DAY) },
      ],
    });
    expect((await tf.manager.get(flow.id))!.wait).toEqual(flow.wait);
    expect(await tf.engine.nextDueAt()).toEqual(new Date(T0 + 3 * DAY));
  });

  it('resumes on an event on its second key, and the wake says which condition won', async () => {
    const woke: Wake[] = [];
    const tf = await openTestTaskflow({ onResume: (_flow, wake) => void woke.push(wake) });
    await tf.start();
    const flow = await waitingFlow(tf);
    const delivered = await tf.engine.deliver({ ...refunded, payload: { amount: 120 } });
    expect(delivered).toEqual({ resumed: [flow.id], kept: false, duplicate: false });
    expect(await tf.manager.get(flow.id)).toMatchObject({ status: 'running', wait: null, state: { resume_event: { amount: 120 } } });
    const expected = { reason: 'event', ...refunded, payload: { amount: 120 }, condition: { index: 1, kind: 'external_event' } };
    expect(await lastWake(tf, flow.id)).toMatchObject(expected);
    await until(() => woke.length === 1);
    expect(woke[0]).toMatchObject(expected);
  });

  it('resumes, by one event, a flow waiting on its key alone and one waiting on it among others', async () => {
    const tf = await openTestTaskflow();
    const single = await waitingFlow(tf, { kind: 'external_event', ...paid });
    const anyOf = await waitingFlow(tf);
    const delivered = await tf.engine.deliver(paid);
    expect(delivered.resumed.sort()).toEqual([single.id, anyOf.id].sort());
    expect(await lastWake(tf, single.id)).not.toHaveProperty('condition');
    expect(await lastWake(tf, anyOf.id)).toMatchObject({ condition: { index: 0, kind: 'external_event' } });
  });

  it('resumes at once when an event for any of its keys is already in the inbox', async () => {
    const tf = await openTestTaskflow();
    expect(await tf.engine.deliver({ ...refunded, payload: { n: 1 } })).toMatchObject({ kept: true });
    const flow = await waitingFlow(tf);
    expect(flow).toMatchObject({ status: 'running', wait: null, revision: 3, state: { resume_event: { n: 1 } } });
    expect(await lastWake(tf, flow.id)).toMatchObject({ reason: 'event', ...refunded, condition: { index: 1, kind: 'external_event' } });
    expect(await tf.store.listInbox()).toEqual([]);
  });

  it('takes the first received of the kept events when several of its keys have one', async () => {
    const tf = await openTestTaskflow();
    await tf.engine.deliver({ ...refunded, payload: { first: true } });
    tf.clock.advance(1_000);
    await tf.engine.deliver({ ...paid, payload: { first: false } });
    const flow = await waitingFlow(tf);
    expect(flow.state).toEqual({ resume_event: { first: true } });
    expect((await tf.store.listInbox()).map((k) => k.topic)).toEqual([paid.topic]);
  });

  it('resumes on one of its signals; the wake names it and says which condition won', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf);
    const resumed = await tf.engine.signal(flow.id, { signal: 'cancel_order', payload: { by: 'ana' } });
    expect(resumed).toMatchObject({ status: 'running', wait: null, state: { resume_signal: { by: 'ana' } } });
    expect(await lastWake(tf, flow.id)).toMatchObject({ reason: 'signal', signal: 'cancel_order', condition: { index: 2, kind: 'manual' } });
  });

  it('refuses a signal that is none of its conditions, and changes nothing', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf);
    await expect(tf.engine.signal(flow.id, { signal: 'approved' })).rejects.toThrow(/waits for the signal "cancel_order", not "approved"/);
    await expect(tf.engine.signal(flow.id)).rejects.toThrow(/not an unnamed one/);
    const onlyEvents = await waitingFlow(tf, { kind: 'any', of: [{ kind: 'external_event', ...paid }] });
    await expect(tf.engine.signal(onlyEvents.id, { signal: 'cancel_order' })).rejects.toMatchObject({ code: 'invalid_input' });
    expect(await tf.manager.get(flow.id)).toMatchObject({ status: 'waiting', revision: 2 });
  });

  it('resumes at its deadline when nothing else happened first', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf);
    expect(await tf.engine.tick(T0 + 3 * DAY - 1)).toMatchObject({ resumed: 0, timedOut: 0 });
    tf.clock.set(T0 + 3 * DAY);
    expect(await tf.engine.tick()).toEqual({ resumed: 1, cancelled: 0, timedOut: 0, errors: 0 });
    expect(await tf.manager.get(flow.id)).toMatchObject({ status: 'running', wait: null });
    expect(await lastWake(tf, flow.id)).toMatchObject({ reason: 'timer', condition: { index: 3, kind: 'timer' } });
  });

  it('voids the other conditions once one has won', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf);
    await tf.engine.signal(flow.id, { signal: 'cancel_order' });
    // The events are no longer awaited: they go to the inbox like any event no flow waits for.
    expect(await tf.engine.deliver(paid)).toEqual({ resumed: [], kept: true, duplicate: false });
    expect(await tf.engine.deliver(refunded)).toEqual({ resumed: [], kept: true, duplicate: false });
    expect(await tf.engine.tick(T0 + 4 * DAY)).toMatchObject({ resumed: 0, timedOut: 0 });
    await expect(tf.engine.signal(flow.id, { signal: 'cancel_order' })).rejects.toMatchObject({ code: 'illegal_transition' });
    expect(await tf.store.waitingTopics()).toEqual([]);
    const resumes = (await tf.manager.listEvents(flow.id)).filter((e) => e.kind === 'resumed');
    expect(resumes).toHaveLength(1);
  });

  it('drops its old keys when the flow then waits on something else', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf);
    await tf.engine.signal(flow.id, { signal: 'cancel_order' });
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'orders.shipped', correlationId: 'O-1' });
    expect(await tf.engine.deliver(paid)).toMatchObject({ resumed: [], kept: true });
    expect(await tf.store.waitingTopics()).toEqual(['orders.shipped']);
  });

  it('lists every topic of its event conditions among the waiting topics, until it ends', async () => {
    const tf = await openTestTaskflow();
    await waitingFlow(tf, { kind: 'external_event', topic: 'orders.shipped', correlationId: 'O-1' });
    const flow = await waitingFlow(tf);
    expect(await tf.store.waitingTopics()).toEqual(['orders.shipped', 'payments.received', 'payments.refunded']);
    await tf.manager.requestCancel(flow.id);
    expect(await tf.store.waitingTopics()).toEqual(['orders.shipped']);
  });

  it('lets exactly one of an event and a signal racing for it win; the other finds nothing waiting', async () => {
    const tf = await openTestTaskflow();
    for (let round = 0; round < 10; round++) {
      const correlationId = `INV-${round}`;
      const flow = await waitingFlow(tf, {
        kind: 'any',
        of: [
          { kind: 'external_event', topic: 'payments.received', correlationId },
          { kind: 'manual', signal: 'cancel_order' },
        ],
      });
      const [delivered, signalled] = await Promise.allSettled([
        tf.engine.deliver({ topic: 'payments.received', correlationId }),
        tf.engine.signal(flow.id, { signal: 'cancel_order' }),
      ]);
      expect(delivered.status).toBe('fulfilled');
      const delivery = (delivered as PromiseFulfilledResult<{ resumed: string[]; kept: boolean }>).value;
      if (signalled.status === 'fulfilled') {
        // The signal won: the event found no flow waiting and was kept.
        expect(delivery).toMatchObject({ resumed: [], kept: true });
        expect(await lastWake(tf, flow.id)).toMatchObject({ reason: 'signal', condition: { index: 1 } });
      } else {
        expect(delivery).toMatchObject({ resumed: [flow.id], kept: false });
        expect(FlowError.isInstance(signalled.reason) && signalled.reason.code).toBe('illegal_transition');
        expect(await lastWake(tf, flow.id)).toMatchObject({ reason: 'event', condition: { index: 0 } });
      }
      const events = await tf.manager.listEvents(flow.id);
      expect(events.filter((e) => e.kind === 'resumed')).toHaveLength(1);
      expect((await tf.manager.get(flow.id))!).toMatchObject({ status: 'running', revision: events.length - 1 });
    }
  });

  it.each<[string, unknown]>([
    ['no conditions', []],
    ['more than 16 conditions', Array.from({ length: 17 }, (_, i) => ({ kind: 'manual', signal: `s${i}` }))],
    ['a condition twice', [{ kind: 'external_event', ...paid }, { kind: 'external_event', ...paid }]],
    ['the same key written differently', [{ kind: 'external_event', ...paid }, { kind: 'external_event', topic: ' payments.received', correlationId: 'INV-42 ' }]],
    ['two timers', [{ kind: 'timer', at: T0 + DAY }, { kind: 'timer', at: T0 + 2 * DAY }]],
    ['a nested any-of wait', [{ kind: 'any', of: [{ kind: 'manual', signal: 'a' }] }]],
    ['a manual condition without a signal name', [{ kind: 'manual' }]],
    ['a timeout inside a condition', [{ kind: 'external_event', ...paid, timeoutAt: T0 + DAY }]],
    ['an unknown kind', [{ kind: 'webhook' }]],
    ['a timer beyond the horizon', [{ kind: 'timer', at: T0 + 31 * DAY }]],
    ['not a list', { kind: 'manual', signal: 'a' }],
  ])('refuses %s as invalid_input and changes nothing', async (_what, of) => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    await expect(tf.manager.setWaiting(flow.id, { kind: 'any', of } as WaitInput)).rejects.toMatchObject({ code: 'invalid_input' });
    expect(await tf.manager.get(flow.id)).toMatchObject({ status: 'running', revision: 1, wait: null });
    expect(await tf.store.waitingTopics()).toEqual([]);
  });
});

describe.runIf(dialect === 'postgres')('any-of waits on PostgreSQL: query plans', () => {
  it('finds flows waiting on a key among others by flow_wait_keys_key, then each flow by its primary key, and their topics by index', async () => {
    const tf = await openTestTaskflow();
    const client = new pg.Client({ connectionString: tf.path });
    await client.connect();
    try {
      await client.query(`INSERT INTO flows (id, controller_id, goal, owner_session_key, current_step, state_json, wait_json, status, revision, created_at, updated_at)
        SELECT 'f' || i, 'c', 'g', 'o', 's', '{}', '{"kind":"any"}', 'waiting', 2, 0, 0 FROM generate_series(1, 20000) AS i`);
      await client.query(`INSERT INTO flow_wait_keys (flow_id, topic, correlation_id)
        SELECT 'f' || i, t, 'INV-' || i FROM generate_series(1, 20000) AS i, unnest(ARRAY['payments.received', 'payments.refunded']) AS t`);
      await client.query(`INSERT INTO event_inbox (topic, correlation_id, received_at, expires_at)
        SELECT 'payments.received', 'K-' || i, 0, 1e15 FROM generate_series(1, 20000) AS i`);
      await client.query('ANALYZE');
      const plan = async (sql: string, params: unknown[]) =>
        (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
      // The statements the store sends for a delivery (load of waitingOn).
      const lookup = await plan(WAITERS_SQL.anyOf, ['payments.refunded', 'INV-7']);
      expect(lookup).toMatch(/Index (Only )?Scan using flow_wait_keys_key on flow_wait_keys/);
      expect(lookup).toMatch(/Index Scan using flows_pkey on flows/);
      expect(lookup).not.toMatch(/Seq Scan/);
      const single = await plan(WAITERS_SQL.single, ['payments.refunded', 'INV-7']);
      expect(single).toMatch(/Index Scan using flows_status_topic_correlation on flows/);
      expect(single).not.toMatch(/Seq Scan/);
      const none = await plan(`SELECT 1 WHERE ${WAITERS_SQL.none}`, ['payments.refunded', 'INV-7']);
      expect(none).toMatch(/flows_status_topic_correlation/);
      expect(none).toMatch(/Index (Only )?Scan using flow_wait_keys_key on flow_wait_keys/);
      expect(none).not.toMatch(/Seq Scan/);
      // The doctor's waiting keys of a topic: two index ranges in correlation id order, merged.
      const keys = await plan(WAITERS_SQL.keysOfTopic, ['payments.refunded', 100]);
      expect(keys).toMatch(/Index (Only )?Scan using flows_status_topic_correlation on flows/);
      expect(keys).toMatch(/Index (Only )?Scan using flow_wait_keys_key on flow_wait_keys/);
      expect(keys).toMatch(/Merge Append/);
      expect(keys).not.toMatch(/Seq Scan|Sort {2}\(/);
      // An any-of wait parking: the first kept event of any of its keys, one seek per key.
      const kept = await plan(
        `SELECT * FROM event_inbox WHERE ((topic = $1 AND correlation_id = $2) OR (topic = $3 AND correlation_id = $4)) AND expires_at > $5 ORDER BY id LIMIT 1`,
        ['payments.received', 'INV-7', 'payments.refunded', 'INV-7', 0],
      );
      expect(kept).toMatch(/event_inbox_key/);
      expect(kept).not.toMatch(/Seq Scan/);
      const topics = await plan(WAITERS_SQL.topics, []);
      expect(topics).toMatch(/Index (Only )?Scan using flow_wait_keys_key on flow_wait_keys/);
      expect(topics).not.toMatch(/Seq Scan on flow_wait_keys/);
    } finally {
      await client.end();
    }
  });
});

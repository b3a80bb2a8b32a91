import { describe, expect, it } from 'vitest';
import { FlowError, type Flow, type StartOrDeliverInput, type StartOrDeliverResult, type Wake } from '../src/index.js';
import { openTestTaskflow, T0 } from './support/taskflow.js';

const owner = 'billing:webhooks';

function call(overrides: Partial<StartOrDeliverInput> & { payload?: unknown; eventId?: string } = {}): StartOrDeliverInput {
  const { payload = { amount: 42 }, eventId, ...rest } = overrides;
  return {
    owner,
    idempotencyKey: 'invoice:INV-42',
    flow: { controllerId: 'billing/invoice', goal: 'ship order 42 once INV-42 is paid', state: { invoice: 'INV-42' } },
    event: { topic: 'payments.received', correlationId: 'INV-42', payload, ...(eventId === undefined ? {} : { eventId }) },
    ...rest,
  };
}

describe('startOrDeliver', () => {
  it('starts the flow of a new key waiting on the event, which resumes it at once', async () => {
    const woke: [Flow, Wake][] = [];
    const tf = await openTestTaskflow({ onResume: (flow, wake) => void woke.push([flow, wake]) });
    await tf.start();
    const result = await tf.startOrDeliver(call());
    expect(result.started).toBe(true);
    expect(result.delivery).toEqual({ resumed: [result.flow.id], kept: false, duplicate: false });
    expect(result.flow).toMatchObject({ status: 'running', wait: null, revision: 3, state: { invoice: 'INV-42', resume_event: { amount: 42 } } });
    expect((await tf.manager.listEvents(result.flow.id)).map((e) => e.kind)).toEqual(['created', 'started', 'waiting', 'resumed']);
    await expect.poll(() => woke.length).toBe(1);
    expect(woke[0]![1]).toMatchObject({ reason: 'event', topic: 'payments.received', correlationId: 'INV-42', payload: { amount: 42 } });
  });

  it('delivers to the open flow of the key instead of starting another', async () => {
    const tf = await openTestTaskflow();
    const first = await tf.startOrDeliver(call());
    await tf.manager.setWaiting(first.flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' });
    const second = await tf.startOrDeliver(call({ payload: { amount: 8 }, flow: { controllerId: 'other', goal: 'ignored for an existing flow' } }));
    expect(second.started).toBe(false);
    expect(second.flow.id).toBe(first.flow.id);
    expect(second.delivery.resumed).toEqual([first.flow.id]);
    expect(second.flow).toMatchObject({ status: 'running', controllerId: 'billing/invoice', state: { resume_event: { amount: 8 } } });
    expect(await tf.manager.listByOwner(owner)).toHaveLength(1);
  });

  it('keeps the event in the inbox while the open flow does not wait on its key, for its next wait', async () => {
    const tf = await openTestTaskflow();
    const first = await tf.startOrDeliver(call());
    const second = await tf.startOrDeliver(call({ payload: { amount: 8 } }));
    expect(second).toMatchObject({ started: false, delivery: { resumed: [], kept: true, duplicate: false } });
    const resumed = await tf.manager.setWaiting(first.flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' });
    expect(resumed).toMatchObject({ status: 'running', state: { resume_event: { amount: 8 } } });
  });

  it('parks a new flow on the wait it is given and keeps the event for it', async () => {
    const tf = await openTestTaskflow();
    const result = await tf.startOrDeliver(call({ wait: { kind: 'timer', at: T0 + 60_000 } }));
    expect(result).toMatchObject({ started: true, delivery: { resumed: [], kept: true, duplicate: false } });
    expect(result.flow).toMatchObject({ status: 'waiting', wait: { kind: 'timer', at: new Date(T0 + 60_000) } });
    await tf.engine.tick(T0 + 60_000);
    const resumed = await tf.manager.setWaiting(result.flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' });
    expect(resumed.state.resume_event).toEqual({ amount: 42 });
  });

  it('gives a new flow waiting on the key the oldest kept event first, and keeps the new one', async () => {
    const tf = await openTestTaskflow();
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { amount: 1 } });
    const result = await tf.startOrDeliver(call({ payload: { amount: 2 } }));
    expect(result).toMatchObject({ started: true, delivery: { resumed: [], kept: true } });
    expect(result.flow.state.resume_event).toEqual({ amount: 1 });
    expect((await tf.store.listInbox()).map((k) => k.events)).toEqual([1]);
  });

  it('refuses a first wait on another event key, writing nothing', async () => {
    const tf = await openTestTaskflow();
    const refused = tf.startOrDeliver(call({ wait: { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-43' } }));
    await expect(refused).rejects.toSatisfy((e: unknown) => FlowError.isInstance(e) && e.code === 'invalid_input' && /its event's own key/.test(e.message));
    expect(await tf.manager.listByOwner(owner)).toEqual([]);
    expect(await tf.store.listInbox()).toEqual([]);
  });

  describe('with an any-of first wait', () => {
    const paid = { topic: 'payments.received', correlationId: 'INV-42' };
    const refunded = { topic: 'payments.refunded', correlationId: 'INV-42' };
    const paidOrRefunded: StartOrDeliverInput['wait'] = {
      kind: 'any',
      of: [{ kind: 'external_event', ...refunded }, { kind: 'external_event', ...paid }, { kind: 'manual', signal: 'cancel_order' }],
    };

    it("that names the event's key, the new flow resumes at once with the event, and the wake says which condition won", async () => {
      const woke: Wake[] = [];
      const tf = await openTestTaskflow({ onResume: (_flow, wake) => void woke.push(wake) });
      await tf.start();
      const result = await tf.startOrDeliver(call({ wait: paidOrRefunded }));
      expect(result).toMatchObject({ started: true, delivery: { resumed: [result.flow.id], kept: false, duplicate: false } });
      expect(result.flow).toMatchObject({ status: 'running', wait: null, revision: 3, state: { resume_event: { amount: 42 } } });
      const expected = { reason: 'event', ...paid, payload: { amount: 42 }, condition: { index: 1, kind: 'external_event' } };
      expect((await tf.manager.listEvents(result.flow.id)).at(-1)).toMatchObject({ kind: 'resumed', payload: expected });
      expect(await tf.store.listInbox()).toEqual([]);
      expect(await tf.store.waitingTopics()).toEqual([]);
      await expect.poll(() => woke.length).toBe(1);
      expect(woke[0]).toMatchObject(expected);
    });

    it('the new flow takes an event the inbox keeps for another of its keys, and its own event is kept', async () => {
      const tf = await openTestTaskflow();
      expect(await tf.engine.deliver({ ...refunded, payload: { refund: 7 } })).toMatchObject({ kept: true });
      const result = await tf.startOrDeliver(call({ wait: paidOrRefunded }));
      expect(result).toMatchObject({ started: true, delivery: { resumed: [], kept: true, duplicate: false } });
      expect(result.flow).toMatchObject({ status: 'running', wait: null, state: { resume_event: { refund: 7 } } });
      expect((await tf.manager.listEvents(result.flow.id)).at(-1)!.payload).toMatchObject({ ...refunded, condition: { index: 0 } });
      expect((await tf.store.listInbox()).map((k) => [k.topic, k.correlationId, k.events])).toEqual([[paid.topic, paid.correlationId, 1]]);
    });

    it("that does not name the event's key, the new flow parks on it, the event is kept, and an event on one of its keys resumes it", async () => {
      const tf = await openTestTaskflow();
      const wait: StartOrDeliverInput['wait'] = { kind: 'any', of: [{ kind: 'external_event', ...refunded }, { kind: 'timer', at: T0 + 60_000 }] };
      const result = await tf.startOrDeliver(call({ wait }));
      expect(result).toMatchObject({ started: true, flow: { status: 'waiting' }, delivery: { resumed: [], kept: true } });
      expect(await tf.store.waitingTopics()).toEqual([refunded.topic]);
      expect(await tf.engine.deliver({ ...refunded, payload: { refund: 7 } })).toEqual({ resumed: [result.flow.id], kept: false, duplicate: false });
    });

    it('racing a delivery on another of its keys, from another handle, the new flow never misses that event', async () => {
      const tf = await openTestTaskflow();
      const other = await openTestTaskflow({ database: tf.path, clock: tf.clock });
      for (let round = 0; round < 20; round++) {
        const key = { topic: 'payments.refunded', correlationId: `INV-${round}` };
        const start = () =>
          tf.startOrDeliver(
            call({
              idempotencyKey: `invoice:INV-${round}`,
              event: { topic: 'invoices.opened', correlationId: `INV-${round}` },
              wait: { kind: 'any', of: [{ kind: 'external_event', ...key }, { kind: 'manual', signal: 'cancel_order' }] },
            }),
          );
        const deliver = () => other.engine.deliver({ ...key, payload: { round } });
        // Each goes first in turn.
        const [started, delivered] = round % 2 === 0 ? await Promise.all([start(), deliver()]) : await Promise.all([deliver(), start()]).then(([d, s]) => [s, d] as const);
        // Whichever commits second sees the other: the flow is resumed by the refund, and nothing is left behind.
        const flow = (await tf.manager.get(started.flow.id))!;
        expect(flow, `round ${round}: ${JSON.stringify(delivered)}`).toMatchObject({ status: 'running', state: { resume_event: { round } } });
        expect((await tf.store.listInbox()).filter((k) => k.topic === key.topic)).toEqual([]);
      }
    });
  });

  it('refuses bad input with invalid_input and writes nothing', async () => {
    const tf = await openTestTaskflow();
    for (const bad of [
      { ...call(), idempotencyKey: '' },
      { ...call(), event: { topic: 'payments.received', correlationId: ' ' } },
      { ...call(), flow: { controllerId: '', goal: 'x' } },
      { ...call(), flow: { controllerId: 'c', goal: 'g', ownerSessionKey: 'someone-else' } as never },
    ]) {
      await expect(tf.startOrDeliver(bad)).rejects.toSatisfy((e: unknown) => FlowError.isInstance(e) && e.code === 'invalid_input');
    }
    expect(await tf.manager.listByOwner(owner)).toEqual([]);
  });

  it('does nothing twice for a repeated event id, but still starts a missing flow', async () => {
    const tf = await openTestTaskflow();
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { amount: 1 }, eventId: 'evt-1' });
    const result = await tf.startOrDeliver(call({ eventId: 'evt-1' }));
    // The event was kept when it first came: the new flow, waiting on its key, takes it from the inbox.
    expect(result).toMatchObject({ started: true, delivery: { resumed: [], kept: false, duplicate: true } });
    expect(result.flow.state.resume_event).toEqual({ amount: 1 });
    const again = await tf.startOrDeliver(call({ eventId: 'evt-1' }));
    expect(again).toMatchObject({ started: false, delivery: { duplicate: true } });
    expect(await tf.store.listInbox()).toEqual([]);
  });

  it('does not restart a finished flow: the key keeps naming it, and the event is kept by its key', async () => {
    const tf = await openTestTaskflow();
    const first = await tf.startOrDeliver(call());
    await tf.manager.finish(first.flow.id);
    const late = await tf.startOrDeliver(call({ payload: { amount: 9 } }));
    expect(late).toMatchObject({ started: false, flow: { id: first.flow.id, status: 'finished' }, delivery: { kept: true } });
  });

  it('under 100 concurrent calls from 4 handles on one key: exactly one flow, every event resumed, kept or deduplicated', async () => {
    const tf = await openTestTaskflow({ inbox: { maxPerKey: 1_000 } });
    const handles = [tf];
    for (let i = 0; i < 3; i++) handles.push(await openTestTaskflow({ database: tf.path, clock: tf.clock, inbox: { maxPerKey: 1_000 } }));
    // 80 distinct event ids; 20 calls repeat one of them (a retried webhook).
    const calls = Array.from({ length: 100 }, (_, i) => call({ eventId: `evt-${i < 80 ? i : i - 80}`, payload: { n: i } }));
    const results: StartOrDeliverResult[] = await Promise.all(calls.map((input, i) => handles[i % handles.length]!.startOrDeliver(input)));
    const flows = await tf.manager.listByOwner(owner);
    expect(flows).toHaveLength(1);
    expect(results.filter((r) => r.started)).toHaveLength(1);
    expect(new Set(results.map((r) => r.flow.id))).toEqual(new Set([flows[0]!.id]));
    const resumed = results.filter((r) => r.delivery.resumed.length > 0);
    const kept = results.filter((r) => r.delivery.kept);
    const duplicates = results.filter((r) => r.delivery.duplicate);
    expect(resumed).toHaveLength(1);
    expect(duplicates).toHaveLength(20);
    expect(kept).toHaveLength(79);
    expect(results.filter((r) => r.delivery.dropped)).toEqual([]);
    expect((await tf.store.listInbox()).map((k) => k.events)).toEqual([79]);
    // The flow took exactly one event, and its audit log shows one resume.
    const events = await tf.manager.listEvents(flows[0]!.id);
    expect(events.filter((e) => e.kind === 'resumed')).toHaveLength(1);
    expect(flows[0]!.revision + 1).toBe(events.length);
  });

  it('under 100 concurrent calls for one flow key with events of two different keys: one flow, one resume, 99 kept', async () => {
    const tf = await openTestTaskflow({ inbox: { maxPerKey: 1_000 } });
    const other = await openTestTaskflow({ database: tf.path, clock: tf.clock, inbox: { maxPerKey: 1_000 } });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        (i % 2 === 0 ? tf : other).startOrDeliver(call({ event: { topic: i % 4 < 2 ? 'payments.received' : 'invoices.disputed', correlationId: 'INV-42', payload: { n: i } } })),
      ),
    );
    expect(await tf.manager.listByOwner(owner)).toHaveLength(1);
    expect(results.filter((r) => r.started)).toHaveLength(1);
    expect(results.filter((r) => r.delivery.resumed.length === 1)).toHaveLength(1);
    expect(results.filter((r) => r.delivery.kept)).toHaveLength(99);
    expect((await tf.store.listInbox()).reduce((n, k) => n + k.events, 0)).toBe(99);
  });
});

import { describe, expect, it, vi } from 'vitest';
import { FlowError, MAX_BULK_CREATE, type StartFlowInput, type WaitInput } from '../src/index.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { newFlow, openTestTaskflow, T0 } from './support/taskflow.js';

type TestTaskflow = Awaited<ReturnType<typeof openTestTaskflow>>;

async function refusal(promise: Promise<unknown>): Promise<FlowError> {
  try {
    await promise;
  } catch (error) {
    if (FlowError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the call to be refused');
}

/** Counts the transactions the runtime asks of its store. */
function countCommits(tf: TestTaskflow): () => number {
  const commit = vi.spyOn(tf.store, 'commit');
  const claiming = vi.spyOn(tf.store, 'commitClaiming');
  const batch = vi.spyOn(tf.store, 'commitBatch');
  return () => commit.mock.calls.length + claiming.mock.calls.length + batch.mock.calls.length;
}

const timerIn = (ms: number): WaitInput => ({ kind: 'timer', at: new Date(T0 + ms) });

describe('createAndStart: one agent step, one transaction', () => {
  it('creates, starts and parks a flow in one commit, with one audit event per move', async () => {
    const tf = await openTestTaskflow();
    const commits = countCommits(tf);
    const flow = await tf.manager.createAndStart({ ...newFlow, state: { invoice: 'INV-42' }, wait: timerIn(60_000) });
    expect(commits()).toBe(1);
    expect(flow).toMatchObject({ status: 'waiting', revision: 2, state: { invoice: 'INV-42' }, wait: { kind: 'timer', at: new Date(T0 + 60_000) } });
    expect(await tf.manager.get(flow.id)).toEqual(flow);
    expect((await tf.manager.listEvents(flow.id)).map((e) => e.kind)).toEqual(['created', 'started', 'waiting']);
  });

  it('writes the same flow and audit log as the three separate calls', async () => {
    const tf = await openTestTaskflow();
    const wait = { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' } as const;
    const one = await tf.manager.createAndStart({ ...newFlow, wait });
    const created = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(created.id);
    const three = await tf.manager.setWaiting(created.id, wait);
    const strip = ({ id: _id, ...rest }: typeof one) => rest;
    expect(strip(one)).toEqual(strip(three));
    const shape = async (id: string) => (await tf.manager.listEvents(id)).map(({ kind, payload, at }) => ({ kind, payload, at }));
    expect(await shape(one.id)).toEqual(await shape(three.id));
  });

  it('without a wait, leaves the flow running after one commit', async () => {
    const tf = await openTestTaskflow();
    const commits = countCommits(tf);
    const flow = await tf.manager.createAndStart(newFlow);
    expect(commits()).toBe(1);
    expect(flow).toMatchObject({ status: 'running', revision: 1, wait: null });
  });

  it('is woken by its timer like any parked flow', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createAndStart({ ...newFlow, wait: timerIn(1_000) });
    tf.clock.advance(1_000);
    expect(await tf.engine.tick()).toMatchObject({ resumed: 1 });
    expect(await tf.manager.get(flow.id)).toMatchObject({ status: 'running', revision: 3 });
  });

  it('resumes at once when an event for its key is already kept in the inbox', async () => {
    const tf = await openTestTaskflow();
    const early = await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { amount: 120 } });
    expect(early.kept).toBe(true);
    const flow = await tf.manager.createAndStart({ ...newFlow, wait: { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' } });
    expect(flow).toMatchObject({ status: 'running', revision: 3, state: { resume_event: { amount: 120 } } });
    expect((await tf.manager.listEvents(flow.id)).map((e) => e.kind)).toEqual(['created', 'started', 'waiting', 'resumed']);
    // The kept event was consumed: a second flow on the key waits.
    const second = await tf.manager.createAndStart({ ...newFlow, wait: { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' } });
    expect(second.status).toBe('waiting');
  });

  it('returns the first flow, unchanged, when started again with the same idempotency key', async () => {
    const tf = await openTestTaskflow();
    const input = { ...newFlow, idempotencyKey: 'order-42', wait: timerIn(60_000) };
    const first = await tf.manager.createAndStart(input);
    const again = await tf.manager.createAndStart({ ...input, wait: timerIn(120_000) });
    expect(again).toEqual(first);
    expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toHaveLength(1);
  });

  it('refuses a bad wait, a wait beyond the horizon and bad fields with invalid_input, and writes nothing', async () => {
    const tf = await openTestTaskflow({ timerMaxHorizon: '1d' });
    const before = await snapshotDatabase(tf.path);
    const bad: unknown[] = [
      { ...newFlow, wait: { kind: 'sometime' } },
      { ...newFlow, wait: { kind: 'timer', at: 'tomorrow' } },
      { ...newFlow, wait: timerIn(2 * 86_400_000) },
      { ...newFlow, goal: '', wait: timerIn(1_000) },
      { ...newFlow, wait: { kind: 'external_event', topic: ' ', correlationId: 'INV-42' } },
    ];
    for (const input of bad) expect((await refusal(tf.manager.createAndStart(input as StartFlowInput))).code).toBe('invalid_input');
    expect(await snapshotDatabase(tf.path)).toEqual(before);
  });

  it('refuses a state its controller schema rejects, before anything is written', async () => {
    const { z } = await import('zod');
    const tf = await openTestTaskflow({ stateSchemas: { [newFlow.controllerId]: z.object({ order: z.number().positive() }) } });
    const error = await refusal(tf.manager.createAndStart({ ...newFlow, state: { order: -1 }, wait: timerIn(1_000) }));
    expect(error.code).toBe('invalid_input');
    expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toEqual([]);
  });
});

describe('createAndStartMany: the bulk path', () => {
  it('creates many parked flows in one transaction, each with its own audit log', async () => {
    const tf = await openTestTaskflow();
    const commits = countCommits(tf);
    const inputs = Array.from({ length: 50 }, (_, i) => ({ ...newFlow, goal: `remind about invoice ${i}`, wait: timerIn(1_000 + i) }));
    const flows = await tf.manager.createAndStartMany(inputs);
    expect(commits()).toBe(1);
    expect(flows.map((f) => f.goal)).toEqual(inputs.map((i) => i.goal));
    expect(flows.every((f) => f.status === 'waiting' && f.revision === 2)).toBe(true);
    expect((await tf.manager.listEvents(flows[49]!.id)).map((e) => e.kind)).toEqual(['created', 'started', 'waiting']);
    tf.clock.advance(1_050);
    expect(await tf.engine.tick()).toMatchObject({ resumed: 50 });
  });

  it('honours idempotency keys within and across calls, and kept events of each key', async () => {
    const tf = await openTestTaskflow();
    await tf.engine.deliver({ topic: 'invoices.paid', correlationId: 'INV-2', payload: { paid: true } });
    const first = await tf.manager.createAndStart({ ...newFlow, idempotencyKey: 'k1' });
    const flows = await tf.manager.createAndStartMany([
      { ...newFlow, idempotencyKey: 'k1' },
      { ...newFlow, idempotencyKey: 'k2', wait: { kind: 'external_event', topic: 'invoices.paid', correlationId: 'INV-2' } },
      { ...newFlow, idempotencyKey: 'k2' },
    ]);
    expect(flows[0]).toEqual(first);
    expect(flows[1]).toMatchObject({ status: 'running', state: { resume_event: { paid: true } } });
    expect(flows[2]).toEqual(flows[1]);
    expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toHaveLength(2);
  });

  it('refuses the whole call, naming the bad item, and writes nothing', async () => {
    const tf = await openTestTaskflow();
    const before = await snapshotDatabase(tf.path);
    const error = await refusal(tf.manager.createAndStartMany([newFlow, { ...newFlow, wait: { kind: 'timer', at: 'soon' } } as unknown as StartFlowInput, newFlow]));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toMatch(/^flow 1: invalid wait/);
    const tooMany = Array.from({ length: MAX_BULK_CREATE + 1 }, () => newFlow);
    expect((await refusal(tf.manager.createAndStartMany(tooMany))).code).toBe('invalid_input');
    expect((await refusal(tf.manager.createAndStartMany('flows' as unknown as StartFlowInput[]))).code).toBe('invalid_input');
    expect(await snapshotDatabase(tf.path)).toEqual(before);
  });

  it('answers an empty list with no flows', async () => {
    const tf = await openTestTaskflow();
    expect(await tf.manager.createAndStartMany([])).toEqual([]);
  });
});

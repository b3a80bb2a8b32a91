import { describe, expect, it } from 'vitest';
import { FlowError, openTaskflow, type Flow } from '../src/index.js';
import Database from 'better-sqlite3';
import { newFlow, openTestTaskflow, T0 } from './support/taskflow.js';

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (FlowError.isInstance(error)) return error.code;
    throw error;
  }
  throw new Error('expected the call to be refused');
}

async function runningFlow(tf: Awaited<ReturnType<typeof openTestTaskflow>>): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  return tf.manager.startRunning(flow.id);
}

describe('FlowManager', () => {
  it('walks create → run → wait → resume → finish through revisions 0..4 with one audit event each', async () => {
    const tf = await openTestTaskflow();
    const m = tf.manager;
    const created = await m.createManaged({ ...newFlow, state: { invoice: 'INV-42' } });
    expect(created).toMatchObject({ status: 'created', revision: 0, currentStep: 'init', cancelRequested: false, wait: null });
    const running = await m.startRunning(created.id);
    expect(running).toMatchObject({ status: 'running', revision: 1 });
    const waiting = await m.setWaiting(created.id, { kind: 'timer', at: new Date(T0 + 60_000) });
    expect(waiting).toMatchObject({ status: 'waiting', revision: 2, wait: { kind: 'timer', at: new Date(T0 + 60_000) } });
    const resumed = await m.resume(created.id, { paid: true });
    expect(resumed).toMatchObject({ status: 'running', revision: 3, wait: null, state: { invoice: 'INV-42', paid: true } });
    const finished = await m.finish(created.id, { shipped: true });
    expect(finished).toMatchObject({ status: 'finished', revision: 4, state: { invoice: 'INV-42', paid: true, shipped: true } });
    const events = await m.listEvents(created.id);
    expect(events.map((e) => e.kind)).toEqual(['created', 'started', 'waiting', 'resumed', 'finished']);
    expect(events[3]!.payload).toMatchObject({ reason: 'manual' });
  });

  it('stores timestamps as Dates with millisecond precision', async () => {
    const tf = await openTestTaskflow();
    tf.clock.set(T0 + 123);
    const flow = await tf.manager.createManaged(newFlow);
    const read = await tf.manager.get(flow.id);
    expect(read!.createdAt).toEqual(new Date(T0 + 123));
    expect(read!.updatedAt).toBeInstanceOf(Date);
  });

  it('refuses created → waiting and changes nothing', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged(newFlow);
    expect(await refusal(tf.manager.setWaiting(flow.id, { kind: 'manual' }))).toBe('illegal_transition');
    expect(await tf.manager.get(flow.id)).toEqual(flow);
    expect(await tf.manager.listEvents(flow.id)).toHaveLength(1);
  });

  it('cancels from every non-terminal status', async () => {
    const tf = await openTestTaskflow();
    const m = tf.manager;
    const created = await m.createManaged(newFlow);
    const running = await runningFlow(tf);
    const waiting = await runningFlow(tf);
    await m.setWaiting(waiting.id, { kind: 'manual' });
    for (const flow of [created, running, waiting]) {
      expect((await m.cancel(flow.id)).status).toBe('cancelled');
      expect((await m.get(flow.id))!.wait).toBeNull();
    }
  });

  it('refuses every move of a terminal flow with already_terminal', async () => {
    const tf = await openTestTaskflow();
    const m = tf.manager;
    const flow = await runningFlow(tf);
    await m.finish(flow.id);
    expect(await refusal(m.finish(flow.id))).toBe('already_terminal');
    expect(await refusal(m.startRunning(flow.id))).toBe('already_terminal');
    expect(await refusal(m.setWaiting(flow.id, { kind: 'manual' }))).toBe('already_terminal');
    expect(await refusal(m.fail(flow.id, 'late'))).toBe('already_terminal');
    expect(await refusal(m.cancel(flow.id))).toBe('already_terminal');
    expect(await refusal(m.updateState(flow.id, { a: 1 }))).toBe('already_terminal');
    expect(await refusal(m.resume(flow.id))).toBe('already_terminal');
    expect((await m.get(flow.id))!.revision).toBe(2);
  });

  it('blocks finish and updateState once a cancel is requested, but not cancel', async () => {
    const tf = await openTestTaskflow();
    const m = tf.manager;
    const flow = await runningFlow(tf);
    const requested = await m.requestCancel(flow.id);
    expect(requested).toMatchObject({ status: 'running', cancelRequested: true, revision: 2 });
    expect(await refusal(m.finish(flow.id))).toBe('cancel_pending');
    expect(await refusal(m.updateState(flow.id, { a: 1 }))).toBe('cancel_pending');
    expect(await refusal(m.setWaiting(flow.id, { kind: 'manual' }))).toBe('cancel_pending');
    expect((await m.cancel(flow.id)).status).toBe('cancelled');
  });

  it('treats requestCancel as idempotent and a no-op on a terminal flow', async () => {
    const tf = await openTestTaskflow();
    const m = tf.manager;
    const flow = await runningFlow(tf);
    await m.requestCancel(flow.id);
    expect((await m.requestCancel(flow.id)).revision).toBe(2);
    const done = await runningFlow(tf);
    await m.finish(done.id);
    expect(await m.requestCancel(done.id)).toMatchObject({ status: 'finished', revision: 2, cancelRequested: false });
  });

  it('cancels a waiting flow at once when a cancel is requested', async () => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' });
    const cancelled = await tf.manager.requestCancel(flow.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', cancelRequested: true, wait: null, revision: 4 });
    expect((await tf.manager.listEvents(flow.id)).map((e) => e.kind).slice(-2)).toEqual(['cancel_requested', 'cancelled']);
  });

  it('stamps state.failure with the reason and time on fail', async () => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    const failed = await tf.manager.fail(flow.id, 'card declined');
    expect(failed.status).toBe('failed');
    expect(failed.state.failure).toEqual({ reason: 'card declined', at: new Date(T0).toISOString() });
  });

  it('updates state with a shallow merge and moves the current step', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged({ ...newFlow, state: { a: 1, nested: { x: 1 } } });
    const updated = await tf.manager.updateState(flow.id, { nested: { y: 2 }, b: 2 }, 'collect');
    expect(updated).toMatchObject({ state: { a: 1, b: 2, nested: { y: 2 } }, currentStep: 'collect', revision: 1 });
  });

  it('keeps state and steps across closing and reopening the same file', async () => {
    const first = await openTestTaskflow();
    const flow = await first.manager.createMirrored({ ...newFlow, state: { kept: [1, 2, 3] } });
    await first.manager.recordStepObservation({ flowId: flow.id, runId: 'run-1', task: 'fetch', status: 'succeeded', result: { rows: 3 } });
    await first.close();
    const second = await openTaskflow({ database: first.path });
    try {
      expect((await second.manager.get(flow.id))!.state).toEqual({ kept: [1, 2, 3] });
      expect(await second.manager.listSteps(flow.id)).toMatchObject([{ runId: 'run-1', status: 'succeeded', result: { rows: 3 } }]);
    } finally {
      await second.close();
    }
  });

  it('lands every one of 10 concurrent state updates (revision +10, all keys present)', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged(newFlow);
    await Promise.all(Array.from({ length: 10 }, (_, i) => tf.manager.updateState(flow.id, { [`k${i}`]: i })));
    const after = (await tf.manager.get(flow.id))!;
    expect(after.revision).toBe(10);
    expect(Object.keys(after.state).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`).sort());
  });

  it('refuses a stale expectedRevision with revision_mismatch and writes nothing', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.updateState(flow.id, { a: 1 }, undefined, { expectedRevision: 0 });
    expect(await refusal(tf.manager.updateState(flow.id, { b: 2 }, undefined, { expectedRevision: 0 }))).toBe('revision_mismatch');
    expect((await tf.manager.get(flow.id))!.state).toEqual({ a: 1 });
  });

  it('returns the existing flow for a repeated idempotency key of the same owner', async () => {
    const tf = await openTestTaskflow();
    const first = await tf.manager.createManaged({ ...newFlow, idempotencyKey: 'order-42' });
    const again = await tf.manager.createManaged({ ...newFlow, goal: 'something else', idempotencyKey: 'order-42' });
    expect(again).toEqual(first);
    const otherOwner = await tf.manager.createManaged({ ...newFlow, ownerSessionKey: 'agent:bob:session:1', idempotencyKey: 'order-42' });
    expect(otherOwner.id).not.toBe(first.id);
    expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toHaveLength(1);
  });

  it('lists an owner’s flows newest first and flows by status', async () => {
    const tf = await openTestTaskflow();
    const a = await tf.manager.createManaged(newFlow);
    tf.clock.advance(1);
    const b = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(b.id);
    expect((await tf.manager.listByOwner(newFlow.ownerSessionKey)).map((f) => f.id)).toEqual([b.id, a.id]);
    expect((await tf.manager.listByOwner(newFlow.ownerSessionKey, { status: 'created' })).map((f) => f.id)).toEqual([a.id]);
    expect((await tf.manager.listByStatus('running')).map((f) => f.id)).toEqual([b.id]);
  });

  it('reads the latest audit event of a kind for several flows at once', async () => {
    const tf = await openTestTaskflow();
    const twice = await runningFlow(tf);
    await tf.manager.setWaiting(twice.id, { kind: 'manual' });
    await tf.manager.resume(twice.id, { first: true });
    await tf.manager.setWaiting(twice.id, { kind: 'manual' });
    await tf.manager.resume(twice.id, { second: true });
    const never = await runningFlow(tf);
    const latest = await tf.store.lastEvents([twice.id, never.id], 'resumed');
    const events = await tf.manager.listEvents(twice.id);
    expect([...latest.keys()]).toEqual([twice.id]);
    expect(latest.get(twice.id)).toEqual(events.filter((e) => e.kind === 'resumed').at(-1));
    expect(await tf.store.lastEvents([], 'resumed')).toEqual(new Map());
  });

  describe('mirrored flows', () => {
    it('are born running at revision 0', async () => {
      const tf = await openTestTaskflow();
      const flow = await tf.manager.createMirrored(newFlow);
      expect(flow).toMatchObject({ status: 'running', revision: 0 });
      expect((await tf.manager.listEvents(flow.id)).map((e) => e.kind)).toEqual(['created']);
    });

    it('upsert a step by run id, keeping an earlier child session key', async () => {
      const tf = await openTestTaskflow();
      const flow = await tf.manager.createMirrored(newFlow);
      const first = await tf.manager.recordStepObservation({
        flowId: flow.id,
        runId: 'run-1',
        task: 'summarise',
        status: 'running',
        childSessionKey: 'agent:child:session:9',
      });
      const second = await tf.manager.recordStepObservation({ flowId: flow.id, runId: 'run-1', task: 'summarise', status: 'succeeded', result: 'ok' });
      expect(second).toMatchObject({ id: first.id, status: 'succeeded', childSessionKey: 'agent:child:session:9', result: 'ok' });
      expect(await tf.manager.listSteps(flow.id)).toHaveLength(1);
      const after = (await tf.manager.get(flow.id))!;
      expect(after.revision).toBe(2);
      expect((await tf.manager.listEvents(flow.id)).map((e) => e.kind)).toEqual(['created', 'step_observed', 'step_observed']);
    });

    it('refuses an observation for an unknown flow with not_found', async () => {
      const tf = await openTestTaskflow();
      const code = await refusal(
        tf.manager.recordStepObservation({ flowId: '00000000-0000-4000-8000-000000000000', runId: 'r', task: 't', status: 'running' }),
      );
      expect(code).toBe('not_found');
    });

    it('has the database reject a duplicate (flow, run id) step row', async () => {
      const tf = await openTestTaskflow();
      const flow = await tf.manager.createMirrored(newFlow);
      await tf.manager.recordStepObservation({ flowId: flow.id, runId: 'r1', task: 't', status: 'running' });
      const insert =
        "INSERT INTO flow_steps (id, flow_id, runtime, run_id, task, status, created_at, updated_at) VALUES ('x', $1, 'external', 'r1', 't', 'running', 0, 0)";
      if (tf.store.dialect === 'sqlite') {
        // Another connection on the file: the constraint is the database's, whoever writes.
        const sqlite = new Database(tf.path);
        try {
          expect(() => sqlite.prepare(insert.replace('$1', '?')).run(flow.id)).toThrow(/UNIQUE/);
        } finally {
          sqlite.close();
        }
      } else {
        const { PostgresFlowStore } = await import('../src/runtime/store/postgres/store.js');
        await expect((tf.store as InstanceType<typeof PostgresFlowStore>).pool.query(insert, [flow.id])).rejects.toThrow(/duplicate key/);
      }
    });
  });

  describe('pruneTerminal', () => {
    it('drops only terminal flows old enough, with their steps and events', async () => {
      const tf = await openTestTaskflow();
      const m = tf.manager;
      const old = await m.createMirrored(newFlow);
      await m.recordStepObservation({ flowId: old.id, runId: 'r', task: 't', status: 'succeeded' });
      await m.finish(old.id);
      const openOld = await m.createManaged(newFlow);
      tf.clock.advance(10 * 86_400_000);
      const recent = await runningFlow(tf);
      await m.fail(recent.id, 'x');
      expect(await m.pruneTerminal('7d')).toBe(1);
      expect(await m.get(old.id)).toBeUndefined();
      expect(await m.listEvents(old.id)).toEqual([]);
      expect(await m.listSteps(old.id)).toEqual([]);
      expect(await m.get(openOld.id)).toBeDefined();
      expect(await m.get(recent.id)).toBeDefined();
      expect(await refusal(m.pruneTerminal('a while'))).toBe('invalid_input');
      expect(await m.pruneTerminal(0)).toBe(1);
      expect(await m.get(openOld.id)).toBeDefined();
    });
  });

  describe('bad input', () => {
    it('answers unknown and malformed ids with not_found', async () => {
      const tf = await openTestTaskflow();
      expect(await tf.manager.get('nope')).toBeUndefined();
      expect(await tf.manager.get('00000000-0000-4000-8000-000000000000')).toBeUndefined();
      expect(await refusal(tf.manager.startRunning('nope'))).toBe('not_found');
      expect(await refusal(tf.manager.finish("'; DROP TABLE flows; --"))).toBe('not_found');
      expect(await refusal(tf.manager.cancel('00000000-0000-4000-8000-000000000000'))).toBe('not_found');
    });

    it('refuses an empty controller id or goal with invalid_input', async () => {
      const tf = await openTestTaskflow();
      expect(await refusal(tf.manager.createManaged({ ...newFlow, controllerId: '' }))).toBe('invalid_input');
      expect(await refusal(tf.manager.createManaged({ ...newFlow, goal: '   ' }))).toBe('invalid_input');
      expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toEqual([]);
    });

    it('refuses state that is not a JSON object', async () => {
      const tf = await openTestTaskflow();
      for (const state of [[1, 2], 'text', 42, new Date()]) {
        expect(await refusal(tf.manager.createManaged({ ...newFlow, state: state as never }))).toBe('invalid_input');
      }
      const flow = await tf.manager.createManaged(newFlow);
      expect(await refusal(tf.manager.updateState(flow.id, [1] as never))).toBe('invalid_input');
      expect((await tf.manager.get(flow.id))!.revision).toBe(0);
    });

    it('refuses state over the size limit, including a patch that would grow it past the limit', async () => {
      const tf = await openTestTaskflow({ stateLimit: 1_000 });
      expect(await refusal(tf.manager.createManaged({ ...newFlow, state: { blob: 'x'.repeat(1_000) } }))).toBe('invalid_input');
      const flow = await tf.manager.createManaged({ ...newFlow, state: { a: 'x'.repeat(600) } });
      expect(await refusal(tf.manager.updateState(flow.id, { b: 'y'.repeat(600) }))).toBe('invalid_input');
      expect((await tf.manager.get(flow.id))!.state).toEqual({ a: 'x'.repeat(600) });
    });

    it('refuses a malformed wait and says what to fix', async () => {
      const tf = await openTestTaskflow();
      const flow = await runningFlow(tf);
      await expect(tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: '', correlationId: 'x' })).rejects.toThrow(/topic/);
      await expect(tf.manager.setWaiting(flow.id, { kind: 'timer', at: 'tomorrow' })).rejects.toThrow(/RFC 3339/);
      await expect(tf.manager.setWaiting(flow.id, { kind: 'sleep' } as never)).rejects.toThrow(/timer, external_event, manual/);
      expect((await tf.manager.get(flow.id))!.status).toBe('running');
    });

    it('refuses a timer beyond the horizon', async () => {
      const tf = await openTestTaskflow({ timerMaxHorizon: '1d' });
      const flow = await runningFlow(tf);
      expect(await refusal(tf.manager.setWaiting(flow.id, { kind: 'timer', at: T0 + 2 * 86_400_000 }))).toBe('invalid_input');
    });
  });
});

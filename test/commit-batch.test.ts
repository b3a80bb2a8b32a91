import { describe, expect, it } from 'vitest';
import { FlowError, type Flow } from '../src/index.js';
import { resumeMove, updateStateMove, waitMove } from '../src/runtime/moves.js';
import type { BatchCommit, BatchOutcome } from '../src/runtime/store/contract.js';
import { dialect, newFlow, openTestTaskflow, T0 } from './support/taskflow.js';
import { setN } from './support/set-n-commit.js';

/**
 * FlowStore.commitBatch, on the store of this project (SQLite or PostgreSQL):
 * several commits in one transaction, each rolled back alone when it fails.
 */

type Tf = Awaited<ReturnType<typeof openTestTaskflow>>;

async function runningFlows(tf: Tf, count: number): Promise<Flow[]> {
  const flows: Flow[] = [];
  for (let i = 0; i < count; i++) {
    const flow = await tf.manager.createManaged(newFlow);
    flows.push(await tf.manager.startRunning(flow.id));
  }
  return flows;
}

function failed<T>(outcome: BatchOutcome<T> | undefined): unknown {
  if (!outcome || outcome.ok) throw new Error('expected a failed outcome');
  return outcome.error;
}

describe(`commitBatch (${dialect})`, () => {
  it('writes every commit and answers in input order', async () => {
    const tf = await openTestTaskflow();
    const [a, b, c] = await runningFlows(tf, 3);
    const outcomes = await tf.store.commitBatch([setN(a!.id, 1), setN(b!.id, 2), setN(c!.id, 3)]);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true]);
    for (const [flow, n] of [[a, 1], [b, 2], [c, 3]] as const) expect((await tf.store.getFlow(flow!.id))?.state).toEqual({ n });
  });

  it('lets each plan see what the commits before it wrote', async () => {
    const tf = await openTestTaskflow();
    const [a] = await runningFlows(tf, 1);
    const outcomes = await tf.store.commitBatch([setN(a!.id, 1), setN(a!.id, 2)]);
    expect(outcomes).toEqual([expect.objectContaining({ ok: true, result: a!.revision + 1 }), expect.objectContaining({ ok: true, result: a!.revision + 2 })]);
    const events = await tf.manager.listEvents(a!.id);
    expect(events.filter((e) => e.kind === 'state_updated')).toHaveLength(2);
  });

  it('fails only the commit whose plan throws, and writes the others', async () => {
    const tf = await openTestTaskflow();
    const [a, b] = await runningFlows(tf, 2);
    const outcomes = await tf.store.commitBatch([setN(a!.id, 1), setN('00000000-0000-4000-8000-000000000000', 9), setN(b!.id, 2)]);
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    expect((failed(outcomes[1]) as FlowError).code).toBe('not_found');
    expect((await tf.store.getFlow(b!.id))?.state).toEqual({ n: 2 });
  });

  it('reports the failure of a batch of one in its outcome, not by rejecting the call', async () => {
    const tf = await openTestTaskflow();
    const outcomes = await tf.store.commitBatch([setN('00000000-0000-4000-8000-000000000000', 9)]);
    expect(outcomes).toHaveLength(1);
    expect((failed(outcomes[0]) as FlowError).code).toBe('not_found');
  });

  it('rolls back a refused write alone, with revision_mismatch, leaving no audit event of it', async () => {
    const tf = await openTestTaskflow();
    const [a, b] = await runningFlows(tf, 2);
    const stale: BatchCommit<number> = {
      load: { flowIds: [a!.id] },
      plan: (loaded) => {
        const write = updateStateMove(loaded.flows[0]!, new Date(T0 + 1), { n: 99 });
        // Written from a revision the flow no longer has.
        return { result: 0, writes: [{ ...write, fromRevision: write.fromRevision - 1 }] };
      },
    };
    const outcomes = await tf.store.commitBatch([stale, setN(b!.id, 2)]);
    expect((failed(outcomes[0]) as FlowError).code).toBe('revision_mismatch');
    expect(outcomes[1]?.ok).toBe(true);
    expect((await tf.store.getFlow(a!.id))?.state).toEqual({});
    expect((await tf.manager.listEvents(a!.id)).some((e) => e.kind === 'state_updated')).toBe(false);
  });

  it('claims the wakes the commits queue, at most claim.limit in all, and queues the rest for any engine', async () => {
    const tf = await openTestTaskflow();
    const flows = await runningFlows(tf, 3);
    const now = new Date(T0 + 10);
    const waiting = await Promise.all(flows.map((f) => tf.manager.setWaiting(f.id, { kind: 'manual' })));
    const resume = (flow: Flow): BatchCommit<string> => ({
      load: { flowIds: [flow.id] },
      plan: (loaded) => ({ result: flow.id, writes: [resumeMove(loaded.flows[0]!, now, { reason: 'signal', at: now })] }),
    });
    const outcomes = await tf.store.commitBatch(waiting.map(resume), { leaseUntil: T0 + 60_000, limit: 2 });
    const claimed = outcomes.flatMap((o) => (o.ok ? o.claimed : []));
    expect(claimed.map((n) => n.flowId)).toEqual([flows[0]!.id, flows[1]!.id]);
    expect(claimed.every((n) => n.attempts === 1 && n.flow?.status === 'running')).toBe(true);
    const queued = await tf.store.listNotifications(flows.map((f) => f.id));
    expect(queued.map((n) => [n.flowId, n.attempts])).toEqual([
      [flows[0]!.id, 1],
      [flows[1]!.id, 1],
      [flows[2]!.id, 0],
    ]);
  });

  it('refuses a single commit whose revision moved with revision_mismatch, writing nothing of it', async () => {
    const tf = await openTestTaskflow();
    const [a] = await runningFlows(tf, 1);
    const refused = tf.store.commit({ flowIds: [a!.id] }, (loaded) => {
      const write = updateStateMove(loaded.flows[0]!, new Date(T0 + 1), { n: 7 });
      return { result: 0, writes: [{ ...write, fromRevision: write.fromRevision - 1 }] };
    });
    await expect(refused).rejects.toMatchObject({ code: 'revision_mismatch', message: expect.stringContaining(a!.id) });
    expect((await tf.store.getFlow(a!.id))?.revision).toBe(a!.revision);
    expect((await tf.manager.listEvents(a!.id)).some((e) => e.kind === 'state_updated')).toBe(false);
  });

  it('answers an empty batch with no outcomes', async () => {
    const tf = await openTestTaskflow();
    expect(await tf.store.commitBatch([])).toEqual([]);
  });

  it('lands every one of many concurrent commits, refusing only the stale one', async () => {
    const tf = await openTestTaskflow();
    const flows = await runningFlows(tf, 24);
    const calls = flows.map((flow, i) =>
      i === 5
        ? tf.manager.updateState(flow.id, { n: i }, undefined, { expectedRevision: flow.revision - 1 })
        : tf.manager.updateState(flow.id, { n: i }),
    );
    const settled = await Promise.allSettled(calls);
    expect(settled.map((s) => s.status)).toEqual(flows.map((_, i) => (i === 5 ? 'rejected' : 'fulfilled')));
    const after = await Promise.all(flows.map((f) => tf.store.getFlow(f.id)));
    expect(after.map((f) => f?.state)).toEqual(flows.map((_, i) => (i === 5 ? {} : { n: i })));
  });

  it('commits a wait and its audit event together in a batch', async () => {
    const tf = await openTestTaskflow();
    const [a] = await runningFlows(tf, 1);
    const at = new Date(T0 + 60_000);
    const [outcome] = await tf.store.commitBatch([
      { load: { flowIds: [a!.id] }, plan: (loaded) => ({ result: 'ok', writes: [waitMove(loaded.flows[0]!, new Date(T0), { kind: 'timer', at })] }) },
    ]);
    expect(outcome?.ok).toBe(true);
    expect(await tf.store.nextWakeAt()).toBe(at.getTime());
    expect((await tf.manager.listEvents(a!.id)).at(-1)?.kind).toBe('waiting');
  });
});

import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { FlowError, openSqliteStore, openTaskflow, type Flow, type FlowStore, type Taskflow } from '../src/index.js';
import type { Decision, Loaded } from '../src/runtime/store/contract.js';
import { updateStateMove } from '../src/runtime/moves.js';
import { SqliteFlowStore } from '../src/runtime/store/sqlite/store.js';
import { openSqliteWorkerStore, SqliteWorkerStore } from '../src/runtime/store/sqlite/worker/store.js';
import { holdWriteLock } from './support/sqlite-faults.js';
import { newFlow } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';

/**
 * SQLite off the main thread: the connection lives in a worker thread, the plans
 * stay on the caller's thread, and commits made together share one transaction
 * and its fsync (group commit), each in a savepoint of its own.
 */

async function withTaskflow<T>(tf: Taskflow, use: (tf: Taskflow) => Promise<T>): Promise<T> {
  try {
    return await use(tf);
  } finally {
    await tf.close();
  }
}

/** A plan that writes `patch` into the state of flow `id`. */
const patchPlan =
  (id: string, patch: Record<string, number>, beforeWriting?: () => void) =>
  (loaded: Loaded): Decision<Flow> => {
    beforeWriting?.();
    const flow = loaded.flows.find((f) => f.id === id);
    if (!flow) throw new FlowError('not_found', `no flow ${id}`);
    const write = updateStateMove(flow, new Date(flow.updatedAt.getTime() + 1), patch);
    return { result: write.flow, writes: [write] };
  };

/** Each flow has exactly revision + 1 audit events. */
async function expectAuditInvariant(store: FlowStore, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    const flow = (await store.getFlow(id))!;
    expect(await store.listEvents(id)).toHaveLength(flow.revision + 1);
  }
}

describe('the SQLite connection in a worker thread', () => {
  it('is where openTaskflow puts it with `sqlite: { thread: "worker" }`; by default it stays on the calling thread', async () => {
    const path = tempDbPath();
    await withTaskflow(await openTaskflow({ database: path, sqlite: { thread: 'worker' } }), async (tf) => {
      expect(tf.store).toBeInstanceOf(SqliteWorkerStore);
      const flow = await tf.manager.createManaged(newFlow);
      const read = await tf.manager.get(flow.id);
      expect(read?.goal).toBe(newFlow.goal);
      expect(read?.createdAt).toBeInstanceOf(Date);
    });
    await withTaskflow(await openTaskflow({ database: path }), async (tf) => {
      expect(tf.store).toBeInstanceOf(SqliteFlowStore);
      expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toHaveLength(1);
    });
  });

  it('answers calls made while its thread starts on a connection opened first, then hands over to the thread', async () => {
    const path = tempDbPath();
    await withTaskflow(await openTaskflow({ database: path, sqlite: { thread: 'worker' } }), async (tf) => {
      const early = await tf.manager.createManaged(newFlow); // possibly before the thread is up
      await (tf.store as SqliteWorkerStore).connected();
      const late = await tf.manager.updateState(early.id, { step: 1 });
      expect(late.revision).toBe(1);
      expect((await tf.manager.listEvents(early.id)).map((e) => e.kind)).toEqual(['created', 'state_updated']);
    });
  });

  it('refuses an unknown thread with invalid_input, opening nothing', async () => {
    const path = tempDbPath();
    await expect(openTaskflow({ database: path, sqlite: { thread: 'gpu' as 'main' } })).rejects.toEqual(
      expect.objectContaining({ code: 'invalid_input', message: expect.stringMatching(/sqlite\.thread/) }),
    );
  });

  it('fails to open a file that is not SQLite with storage, naming the file, as the main-thread store does', async () => {
    const path = tempDbPath();
    writeFileSync(path, 'these are my holiday notes, not a database\n'.repeat(200));
    const failure = await openTaskflow({ database: path, sqlite: { thread: 'worker' } }).catch((error: unknown) => error);
    expect(FlowError.isInstance(failure)).toBe(true);
    expect(failure).toEqual(expect.objectContaining({ code: 'storage', message: expect.stringContaining(path) }));
    expect((failure as Error).message).toMatch(/is not a taskflow SQLite database/);
  });

  it('keeps a tight loop of awaited runtime calls from starving a host timer', async () => {
    await withTaskflow(await openTaskflow({ database: tempDbPath(), synchronous: 'normal', sqlite: { thread: 'worker' } }), async (tf) => {
      await (tf.store as SqliteWorkerStore).connected();
      const flow = await tf.manager.createManaged(newFlow);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      try {
        for (let i = 0; i < 300 && ticks < 3; i++) await tf.manager.updateState(flow.id, { step: i });
      } finally {
        clearInterval(timer);
      }
      // Each call resolves from a message of the thread, a macrotask: timers run between calls.
      expect(ticks).toBeGreaterThanOrEqual(3);
    });
  });

  it('fails calls in flight with storage when its thread dies, and the next call works on a new thread', async () => {
    const path = tempDbPath();
    await withTaskflow(await openTaskflow({ database: path, busyTimeout: '60s', sqlite: { thread: 'worker' } }), async (tf) => {
      const store = tf.store as SqliteWorkerStore;
      await store.connected();
      const holder = holdWriteLock(path);
      await holder.locked;
      const creating = tf.manager.createManaged(newFlow);
      const failed = creating.catch((error: unknown) => error);
      await (await store.connected()).terminate();
      expect(await failed).toEqual(expect.objectContaining({ code: 'storage', message: expect.stringMatching(/SQLite thread of .* stopped/) }));
      await holder.release();
      const created = await tf.manager.createManaged(newFlow);
      expect((await tf.manager.get(created.id))?.revision).toBe(0);
    });
  });

  it('closes after committing what was queued before the close', async () => {
    const path = tempDbPath();
    const tf = await openTaskflow({ database: path, sqlite: { thread: 'worker' } });
    const creating = Array.from({ length: 10 }, () => tf.manager.createManaged(newFlow));
    const closing = tf.close();
    const created = await Promise.all(creating);
    await closing;
    await withTaskflow(await openTaskflow({ database: path, sqlite: { thread: 'worker' } }), async (again) => {
      expect(await again.manager.listByOwner(newFlow.ownerSessionKey)).toHaveLength(created.length);
    });
    await expect(tf.manager.get(created[0]!.id)).rejects.toEqual(expect.objectContaining({ code: 'storage' }));
  });
});

describe('group commit', () => {
  it('puts commits made together in one transaction, and resolves each once its write is durable', async () => {
    const path = tempDbPath();
    const store = await threaded(path);
    const outside = new Database(path, { readonly: true });
    try {
      const flows = await Promise.all(Array.from({ length: 12 }, () => createFlow(store)));
      const committedOutside = () => outside.prepare("SELECT count(*) AS n FROM flows WHERE json_extract(state_json, '$.done') = 1").get() as { n: number };
      let planned = 0;
      /** At each plan: how many earlier plans' writes another connection could not see yet. */
      const pendingAtPlan: number[] = [];
      const updates = flows.map((flow) =>
        store
          .commit({ flowIds: [flow.id] }, patchPlan(flow.id, { done: 1 }, () => pendingAtPlan.push(planned++ - committedOutside().n)))
          .then((updated) => {
            // Resolved: durable and visible to every other connection.
            const row = outside.prepare('SELECT revision FROM flows WHERE id = ?').get(flow.id) as { revision: number };
            expect(row.revision).toBe(updated.revision);
            return updated;
          }),
      );
      const updated = await Promise.all(updates);
      expect(updated.map((flow) => flow.revision)).toEqual(flows.map(() => 1));
      // Some plan ran while earlier writes were still in its (shared, open) transaction.
      expect(Math.max(...pendingAtPlan)).toBeGreaterThan(0);
      await expectAuditInvariant(store, flows.map((flow) => flow.id));
    } finally {
      outside.close();
      await store.close();
    }
  });

  it('lets a later commit of the same transaction see what an earlier one wrote', async () => {
    const store = await threaded(tempDbPath());
    try {
      const flow = await createFlow(store);
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.commit({ flowIds: [flow.id] }, patchPlan(flow.id, { [`k${i}`]: i }))));
      expect(results.map((f) => f.revision)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const stored = (await store.getFlow(flow.id))!;
      expect(stored.state).toEqual({ k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7 });
      await expectAuditInvariant(store, [flow.id]);
    } finally {
      await store.close();
    }
  });

  it('fails only the commit whose plan throws, with its own error; the others of its transaction are written', async () => {
    const store = await threaded(tempDbPath());
    try {
      const flows = await Promise.all(Array.from({ length: 6 }, () => createFlow(store)));
      const refusal = new FlowError('illegal_transition', 'not this one');
      const settled = await Promise.allSettled(
        flows.map((flow, i) =>
          store.commit(
            { flowIds: [flow.id] },
            patchPlan(flow.id, { done: 1 }, () => {
              if (i === 3) throw refusal;
            }),
          ),
        ),
      );
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect((settled[3] as PromiseRejectedResult).reason).toBe(refusal);
      const revisions = await Promise.all(flows.map(async (flow) => (await store.getFlow(flow.id))!.revision));
      expect(revisions).toEqual([1, 1, 1, 0, 1, 1]);
      await expectAuditInvariant(store, flows.map((flow) => flow.id));
    } finally {
      await store.close();
    }
  });

  it('refuses only the commit whose write is refused (a revision that moved), rolling back its savepoint alone', async () => {
    const store = await threaded(tempDbPath());
    try {
      const [a, b] = await Promise.all([createFlow(store), createFlow(store)]);
      // A stale decision: written from revision 0 after another commit moved the flow to 1.
      const stale = (loaded: Loaded): Decision<Flow> => {
        const flow = loaded.flows[0]!;
        const write = updateStateMove({ ...flow, revision: 0 }, new Date(flow.updatedAt.getTime() + 1), { stale: 1 });
        return { result: write.flow, writes: [write] };
      };
      const settled = await Promise.allSettled([
        store.commit({ flowIds: [a!.id] }, patchPlan(a!.id, { first: 1 })),
        store.commit({ flowIds: [a!.id] }, stale),
        store.commit({ flowIds: [b!.id] }, patchPlan(b!.id, { other: 1 })),
      ]);
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((settled[1] as PromiseRejectedResult).reason).toEqual(expect.objectContaining({ code: 'revision_mismatch' }));
      expect((await store.getFlow(a!.id))!.state).toEqual({ first: 1 });
      expect((await store.getFlow(b!.id))!.revision).toBe(1);
      await expectAuditInvariant(store, [a!.id, b!.id]);
    } finally {
      await store.close();
    }
  });

  it('commitBatch: outcomes in input order, each plan sees the writes of the items before it, a failing item alone rolled back', async () => {
    for (const store of [await threaded(tempDbPath()), openSqliteStore({ path: tempDbPath() })]) {
      try {
        const flow = await createFlow(store);
        const outcomes = await store.commitBatch([
          { load: { flowIds: [flow.id] }, plan: patchPlan(flow.id, { a: 1 }) },
          { load: { flowIds: [flow.id] }, plan: patchPlan(flow.id, { b: 2 }, () => { throw new Error('no b'); }) },
          { load: { flowIds: [flow.id] }, plan: patchPlan(flow.id, { c: 3 }) },
          { load: { flowIds: ['absent'] }, plan: patchPlan('absent', { d: 4 }) },
        ]);
        expect(outcomes.map((o) => o.ok)).toEqual([true, false, true, false]);
        expect(outcomes[0]).toEqual(expect.objectContaining({ ok: true, result: expect.objectContaining({ revision: 1 }), claimed: [] }));
        expect(outcomes[2]).toEqual(expect.objectContaining({ ok: true, result: expect.objectContaining({ revision: 2, state: { a: 1, c: 3 } }) }));
        expect((outcomes[1] as { error: Error }).error.message).toBe('no b');
        expect((outcomes[3] as { error: unknown }).error).toEqual(expect.objectContaining({ code: 'not_found' }));
        expect((await store.getFlow(flow.id))!.state).toEqual({ a: 1, c: 3 });
        await expectAuditInvariant(store, [flow.id]);
      } finally {
        await store.close();
      }
    }
  });

  it('commitBatch with a claim claims at most `limit` of the wakes its plans queue, in the batch', async () => {
    const store = await threaded(tempDbPath());
    try {
      const flows = await Promise.all(Array.from({ length: 3 }, () => createFlow(store)));
      const wakePlan = (id: string) => (loaded: Loaded): Decision<string> => {
        const flow = loaded.flows[0]!;
        const write = updateStateMove(flow, new Date(flow.updatedAt.getTime() + 1), { woken: 1 });
        return { result: id, writes: [{ ...write, wake: { reason: 'manual', at: write.flow.updatedAt } }] };
      };
      const leaseUntil = Date.now() + 60_000;
      const outcomes = await store.commitBatch(flows.map((flow) => ({ load: { flowIds: [flow.id] }, plan: wakePlan(flow.id) })), { leaseUntil, limit: 2 });
      const claimed = outcomes.flatMap((o) => (o.ok ? o.claimed : []));
      expect(claimed.map((c) => c.flowId)).toEqual([flows[0]!.id, flows[1]!.id]);
      expect(claimed[0]!.flow?.state).toEqual({ woken: 1 });
      const queued = await store.listNotifications(flows.map((flow) => flow.id));
      expect(queued.map((n) => n.dueAt.getTime())).toEqual([leaseUntil, leaseUntil, expect.any(Number)]);
      expect(queued[2]!.dueAt.getTime()).toBeLessThan(leaseUntil);
    } finally {
      await store.close();
    }
  });
});

/**
 * A worker store once its thread is up. (Until then its calls run on a connection
 * on this thread, opened first: see the test of that.)
 */
async function threaded(path: string): Promise<SqliteWorkerStore> {
  const store = await openSqliteWorkerStore({ path });
  await store.connected();
  return store;
}

/** A created flow, through a commit (the manager's create path is covered by its own tests). */
async function createFlow(store: FlowStore): Promise<Flow> {
  const now = new Date(Date.UTC(2026, 0, 1));
  const flow: Flow = {
    id: crypto.randomUUID(),
    controllerId: newFlow.controllerId,
    goal: newFlow.goal,
    ownerSessionKey: newFlow.ownerSessionKey,
    requesterOrigin: null,
    currentStep: 'start',
    state: {},
    wait: null,
    status: 'running',
    cancelRequested: false,
    revision: 0,
    createdAt: now,
    updatedAt: now,
  };
  return store.commit({}, () => ({ result: flow, inserts: [{ flow, event: { kind: 'created', payload: {} } }] }));
}

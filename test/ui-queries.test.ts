import { describe, expect, it } from 'vitest';
import { ManualClock, openTaskflow, type Taskflow } from '../src/index.js';
import type { InspectQueries } from '../src/runtime/store/inspect.js';
import type { SqliteFlowStore } from '../src/runtime/store/sqlite/store.js';
import { tempPgDatabase } from './support/pg-database.js';
import { tempDbPath } from './support/temp-db.js';
import { T0, newFlow } from './support/taskflow.js';

/** The inspector's bounded queries, on both stores. */

const stores = [
  { dialect: 'sqlite', database: () => Promise.resolve(tempDbPath()) },
  { dialect: 'postgres', database: () => tempPgDatabase() },
] as const;

async function open(database: string): Promise<{ tf: Taskflow; clock: ManualClock; q: InspectQueries }> {
  const clock = new ManualClock(T0);
  const tf = await openTaskflow({ database, clock, telemetry: false });
  return { tf, clock, q: tf.store.inspect!() };
}

describe.each(stores)('inspector queries on $dialect', ({ database }) => {
  it('finds flows by step and by text in the goal, each match once, however small the scan window', async () => {
    const { tf, clock, q } = await open(await database());
    try {
      const wanted = new Set<string>();
      for (let i = 0; i < 60; i++) {
        clock.advance(1);
        const special = i % 7 === 0;
        const flow = await tf.manager.createManaged({ ...newFlow, goal: special ? `Refund Order ${i}` : `ship order ${i}`, currentStep: special ? 'refund' : 'ship' });
        if (special) wanted.add(flow.id);
      }
      for (const filter of [{ step: 'refund' }, { goalText: 'refund order' }]) {
        const seen: string[] = [];
        let after: { updatedAt: number; id: string } | undefined;
        let requests = 0;
        do {
          const page = await q.searchFlows({ status: 'created', limit: 3, scanLimit: 10, ...filter, ...(after ? { after } : {}) });
          seen.push(...page.flows.map((f) => f.id));
          after = page.next;
          requests++;
        } while (after && requests < 100);
        expect(seen.sort()).toEqual([...wanted].sort());
        expect(requests).toBeGreaterThan(3);
      }
    } finally {
      await tf.close();
    }
  });

  it('stops a filtered page at its scan window and says where to continue', async () => {
    const { tf, clock, q } = await open(await database());
    try {
      for (let i = 0; i < 30; i++) {
        clock.advance(1);
        await tf.manager.createManaged({ ...newFlow, goal: `ship order ${i}` });
      }
      const page = await q.searchFlows({ status: 'created', limit: 5, scanLimit: 10, goalText: 'no such goal' });
      expect(page.flows).toEqual([]);
      expect(page.windowEnded).toBe(true);
      expect(page.scanned).toBe(10);
      expect(page.next).toBeDefined();
    } finally {
      await tf.close();
    }
  });

  it('narrows by owner and controller', async () => {
    const { tf, q } = await open(await database());
    try {
      const mine = await tf.manager.createManaged({ ...newFlow, ownerSessionKey: 'agent:a:session:1', controllerId: 'a/ctl' });
      await tf.manager.createManaged({ ...newFlow, ownerSessionKey: 'agent:a:session:1', controllerId: 'b/ctl' });
      await tf.manager.createManaged({ ...newFlow, ownerSessionKey: 'agent:b:session:1', controllerId: 'a/ctl' });
      const page = await q.searchFlows({ status: 'created', limit: 10, scanLimit: 100, owner: 'agent:a:session:1', controller: 'a/ctl' });
      expect(page.flows.map((f) => f.id)).toEqual([mine.id]);
    } finally {
      await tf.close();
    }
  });

  it('lists notifications being retried, not the dead ones nor the fresh ones', async () => {
    const { tf, q } = await open(await database());
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const flow = await tf.manager.createManaged(newFlow);
        await tf.manager.startRunning(flow.id);
        await tf.manager.setWaiting(flow.id, { kind: 'manual' });
        await tf.engine.signal(flow.id, {});
        ids.push(flow.id);
      }
      const claimed = await tf.store.claimNotifications(T0, 1_000, 10);
      expect(claimed).toHaveLength(3);
      const [retried, parked] = claimed.filter((n) => n.flowId !== ids[2]);
      await tf.store.retryNotification(retried!, T0 + 5_000, 'handler threw: boom');
      await tf.store.parkNotification(parked!, T0, 'gave up');
      const retrying = await q.retryingNotifications(10);
      expect(retrying.map((n) => [n.flowId, n.attempts, n.lastError])).toEqual([[retried!.flowId, 1, 'handler threw: boom']]);
    } finally {
      await tf.close();
    }
  });

  it('groups event waits by topic and key', async () => {
    const { tf, q } = await open(await database());
    try {
      for (const key of ['INV-1', 'INV-1', 'INV-2']) {
        const flow = await tf.manager.createManaged(newFlow);
        await tf.manager.startRunning(flow.id);
        await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'invoice.paid', correlationId: key });
      }
      expect(await q.eventWaits(10)).toEqual([
        { topic: 'invoice.paid', correlationId: 'INV-1', flows: 2 },
        { topic: 'invoice.paid', correlationId: 'INV-2', flows: 1 },
      ]);
    } finally {
      await tf.close();
    }
  });

  it('reads resumes with their reason and the due time of the timer that woke them, and counts events per hour', async () => {
    const { tf, clock, q } = await open(await database());
    try {
      const timed = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(timed.id);
      await tf.manager.setWaiting(timed.id, { kind: 'timer', at: T0 + 60_000 });
      const signalled = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(signalled.id);
      await tf.manager.setWaiting(signalled.id, { kind: 'manual' });
      clock.set(T0 + 60_250);
      await tf.engine.tick();
      await tf.engine.signal(signalled.id, {});
      await tf.manager.finish(signalled.id);
      const resumes = await q.recentResumes(T0 - 3_600_000, 100);
      expect(resumes.map((r) => [r.reason, r.at - (r.dueAt ?? r.at)]).sort()).toEqual([['signal', 0], ['timer', 250]]);
      const created = await q.eventsPerHour('created', T0 - 3_600_000, 100);
      expect([...created.hours.entries()]).toEqual([[T0, 2]]);
      expect((await q.eventsPerHour('finished', T0, 100)).hours.get(T0)).toBe(1);
      expect((await q.eventsPerHour('created', T0, 1)).capped).toBe(true);
    } finally {
      await tf.close();
    }
  });

  it('counts flows by status and waiting flows by kind, each up to a bound', async () => {
    const { tf, q } = await open(await database());
    try {
      for (const wait of [{ kind: 'manual' as const }, { kind: 'manual' as const }, { kind: 'timer' as const, at: T0 + 1_000 }]) {
        const flow = await tf.manager.createManaged(newFlow);
        await tf.manager.startRunning(flow.id);
        await tf.manager.setWaiting(flow.id, wait);
      }
      expect(await q.waitingKinds(100)).toEqual({ kinds: { manual: 2, timer: 1 }, counted: 3, capped: false });
      expect((await q.waitingKinds(2)).capped).toBe(true);
      await tf.manager.createManaged(newFlow);
      expect(await q.countByStatus(100)).toEqual({ counts: { created: 1, waiting: 3 }, capped: [] });
      expect(await q.countByStatus(2)).toEqual({ counts: { created: 1, waiting: 2 }, capped: ['waiting'] });
    } finally {
      await tf.close();
    }
  });
});

describe('inspector query plans on SQLite', () => {
  it('reads the charts by (kind, at) and the filtered list by (status, updated_at), never by a full scan', async () => {
    const { tf } = await open(tempDbPath());
    try {
      const sqlite = (tf.store as SqliteFlowStore).sqlite;
      const plan = (text: string, ...params: unknown[]) =>
        (sqlite.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('\n');
      const perHour = plan(`SELECT at FROM flow_events WHERE kind = ? AND at >= ? ORDER BY at DESC LIMIT ?`, 'created', 0, 10);
      expect(perHour).toMatch(/USING COVERING INDEX flow_events_kind_at/);
      const window = plan(`SELECT rowid, updated_at, goal FROM flows WHERE status = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?`, 'waiting', 10);
      expect(window).toMatch(/USING INDEX flows_status_updated/);
      expect(window).not.toMatch(/TEMP B-TREE/);
      const owned = plan(`SELECT rowid FROM flows INDEXED BY flows_owner_created WHERE status = ? AND owner_session_key = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?`, 'waiting', 'agent:a', 10);
      expect(owned).toMatch(/USING INDEX flows_owner_created \(owner_session_key=\?\)/);
    } finally {
      await tf.close();
    }
  });
});

describe.each(stores)('tf.onCommit on $dialect', ({ database }) => {
  it('reports the flows each commit through the handle created or wrote, until unsubscribed', async () => {
    const { tf } = await open(await database());
    try {
      const seen: string[][] = [];
      const stop = tf.onCommit((ids) => seen.push([...ids]));
      const flow = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(flow.id);
      await tf.manager.setWaiting(flow.id, { kind: 'manual' });
      await tf.engine.signal(flow.id, {});
      stop();
      await tf.manager.finish(flow.id);
      expect(seen).toEqual([[flow.id], [flow.id], [flow.id], [flow.id]]);
    } finally {
      await tf.close();
    }
  });
});

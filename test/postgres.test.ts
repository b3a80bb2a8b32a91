import { describe, expect, it } from 'vitest';
import { openTaskflow, type Taskflow } from '../src/index.js';
import { tempPgDatabase } from './support/pg-database.js';
import { newFlow } from './support/taskflow.js';

/** Several runtimes on one PostgreSQL database, as several processes would be. */
async function openRuntimes(count: number): Promise<{ url: string; runtimes: Taskflow[]; close(): Promise<void> }> {
  const url = await tempPgDatabase();
  const runtimes = await Promise.all(Array.from({ length: count }, () => openTaskflow({ database: url })));
  return { url, runtimes, close: async () => void (await Promise.all(runtimes.map((tf) => tf.close()))) };
}

async function waitingOnTimer(tf: Taskflow, at: number): Promise<string> {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  await tf.manager.setWaiting(flow.id, { kind: 'timer', at });
  return flow.id;
}

describe('PostgreSQL shared by several runtimes', () => {
  it('splits due flows between runtimes and resumes each exactly once', async () => {
    const { runtimes, close } = await openRuntimes(3);
    try {
      const at = Date.now() + 100;
      const ids = await Promise.all(Array.from({ length: 300 }, () => waitingOnTimer(runtimes[0]!, at)));
      await new Promise((r) => setTimeout(r, 150));
      const results = await Promise.all(runtimes.map((tf) => tf.engine.tick()));
      expect(results.reduce((sum, r) => sum + r.resumed, 0)).toBe(300);
      for (const id of ids) {
        expect((await runtimes[1]!.manager.listEvents(id)).filter((e) => e.kind === 'resumed')).toHaveLength(1);
      }
    } finally {
      await close();
    }
  });

  it('never lets an event and a wait on the same key miss each other', async () => {
    const { runtimes, close } = await openRuntimes(2);
    const [a, b] = runtimes as [Taskflow, Taskflow];
    try {
      const flows = await Promise.all(
        Array.from({ length: 40 }, async () => {
          const flow = await a.manager.createManaged(newFlow);
          return a.manager.startRunning(flow.id);
        }),
      );
      await Promise.all(
        flows.flatMap((flow, i) => [
          a.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'race', correlationId: `k${i}` }),
          b.engine.deliver({ topic: 'race', correlationId: `k${i}`, payload: { i } }),
        ]),
      );
      for (const [i, flow] of flows.entries()) {
        expect((await a.manager.get(flow.id))!).toMatchObject({ status: 'running', state: { resume_event: { i } } });
      }
    } finally {
      await close();
    }
  });

  it('resumes once when the same event id is delivered by two runtimes at once', async () => {
    const { runtimes, close } = await openRuntimes(2);
    try {
      const flow = await runtimes[0]!.manager.createManaged(newFlow);
      await runtimes[0]!.manager.startRunning(flow.id);
      await runtimes[0]!.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'dup', correlationId: 'c' });
      const results = await Promise.all(runtimes.map((tf) => tf.engine.deliver({ topic: 'dup', correlationId: 'c', eventId: 'msg-1' })));
      expect(results.map((r) => r.resumed.length).sort()).toEqual([0, 1]);
      expect(results.filter((r) => r.duplicate)).toHaveLength(1);
    } finally {
      await close();
    }
  });

  it('returns one flow for concurrent creates with the same idempotency key', async () => {
    const { runtimes, close } = await openRuntimes(2);
    try {
      const created = await Promise.all(
        Array.from({ length: 10 }, (_, i) => runtimes[i % 2]!.manager.createManaged({ ...newFlow, idempotencyKey: 'order-42' })),
      );
      expect(new Set(created.map((f) => f.id)).size).toBe(1);
    } finally {
      await close();
    }
  });

  it('lands every concurrent update from several runtimes', async () => {
    const { runtimes, close } = await openRuntimes(3);
    try {
      const flow = await runtimes[0]!.manager.createManaged(newFlow);
      await Promise.all(Array.from({ length: 30 }, (_, i) => runtimes[i % 3]!.manager.updateState(flow.id, { [`k${i}`]: i })));
      const after = (await runtimes[1]!.manager.get(flow.id))!;
      expect(after.revision).toBe(30);
      expect(Object.keys(after.state)).toHaveLength(30);
    } finally {
      await close();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { openTaskflow, type Taskflow } from '../src/index.js';
import { tempPgDatabase } from './support/pg-database.js';

/**
 * Grouped commits on PostgreSQL take the locks of their items one after the
 * other, so two groups (or a group and a lone commit) on shared keys in another
 * order can deadlock. PostgreSQL checks a lock wait for deadlock once: an item
 * retried inside its group, still holding the locks of the items before it,
 * waited behind the same waiter again and lost again every second, until the
 * callers timed out. The group now rolls back whole and runs again.
 */
describe('grouped commits on shared keys (PostgreSQL)', () => {
  it('two runtimes delivering 400 events on 100 shared keys at once: every delivery lands', async () => {
    const database = await tempPgDatabase();
    const runtimes: Taskflow[] = [];
    try {
      for (let r = 0; r < 2; r++) runtimes.push(await openTaskflow({ database, inbox: { maxPerKey: 1_000, maxTotal: 10_000 } }));
      const results = await Promise.allSettled(
        runtimes.flatMap((tf, r) => Array.from({ length: 200 }, (_, i) => tf.engine.deliver({ topic: 'orders.placed', correlationId: `K-${(i * 7 + r * 13) % 100}` }))),
      );
      const failures = results.filter((result) => result.status === 'rejected');
      expect(failures.map((failure) => String(failure.reason)).slice(0, 3)).toEqual([]);
      expect(results.every((result) => result.status === 'fulfilled' && result.value.kept)).toBe(true);
      expect((await runtimes[0]!.store.listInbox()).reduce((sum, key) => sum + key.events, 0)).toBe(400);
    } finally {
      for (const tf of runtimes) await tf.close();
    }
  });
});

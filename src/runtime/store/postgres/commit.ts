import pg from 'pg';
import { FlowError } from '../../errors.js';
import type { BatchCommit, BatchOutcome, Committed, Decision, Loaded, LoadRequest } from '../contract.js';
import { GroupCommitter, type GroupItem } from './commit-queue.js';
import type { PgConnection } from './connection.js';
import { errorCode, pgStorageError } from './errors.js';
import { runLoad } from './load-sql.js';
import { writeDecision } from './write-sql.js';
import { inboxBound, inboxTotalCheck, inboxTotalMoved } from './inbox-total.js';
import { sendAll } from './pipeline.js';

const MAX_ATTEMPTS = 20;
/**
 * Most commits of this process running at once in transactions of their own;
 * the commits beyond share one transaction (group commit, one WAL flush for all).
 * More buys no throughput, the group carrying the crowd, and costs the host: each
 * transaction in flight is one more server backend competing for the CPU, and one
 * more socket answering in the same turn of the event loop. On 2 cores with 32
 * callers, 4 instead of the pool's 10 took a 1 ms host timer's p99 lateness from
 * about 7 ms over idle to about 2 to 4 ms, at the same transitions/s (bench/event-loop.ts).
 */
const MAX_DIRECT_COMMITS = 4;
/** unique_violation, serialization_failure, deadlock_detected: the transaction is retried. */
const RETRYABLE = new Set(['23505', '40001', '40P01']);
const DEADLOCK = '40P01';

/** Commits beyond {@link MAX_DIRECT_COMMITS} (or the pool's connections, when fewer) share a transaction. */
export function groupCommitterOf(c: PgConnection): GroupCommitter {
  return new GroupCommitter(
    Math.max(1, Math.min(c.pool.options.max ?? 10, MAX_DIRECT_COMMITS)),
    (item) => commitOne(c, item),
    (items) => runGroup(c, items),
  );
}

export async function commit<T>(c: PgConnection, group: GroupCommitter, load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
  return (await commitWith(c, group, load, plan, undefined)).result;
}

export async function commitClaiming<T>(c: PgConnection, group: GroupCommitter, load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit = Infinity): Promise<Committed<T>> {
  return commitWith(c, group, load, plan, leaseUntil, limit);
}

/**
 * Several commits in one transaction: `BEGIN`, then per commit a savepoint, its
 * load (one round trip) and its write (one statement), then one `COMMIT`. A
 * plan that throws, or a write that is refused (a revision that moved, an
 * error of the server), rolls back to its own savepoint and fails alone; a
 * deadlock or unique violation retries that commit alone. A failure of the
 * connection or of the `COMMIT` fails every commit of the batch.
 */
export async function commitBatch<T>(c: PgConnection, items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> {
  c.assertOpen();
  if (items.length === 0) return [];
  const group = items.map((item) => ({ load: item.load, plan: item.plan, ...(claim ? { leaseUntil: claim.leaseUntil } : {}), limit: 0 }));
  return runGroup(c, group, claim ? (claim.limit ?? Infinity) : 0);
}

async function commitWith<T>(c: PgConnection, group: GroupCommitter, load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number | undefined, limit = Infinity): Promise<Committed<T>> {
  c.assertOpen();
  const outcome = await group.commit({ load, plan, ...(leaseUntil === undefined ? {} : { leaseUntil }), limit });
  if (!outcome.ok) throw outcome.error;
  return { result: outcome.result, claimed: outcome.claimed };
}

/** One commit in a transaction of its own: `BEGIN` and its load in one round trip, its write in one statement, `COMMIT`. */
async function commitOne<T>(c: PgConnection, item: GroupItem<T>): Promise<BatchOutcome<T>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await c.transaction(
        'commit',
        async (_tx, client, phase) => {
          const loaded = await runLoad(client, item.load, ['BEGIN']);
          const decision = item.plan(loaded);
          const bound = inboxBound(loaded, decision);
          // The write and the COMMIT go together: from here, a lost answer leaves the outcome unknown.
          phase.committing = true;
          const { claimed } = await writeDecision(client, decision, {
            leaseUntil: item.leaseUntil,
            limit: item.limit,
            storeId: c.id,
            commit: true,
            ...(bound === undefined ? {} : { inboxBound: bound }),
          });
          return { ok: true as const, result: decision.result, claimed };
        },
        { begun: true, commits: true },
      );
    } catch (error) {
      if (attempt < MAX_ATTEMPTS && isStorage(error) && (RETRYABLE.has(errorCode(error.cause) ?? '') || inboxTotalMoved(error))) continue;
      throw error;
    }
  }
}

/**
 * Commits `items` in one transaction, a savepoint each. With `sharedLimit`,
 * the items claim at most that many wakes in all (commitBatch); without it,
 * each item claims up to its own `limit` (grouped commits of many callers).
 * A deadlock of an item while earlier items hold their locks rolls the whole
 * group back and runs it again: nothing of it was written. So does a check of
 * the inbox's total that finds events kept meanwhile (`inbox-total.ts`).
 */
async function runGroup<T>(c: PgConnection, items: readonly GroupItem<T>[], sharedLimit?: number): Promise<BatchOutcome<T>[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runGroupOnce(c, items, sharedLimit);
    } catch (error) {
      if (attempt < MAX_ATTEMPTS && isStorage(error) && (errorCode(error.cause) === DEADLOCK || inboxTotalMoved(error))) continue;
      throw error;
    }
  }
}

/** One try of {@link runGroup}: one transaction. */
async function runGroupOnce<T>(c: PgConnection, items: readonly GroupItem<T>[], sharedLimit?: number): Promise<BatchOutcome<T>[]> {
  return c.transaction(
    'commitBatch',
    async (_tx, client, phase) => {
      const outcomes: BatchOutcome<T>[] = [];
      let prefix: string[] = ['BEGIN'];
      let claimedInAll = 0;
      let holdsLocks = false;
      const kept: { bound?: number } = {};
      for (const item of items) {
        for (let attempt = 1; ; attempt++) {
          const limit = sharedLimit === undefined ? item.limit : Math.max(0, sharedLimit - claimedInAll);
          const outcome = await commitItem(c, client, item, [...prefix, 'SAVEPOINT taskflow_item'], limit, kept);
          prefix = [];
          if (outcome.ok) {
            claimedInAll += outcome.claimed.length;
            outcomes.push(outcome);
            prefix = ['RELEASE SAVEPOINT taskflow_item'];
            holdsLocks = true;
            break;
          }
          // Only this item's work is undone; the batch goes on.
          await client.query('ROLLBACK TO SAVEPOINT taskflow_item; RELEASE SAVEPOINT taskflow_item');
          const { error } = outcome;
          if (error instanceof pg.DatabaseError) {
            // A deadlock while earlier items hold their locks: PostgreSQL checks a lock wait once, so this item
            // retried here would wait behind the same waiter and lose again, every second. The whole group
            // rolls back instead, which frees that waiter, and runs again (runGroup).
            if (error.code === DEADLOCK && holdsLocks) throw error;
            if (attempt < MAX_ATTEMPTS && RETRYABLE.has(error.code ?? '')) continue;
            outcomes.push({ ok: false, error: pgStorageError('commit', error, c.server) });
          } else outcomes.push(outcome);
          break;
        }
      }
      phase.committing = true;
      await sendAll(client, [...(kept.bound === undefined ? [] : inboxTotalCheck(kept.bound)), { text: 'COMMIT' }]);
      return outcomes;
    },
    { begun: true, commits: true },
  );
}

/**
 * One item of a group, after `statements` (its savepoint): its load, plan and
 * write. What fails the item alone comes back as an outcome (the plan's error,
 * a refused write, an error of the server); a broken connection throws.
 */
async function commitItem<T>(c: PgConnection, client: pg.PoolClient, item: GroupItem<T>, statements: readonly string[], limit: number, kept: { bound?: number }): Promise<BatchOutcome<T>> {
  let loaded: Loaded;
  try {
    loaded = await runLoad(client, item.load, statements);
  } catch (error) {
    if (error instanceof pg.DatabaseError) return { ok: false, error };
    throw error;
  }
  let decision: Decision<T>;
  try {
    decision = item.plan(loaded);
  } catch (error) {
    return { ok: false, error };
  }
  try {
    const { claimed } = await writeDecision(client, decision, { leaseUntil: item.leaseUntil, limit, storeId: c.id });
    const bound = inboxBound(loaded, decision);
    if (bound !== undefined) kept.bound = bound;
    return { ok: true, result: decision.result, claimed };
  } catch (error) {
    if (error instanceof pg.DatabaseError || FlowError.isInstance(error)) return { ok: false, error };
    throw error;
  }
}

function isStorage(error: unknown): error is FlowError {
  return FlowError.isInstance(error) && error.code === 'storage';
}

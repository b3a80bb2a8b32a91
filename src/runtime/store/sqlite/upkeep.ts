import type { Heartbeat } from '../diagnostics.js';
import { HEARTBEATS_SQL } from '../diagnostics-sql.js';
import { bridgeToJson } from '../diagnostics.js';
import { nextTurn } from '../../event-loop-slice.js';
import { cachedStatement } from './cached-statements.js';
import type { SqliteConnection } from './connection.js';

/** Terminal flows deleted per transaction by `pruneTerminal`, so no transaction holds the lock for long. */
const PRUNE_BATCH = 500;

/** Deletes in transactions of {@link PRUNE_BATCH} flows, letting the event loop run between them. */
export async function pruneTerminal(s: SqliteConnection, cutoff: number): Promise<number> {
  let pruned = 0;
  for (;;) {
    const removed = await s.write((c) => c.inTransaction.immediate(() => c.q.pruneTerminal.run({ cutoff, limit: PRUNE_BATCH }).changes) as number);
    pruned += removed;
    if (removed < PRUNE_BATCH) return pruned;
    await nextTurn();
  }
}

export async function recordHeartbeat(s: SqliteConnection, beat: Heartbeat, forgetBefore: number): Promise<void> {
  await s.write(({ sqlite, inTransaction }) =>
    inTransaction.immediate(() => {
      cachedStatement(sqlite, HEARTBEATS_SQL.upsert).run(beat.id, beat.host, beat.startedAt.getTime(), beat.beatAt.getTime(), bridgeToJson(beat.bridge));
      cachedStatement(sqlite, HEARTBEATS_SQL.forget).run(forgetBefore);
    }),
  );
}

export async function purgeExpiredEvents(s: SqliteConnection, now: number): Promise<number> {
  return s.write(
    ({ q, inTransaction }) =>
      inTransaction.immediate(() => q.purgeKeptEvents.run({ now }).changes + q.purgeSeenEvents.run({ now }).changes) as number,
  );
}


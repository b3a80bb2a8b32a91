import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Taskflow } from '../src/index.js';
import BetterSqlite from 'better-sqlite3';

const raw = new WeakMap<object, Database.Database>();

/**
 * A raw better-sqlite3 connection on the database of a SQLite-backed runtime: the
 * store's own when it lives on this thread, else (the worker-thread store) a
 * second connection on the same file, opened once per store. The store is read by
 * shape (its `sqlite` or its `path`), not by class, so this file imports nothing
 * from src/ but the public entry: `npm run bench -- --against=<ref>` runs these
 * files over another commit's src/.
 */
export function rawConnection(tf: Taskflow): Database.Database {
  const store = tf.store as unknown as { readonly sqlite?: unknown; readonly path?: unknown };
  if (store.sqlite instanceof BetterSqlite) return store.sqlite;
  if (typeof store.path !== 'string') throw new Error('the benchmarks need the SQLite store');
  let connection = raw.get(store);
  if (!connection) {
    connection = rawConnectionAt(store.path);
    raw.set(store, connection);
  }
  return connection;
}

/** A second connection on the SQLite file at `path` (its runtime keeps its own); close it when done. */
export function rawConnectionAt(path: string): Database.Database {
  const connection = new BetterSqlite(path);
  connection.pragma('busy_timeout = 5000');
  connection.pragma('foreign_keys = ON');
  return connection;
}

export interface SeedOptions {
  /** Wake time of the i-th timer flow (epoch ms). */
  wakeAt: (i: number) => number;
  /** Every n-th flow waits on an external event instead of a timer (0: none). Default 5. */
  eventEvery?: number;
  /** Number added to the row index, so several seed calls never collide on keys. Default 0. */
  offset?: number;
  now?: number;
}

/**
 * Bulk-inserts `count` waiting flows with raw SQL in one transaction: the rows
 * `setWaiting` would leave (revision 2), minus their audit events, which no
 * benchmarked query reads. Every `eventEvery`-th flow waits on an external event
 * (half of those with a timeout at `wakeAt`), the rest on a timer at `wakeAt`.
 */
export function seedWaitingFlows(sqlite: Database.Database, count: number, options: SeedOptions): void {
  const eventEvery = options.eventEvery ?? 5;
  const offset = options.offset ?? 0;
  const now = options.now ?? Date.now();
  const insert = sqlite.prepare(
    `INSERT INTO flows (id, controller_id, goal, owner_session_key, requester_origin, current_step, state_json,
       wait_json, status, cancel_requested, revision, idempotency_key, wake_at, wait_topic, wait_correlation_id,
       created_at, updated_at)
     VALUES (?, 'bench/controller', 'ship the order once its invoice is paid', ?, NULL, 'await-payment', ?,
       ?, 'waiting', 0, 2, NULL, ?, ?, ?, ?, ?)`,
  );
  sqlite.transaction(() => {
    for (let k = 0; k < count; k++) {
      const i = k + offset;
      const owner = `agent:bench:session:${i % 1000}`;
      const state = `{"order":${i},"invoice":"INV-${i}"}`;
      const at = options.wakeAt(i);
      if (eventEvery > 0 && i % eventEvery === 0) {
        const topic = 'invoice.paid';
        const correlationId = `INV-${i}`;
        const timeout = i % (eventEvery * 2) === 0;
        const wait = JSON.stringify({
          kind: 'external_event',
          topic,
          correlationId,
          ...(timeout ? { timeoutAt: new Date(at).toISOString() } : {}),
        });
        insert.run(randomUUID(), owner, state, wait, timeout ? at : null, topic, correlationId, now, now);
      } else {
        const wait = JSON.stringify({ kind: 'timer', at: new Date(at).toISOString() });
        insert.run(randomUUID(), owner, state, wait, at, null, null, now, now);
      }
    }
  })();
}

/**
 * The reference crate's tick: load every waiting flow, parse each wait and check
 * it in memory. Returns how many were due (nothing is written when none is).
 */
export function fullScanTick(sqlite: Database.Database, now: number): { scanned: number; due: number } {
  const rows = sqlite.prepare(`SELECT * FROM flows WHERE status = 'waiting'`).all() as Array<{
    wait_json: string | null;
    cancel_requested: number;
  }>;
  let due = 0;
  for (const row of rows) {
    if (row.cancel_requested) {
      due++;
      continue;
    }
    if (row.wait_json === null) continue;
    const wait = JSON.parse(row.wait_json) as { kind: string; at?: string; timeoutAt?: string };
    const at = wait.kind === 'timer' ? wait.at : wait.timeoutAt;
    if (at !== undefined && Date.parse(at) <= now) due++;
  }
  return { scanned: rows.length, due };
}

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { FlowStore } from '../src/index.js';
import { openPostgresStore } from '../src/postgres.js';

/** The PostgreSQL server the pg benchmarks use (a database of their own is created on it per run). */
export const PG_ADMIN_URL = process.env.TASKFLOW_BENCH_PG ?? process.env.TASKFLOW_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Which PostgreSQL store: today's, or the one before batched statements (the same-run baseline). */
export type PgPath = 'batched' | 'before';

/** A fresh database; `drop()` removes it. */
export async function tempPgDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `taskflow_bench_${label}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined) };
}

/** Whether the server answers within 2 s (a benchmark skips its PostgreSQL rows otherwise). */
export async function pgReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Opens (and migrates) the store of `path` on `url`. */
export async function openPgStore(url: string, path: PgPath, maxConnections = 10): Promise<FlowStore> {
  // Its 500-flow transactions of 1,500 round trips can pass the default 30 s call limit on a loaded machine: give it room.
  if (path === 'before') {
    // Loaded only when asked for: it is built from store internals, and `--against` runs this file over another commit's src/.
    const { openPostgresStoreBefore } = await import('./baseline/pg-store-before.js');
    return openPostgresStoreBefore({ connectionString: url, maxConnections, queryTimeout: 600_000 });
  }
  return openPostgresStore({ connectionString: url, maxConnections });
}

/**
 * Bulk-inserts `count` waiting timer flows at `wakeAt` (spread over `spreadMs`
 * after it when given: the i-th at wakeAt + (i × 7919 mod spreadMs)) (plus, with `eventEvery`,
 * every n-th one waiting on `invoice.paid`/`INV-i` instead) in one statement: the
 * rows `setWaiting` leaves (revision 2), without their audit events.
 */
export async function seedPgWaitingFlows(url: string, count: number, options: { wakeAt: number; eventEvery?: number; now?: number; offset?: number; spreadMs?: number }): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const now = options.now ?? Date.now();
  const every = options.eventEvery ?? 0;
  try {
    await client.query(
      `INSERT INTO flows (id, controller_id, goal, owner_session_key, requester_origin, current_step, state_json, wait_json, status,
         cancel_requested, revision, idempotency_key, wake_at, wait_topic, wait_correlation_id, created_at, updated_at)
       SELECT gen_random_uuid()::text, 'bench/controller', 'ship the order once its invoice is paid', 'agent:bench:session:' || (i % 1000), NULL,
         'await-payment', '{"order":' || i || ',"invoice":"INV-' || i || '"}',
         CASE WHEN $4 > 0 AND i % $4 = 0 THEN '{"kind":"external_event","topic":"invoice.paid","correlationId":"INV-' || i || '"}'
              ELSE '{"kind":"timer","at":"' || to_char(to_timestamp(($3::bigint + (i::bigint * 7919) % $2::bigint) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}' END,
         'waiting', 0, 2, NULL,
         CASE WHEN $4 > 0 AND i % $4 = 0 THEN NULL ELSE $3::bigint + (i::bigint * 7919) % $2::bigint END,
         CASE WHEN $4 > 0 AND i % $4 = 0 THEN 'invoice.paid' END,
         CASE WHEN $4 > 0 AND i % $4 = 0 THEN 'INV-' || i END,
         $5::bigint, $5::bigint
       FROM generate_series($6::int, $6::int + $1::int - 1) AS i`,
      [count, Math.max(1, Math.trunc(options.spreadMs ?? 1)), options.wakeAt, every, now, options.offset ?? 0],
    );
    await client.query('ANALYZE flows');
  } finally {
    await client.end();
  }
}

/** Wall-clock time with sub-millisecond resolution. */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

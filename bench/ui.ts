/**
 * The web inspector at scale: its pages' server time at 1,000,000 flows against
 * the same pages at 1,000 (the baseline, same run), and live updates while the
 * host commits 1,000 times a second against the same at 10 a second.
 */
import type Database from 'better-sqlite3';
import { openTaskflow, silentLogger, type Taskflow } from '../src/index.js';
import { inspectorApp } from '../src/ui/app.js';
import { LiveRevision } from '../src/ui/live.js';
import { startInspector } from '../src/ui/index.js';
import { goal, median, ms, num, quantile, ratio, sleep, tempFolder, type BenchOptions, type BenchResult } from './report.js';
import { rawConnection } from './seed.js';

const GOAL_MS = 50;
const HOUR = 3_600_000;

/**
 * Bulk-inserts `count` flows and their audit events with one recursive CTE each,
 * spread over the last 24 hours: 40 % waiting (a fifth of them on an event, the rest
 * on a timer), 10 % running after a resume, 40 % finished, 5 % failed, 5 % cancelled;
 * 1,000 owners, 20 controllers, 4 steps. Each flow has its `created` event; the
 * running ones a `waiting` and a `resumed` event (timer, event or signal; timers
 * 0–999 ms late); the terminal ones their terminal event.
 */
export function seedFlows(sqlite: Database.Database, count: number, now: number): void {
  const span = 24 * HOUR - 60_000;
  const step = span / count;
  sqlite.transaction(() => {
    sqlite
      .prepare(
        `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1),
         r AS (SELECT i, CAST(? - (? - i) * ? AS INTEGER) AS u,
                 CASE WHEN i % 20 < 8 THEN 'waiting' WHEN i % 20 < 10 THEN 'running' WHEN i % 20 < 18 THEN 'finished' WHEN i % 20 = 18 THEN 'failed' ELSE 'cancelled' END AS status
               FROM n)
         INSERT INTO flows (id, controller_id, goal, owner_session_key, requester_origin, current_step, state_json, wait_json, status,
           cancel_requested, revision, idempotency_key, wake_at, wait_topic, wait_correlation_id, created_at, updated_at)
         SELECT printf('f%09d', i), 'bench/c' || (i % 20), 'ship order ' || i || ' once invoice INV-' || i || ' is paid',
           'agent:bench:session:' || (i % 1000), NULL,
           CASE i % 4 WHEN 0 THEN 'await_payment' WHEN 1 THEN 'ship' WHEN 2 THEN 'notify' ELSE 'refund' END,
           '{"order":' || i || ',"invoice":"INV-' || i || '"}',
           CASE WHEN status <> 'waiting' THEN NULL
                WHEN i % 5 = 0 THEN '{"kind":"external_event","topic":"invoice.paid","correlationId":"INV-' || i || '"}'
                ELSE '{"kind":"timer","at":"' || strftime('%Y-%m-%dT%H:%M:%fZ', (? + 864000000 + i) / 1000.0, 'unixepoch') || '"}' END,
           status, 0, 2, NULL,
           CASE WHEN status = 'waiting' AND i % 5 <> 0 THEN ? + 864000000 + i END,
           CASE WHEN status = 'waiting' AND i % 5 = 0 THEN 'invoice.paid' END,
           CASE WHEN status = 'waiting' AND i % 5 = 0 THEN 'INV-' || i END,
           u - 60000, u
         FROM r`,
      )
      .run(count, now, count, step, now, now);
    sqlite
      .prepare(
        `INSERT INTO flow_events (flow_id, kind, payload_json, at)
         SELECT id, 'created', '{}', created_at FROM flows ORDER BY rowid`,
      )
      .run();
    sqlite
      .prepare(
        `INSERT INTO flow_events (flow_id, kind, payload_json, at)
         SELECT id, 'waiting', '{"wait":{"kind":"timer","at":"' || strftime('%Y-%m-%dT%H:%M:%fZ', (updated_at - (rowid % 1000)) / 1000.0, 'unixepoch') || '"}}', created_at + 1000
         FROM flows WHERE status = 'running' ORDER BY rowid`,
      )
      .run();
    sqlite
      .prepare(
        `INSERT INTO flow_events (flow_id, kind, payload_json, at)
         SELECT id, 'resumed', '{"reason":"' || CASE rowid % 3 WHEN 0 THEN 'timer' WHEN 1 THEN 'event' ELSE 'signal' END || '","at":"x"}', updated_at
         FROM flows WHERE status = 'running' ORDER BY rowid`,
      )
      .run();
    sqlite
      .prepare(`INSERT INTO flow_events (flow_id, kind, payload_json, at) SELECT id, status, '{}', updated_at FROM flows WHERE status IN ('finished', 'failed', 'cancelled') ORDER BY rowid`)
      .run();
  })();
}

interface Timing {
  p50: number;
  p95: number;
}

/** Server time of one request through the inspector's routes (no socket): warm-up, then `runs` timed. */
async function time(app: ReturnType<typeof inspectorApp>, path: string, runs: number): Promise<Timing> {
  for (let i = 0; i < 3; i++) await request(app, path);
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await request(app, path);
    samples.push(performance.now() - t);
  }
  return { p50: median(samples), p95: quantile(samples, 0.95) };
}

async function request(app: ReturnType<typeof inspectorApp>, path: string): Promise<string> {
  const response = await app.request(path);
  const body = await response.text();
  if (response.status !== 200) throw new Error(`${path}: ${response.status} ${body.slice(0, 300)}`);
  return body;
}

/** A cursor in the middle of the waiting flows, for a deep page (keyset: as fast as page one). */
function middleCursor(sqlite: Database.Database, count: number): string {
  const row = sqlite.prepare(`SELECT updated_at AS u, id FROM flows WHERE status = 'waiting' ORDER BY updated_at DESC, rowid DESC LIMIT 1 OFFSET ?`).get(Math.floor((count * 0.4) / 2)) as { u: number; id: string };
  return `afterAt=${row.u}&afterId=${row.id}`;
}

/** The pages timed, given a cursor in the middle of the waiting flows. */
function pagePaths(size: number, cursor: string): [string, string][] {
  return [
    ['overview (charts recomputed)', '/'],
    ['flows: waiting, page 1', '/flows?status=waiting'],
    ['flows: waiting, deep page (keyset)', `/flows?status=waiting&${cursor}`],
    ['flows: step = refund', '/flows?status=waiting&step=refund'],
    ['flows: goal contains a rare text (full window)', `/flows?status=waiting&goal=${encodeURIComponent(`INV-${size - 3} `)}`],
    ['flows: owner + controller', '/flows?status=finished&owner=agent%3Abench%3Asession%3A7&controller=bench%2Fc7'],
    ['waits', '/waits'],
  ];
}

async function timePages(tf: Taskflow, size: number, cursor: string, options: BenchOptions, runs: number, label: string): Promise<Map<string, Timing>> {
  const live = new LiveRevision(tf);
  // Charts recomputed on every request: the worst case. The default app below serves them from its 30 s cache.
  const app = inspectorApp({ tf, live, token: 'bench-token-0123456789', readOnly: false, tokenForReads: false, chartRefreshMs: 0 });
  const cached = inspectorApp({ tf, live, token: 'bench-token-0123456789', readOnly: false, tokenForReads: false });
  const timings = new Map<string, Timing>();
  try {
    for (const [name, path] of [...pagePaths(size, cursor), ['overview (charts from the 30 s cache, as a live page)', '/'] as [string, string]]) {
      const timing = await time(name.includes('cache') ? cached : app, path, runs);
      timings.set(name, timing);
      options.log(`ui ${label} at ${num(size)}: ${name} p50 ${ms(timing.p50)} p95 ${ms(timing.p95)}`);
    }
  } finally {
    live.close();
  }
  return timings;
}

async function pagesAt(size: number, options: BenchOptions, folder: ReturnType<typeof tempFolder>, runs: number): Promise<Map<string, Timing>> {
  const tf = await openTaskflow({ database: folder.path(`ui-${size}.db`), logger: silentLogger, telemetry: false });
  try {
    const sqlite = rawConnection(tf);
    const now = Date.now();
    const started = performance.now();
    sqlite.pragma('cache_size = -262144');
    seedFlows(sqlite, size, now);
    sqlite.pragma('cache_size = -2000');
    options.log(`ui: seeded ${num(size)} flows and their events in ${ms(performance.now() - started)}`);
    return await timePages(tf, size, middleCursor(sqlite, size), options, runs, 'sqlite');
  } finally {
    await tf.close();
  }
}

/** The same seed as {@link seedFlows}, in PostgreSQL's SQL (generate_series). */
export async function seedPg(pool: import('pg').Pool, count: number, now: number): Promise<void> {
  const step = (24 * HOUR - 60_000) / count;
  const iso = (ms: string) => `to_char(to_timestamp((${ms}) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  await pool.query(
    `INSERT INTO flows (id, controller_id, goal, owner_session_key, requester_origin, current_step, state_json, wait_json, status,
       cancel_requested, revision, idempotency_key, wake_at, wait_topic, wait_correlation_id, created_at, updated_at)
     SELECT 'f' || lpad(i::text, 9, '0'), 'bench/c' || (i % 20), 'ship order ' || i || ' once invoice INV-' || i || ' is paid',
       'agent:bench:session:' || (i % 1000), NULL,
       CASE i % 4 WHEN 0 THEN 'await_payment' WHEN 1 THEN 'ship' WHEN 2 THEN 'notify' ELSE 'refund' END,
       '{"order":' || i || ',"invoice":"INV-' || i || '"}',
       CASE WHEN st <> 'waiting' THEN NULL
            WHEN i % 5 = 0 THEN '{"kind":"external_event","topic":"invoice.paid","correlationId":"INV-' || i || '"}'
            ELSE '{"kind":"timer","at":"' || ${iso('$1::bigint + 864000000 + i')} || '"}' END,
       st, 0, 2, NULL,
       CASE WHEN st = 'waiting' AND i % 5 <> 0 THEN $1::bigint + 864000000 + i END,
       CASE WHEN st = 'waiting' AND i % 5 = 0 THEN 'invoice.paid' END,
       CASE WHEN st = 'waiting' AND i % 5 = 0 THEN 'INV-' || i END,
       u - 60000, u
     FROM (SELECT i, ($1::bigint - ($2::bigint - i) * $3::float8)::bigint AS u,
             CASE WHEN i % 20 < 8 THEN 'waiting' WHEN i % 20 < 10 THEN 'running' WHEN i % 20 < 18 THEN 'finished' WHEN i % 20 = 18 THEN 'failed' ELSE 'cancelled' END AS st
           FROM generate_series(0, $2::bigint - 1) AS i) AS r`,
    [now, count, step],
  );
  await pool.query(`INSERT INTO flow_events (flow_id, kind, payload_json, at) SELECT id, 'created', '{}', created_at FROM flows ORDER BY seq`);
  await pool.query(
    `INSERT INTO flow_events (flow_id, kind, payload_json, at)
     SELECT id, 'waiting', '{"wait":{"kind":"timer","at":"' || ${iso('updated_at - (seq % 1000)')} || '"}}', created_at + 1000 FROM flows WHERE status = 'running' ORDER BY seq`,
  );
  await pool.query(
    `INSERT INTO flow_events (flow_id, kind, payload_json, at)
     SELECT id, 'resumed', '{"reason":"' || CASE seq % 3 WHEN 0 THEN 'timer' WHEN 1 THEN 'event' ELSE 'signal' END || '","at":"x"}', updated_at FROM flows WHERE status = 'running' ORDER BY seq`,
  );
  await pool.query(`INSERT INTO flow_events (flow_id, kind, payload_json, at) SELECT id, status, '{}', updated_at FROM flows WHERE status IN ('finished', 'failed', 'cancelled') ORDER BY seq`);
  // As autovacuum leaves a table at rest: statistics, and the visibility map that lets counts read the index alone.
  await pool.query('VACUUM ANALYZE');
}

const PG_ADMIN_URL = process.env.TASKFLOW_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function pgPagesAt(size: number, options: BenchOptions, runs: number): Promise<Map<string, Timing>> {
  const pg = (await import('pg')).default;
  const name = `taskflow_bench_ui_${process.pid}_${size}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    const tf = await openTaskflow({ database: url.toString(), logger: silentLogger, telemetry: false });
    try {
      const pool = (tf.store as unknown as { pool: import('pg').Pool }).pool;
      const started = performance.now();
      await seedPg(pool, size, Date.now());
      options.log(`ui: seeded ${num(size)} flows and their events on PostgreSQL in ${ms(performance.now() - started)}`);
      const row = (await pool.query(`SELECT updated_at, id FROM flows WHERE status = 'waiting' ORDER BY updated_at DESC, id DESC LIMIT 1 OFFSET $1`, [Math.floor((size * 0.4) / 2)])).rows[0] as { updated_at: string; id: string };
      return await timePages(tf, size, `afterAt=${row.updated_at}&afterId=${row.id}`, options, runs, 'postgres');
    } finally {
      await tf.close();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

function pageRows(baseline: Map<string, Timing>, large: Map<string, Timing>, big: number): BenchResult['rows'] {
  const rows: BenchResult['rows'] = [];
  for (const [name, at1k] of baseline) {
    const atBig = large.get(name)!;
    const goalled = name.startsWith('overview') || name.startsWith('flows:');
    rows.push({
      page: name,
      '1,000 flows p50 (baseline)': ms(at1k.p50),
      [`${num(big)} flows p50`]: ms(atBig.p50),
      [`${num(big)} flows p95`]: ms(atBig.p95),
      ratio: ratio(atBig.p50 / at1k.p50),
      goal: goalled ? `< ${GOAL_MS} ms (p50): ${goal(atBig.p50 < GOAL_MS)}` : '',
    });
  }
  return rows;
}

/** The same pages on PostgreSQL: 1,000 against 1,000,000 flows. */
export async function benchUiPg(options: BenchOptions): Promise<BenchResult> {
  const big = options.quick ? 100_000 : 1_000_000;
  const runs = options.quick ? 10 : 30;
  const baseline = await pgPagesAt(1_000, options, runs);
  const large = await pgPagesAt(big, options, runs);
  return {
    title: `Web inspector on PostgreSQL: server time at ${num(big)} flows`,
    rows: pageRows(baseline, large, big),
    notes: [
      `As the SQLite table, on the machine's PostgreSQL server (a database of its own, seeded by generate_series, then VACUUM ANALYZE as autovacuum would); p50/p95 of ${runs} requests after 3 warm-ups; baseline: 1,000 flows, same run.`,
      'Measured under load: 2 cores shared with other helpers\' builds and tests, PostgreSQL on the same cores.',
    ],
  };
}

/** Live updates: an SSE client of the real server while the host commits through its own handle at `rate` a second. */
async function liveAt(rate: number, seconds: number, folder: ReturnType<typeof tempFolder>): Promise<Record<string, string>> {
  const tf: Taskflow = await openTaskflow({ database: folder.path(`live-${rate}.db`), logger: silentLogger, telemetry: false, synchronous: 'normal' });
  const inspector = await startInspector({ taskflow: tf });
  const controller = new AbortController();
  try {
    const flows = [];
    for (let i = 0; i < 20; i++) flows.push(await tf.manager.startRunning((await tf.manager.createManaged({ controllerId: 'bench/live', goal: `live ${i}`, ownerSessionKey: 'agent:bench:session:live' })).id));
    const base = (await (await fetch(`${inspector.url}revision`)).json() as { revision: number }).revision;
    // The SSE client: every `change` carries the revision the server had when it sent it.
    const received: { at: number; revision: number }[] = [];
    const response = await fetch(`${inspector.url}live`, { signal: controller.signal });
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: ?(.*)$/m.exec(message)?.[1];
          if (/^event: ?change$/m.test(message) && data !== undefined) received.push({ at: performance.now(), revision: Number(data) - base });
        }
      }
    })().catch(() => undefined);
    await sleep(300);
    // The host commits at `rate` a second (state updates through tf.manager), paced every 10 ms.
    const commitAt: number[] = [];
    const total = rate * seconds;
    const start = performance.now();
    let made = 0;
    while (made < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      while (made < due) {
        await tf.manager.updateState(flows[made % flows.length]!.id, { n: made });
        made++;
        commitAt.push(performance.now());
      }
      // A host yields between bursts: at least 1 ms every 10 ms slot, so the server (same process) runs.
      await sleep(Math.max(1, Math.min(10, start + (made / rate) * 1000 - performance.now())));
    }
    const elapsed = (performance.now() - start) / 1000;
    const last = commitAt.at(-1)!;
    const deadline = performance.now() + 5_000;
    while ((received.at(-1)?.revision ?? 0) < total && performance.now() < deadline) await sleep(5);
    controller.abort();
    await reading;
    // Lag of each commit: from its commit to the first update whose revision covers it.
    const lags: number[] = [];
    let j = 0;
    for (let k = 0; k < commitAt.length; k++) {
      while (j < received.length && received[j]!.revision < k + 1) j++;
      if (j === received.length) break;
      lags.push(received[j]!.at - commitAt[k]!);
    }
    const covered = lags.length;
    const finalUpdate = received.find((r) => r.revision >= total);
    return {
      'commits/s asked': num(rate),
      'commits/s made': num(total / elapsed),
      commits: num(total),
      'updates received': num(received.length),
      'commits covered': `${num(covered)} / ${num(total)}`,
      'lag p50': ms(median(lags)),
      'lag p99': ms(quantile(lags, 0.99)),
      'lag max': ms(Math.max(...lags)),
      'last commit → its update': finalUpdate ? ms(finalUpdate.at - last) : 'never',
    };
  } finally {
    controller.abort();
    await inspector.close();
    await tf.close();
  }
}

export async function benchUi(options: BenchOptions): Promise<BenchResult> {
  const big = options.quick ? 100_000 : 1_000_000;
  const runs = options.quick ? 10 : 30;
  const folder = tempFolder('ui');
  try {
    const baseline = await pagesAt(1_000, options, folder, runs);
    const large = await pagesAt(big, options, folder, runs);
    const rows = pageRows(baseline, large, big);
    return {
      title: `Web inspector: server time at ${num(big)} flows`,
      rows,
      notes: [
        `Pages: server time of the request handler (Hono's app.request, no socket), SQLite file, ${num(big)} flows (40 % waiting) and ${num(Math.round(big * 1.7))} audit events over 24 h, seeded by bulk SQL; no ANALYZE. p50/p95 of ${runs} requests after 3 warm-ups. Baseline: the same pages at 1,000 flows, same run.`,
        'A filtered list reads at most 5,000 rows of the (status, updated_at) index per request and then offers "continue searching"; "goal contains a rare text" is that worst case (no match in the window). The overview counts each status up to 10,000 and its charts read the newest 1,000 resumes and 5,000 events of each kind by (kind, at).',
        'Measured under load: 2 cores shared with other helpers\' builds and tests.',
      ],
    };
  } finally {
    folder.cleanup();
  }
}

/** Live updates at 1,000 commits a second against 10 a second (the baseline), same run. */
export async function benchUiLive(options: BenchOptions): Promise<BenchResult> {
  const seconds = options.quick ? 2 : 5;
  const folder = tempFolder('ui-live');
  try {
    const slow = await liveAt(10, seconds, folder);
    options.log(`ui live at 10/s: ${JSON.stringify(slow)}`);
    const fast = await liveAt(1_000, seconds, folder);
    options.log(`ui live at 1000/s: ${JSON.stringify(fast)}`);
    const fastLag = Number.parseFloat(fast['lag max']!.replace(/,/g, ''));
    return {
      title: 'Web inspector: live updates under 1,000 commits/s',
      rows: [slow, fast].map((row) => ({ ...row, goal: row === fast ? `every commit covered, lag bounded: ${goal(fast['commits covered']!.split(' / ')[0] === fast['commits covered']!.split(' / ')[1] && fast['lag max']!.endsWith(' ms') && fastLag < 1_000)}` : 'baseline' })),
      notes: [
        `An SSE client of the real server (GET /live) while the host commits state updates through its own handle (tf.onCommit) for ${seconds} s, in bursts every 10 ms with at least 1 ms yielded between them; server, client and committer share one Node.js process (the in-process inspector); SQLite file, synchronous=normal.`,
        'The server coalesces: at most about 5 updates a second, each carrying the newest revision, so a page refetches at most 5 times a second however fast flows move. Lag: from a commit to the first update whose revision covers it; goal: every commit covered and the lag under 1 s (it does not grow with the rate).',
        'Baseline: the same at 10 commits/s, same run. Measured under load: 2 cores shared with other helpers\' builds and tests.',
      ],
    };
  } finally {
    folder.cleanup();
  }
}

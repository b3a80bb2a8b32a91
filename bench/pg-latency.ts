import pg from 'pg';
import { openTaskflow, type Flow } from '../src/index.js';
import { deliveryTimer, untimed } from './event-resume.js';
import { openPgStore, preciseNow, seedPgWaitingFlows, tempPgDatabase, type PgPath } from './pg-support.js';
import { goal, ms, num, quantile, ratio, sleep, type BenchOptions, type BenchResult } from './report.js';

const GOAL_LATENESS_P99_MS = 15;
const GOAL_EVENT_P50_MS = 2;

interface Summary {
  p50: number;
  p99: number;
  max: number;
}

const summarise = (samples: number[]): Summary => ({ p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), max: Math.max(...samples) });

/** `count` timers spread over `spreadMs`, seeded, then the engine started: lateness = onResume time − deadline. */
async function timerLateness(count: number, spreadMs: number, path: PgPath): Promise<Summary> {
  const db = await tempPgDatabase('late');
  try {
    const deadlines = new Map<string, number>();
    const samples: number[] = [];
    const store = await openPgStore(db.url, path);
    const tf = await openTaskflow({
      store,
      tickInterval: '5s',
      onResume: (flow: Flow) => {
        const at = deadlines.get(flow.id);
        if (at === undefined) return;
        deadlines.delete(flow.id);
        samples.push(preciseNow() - at);
      },
    });
    const base = Date.now() + 2_000;
    await seedPgWaitingFlows(db.url, count, { wakeAt: base, spreadMs });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ id: string; wake_at: string }>('SELECT id, wake_at FROM flows');
    await client.end();
    for (const row of rows) deadlines.set(row.id, Number(row.wake_at));
    await tf.start();
    const until = base + spreadMs + 20_000;
    while (samples.length < count && Date.now() < until) await sleep(50);
    await tf.close();
    if (samples.length < count) throw new Error(`only ${samples.length} of ${count} timers reached onResume`);
    return summarise(samples);
  } finally {
    await db.drop();
  }
}

/** `count` flows waiting on events; each event delivered on its own: time from deliver() to its onResume. */
async function eventResume(count: number, path: PgPath): Promise<Summary> {
  const db = await tempPgDatabase('event');
  try {
    const timer = deliveryTimer();
    const store = await openPgStore(db.url, path);
    const tf = await openTaskflow({ store, tickInterval: '5s', onResume: timer.onResume });
    await seedPgWaitingFlows(db.url, count, { wakeAt: Date.now() + 86_400_000, eventEvery: 1 });
    await tf.start();
    const latency = await timer.time(tf, count);
    await tf.close();
    return latency;
  } finally {
    await db.drop();
  }
}

/** One single-row UPDATE per transaction on the same server: what one commit (its WAL flush) costs meanwhile. */
async function commitProbe(count: number): Promise<Summary> {
  const db = await tempPgDatabase('probe');
  try {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counter VALUES (1, 0)');
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      await client.query('UPDATE counter SET n = n + 1 WHERE id = 1');
      samples.push(performance.now() - t);
    }
    await client.end();
    return summarise(samples);
  } finally {
    await db.drop();
  }
}

export async function benchPgLatency(options: BenchOptions): Promise<BenchResult> {
  const timers = options.quick ? 300 : 1_000;
  const spread = options.quick ? 5_000 : 10_000;
  const events = options.quick ? 200 : 1_000;
  const lateNew = await timerLateness(timers, spread, 'batched');
  options.log(`pg lateness batched: p50 ${ms(lateNew.p50)} p99 ${ms(lateNew.p99)}`);
  const lateOld = await timerLateness(timers, spread, 'before');
  options.log(`pg lateness before: p50 ${ms(lateOld.p50)} p99 ${ms(lateOld.p99)}`);
  const eventNew = await eventResume(events, 'batched');
  options.log(`pg event batched: p50 ${ms(eventNew.p50)} p99 ${ms(eventNew.p99)}`);
  const eventOld = await eventResume(events, 'before');
  options.log(`pg event before: p50 ${ms(eventOld.p50)} p99 ${ms(eventOld.p99)}`);
  const probe = await commitProbe(500);
  const row = (measured: string, s: Summary, base: Summary, goalCell: string) => ({
    measured,
    p50: ms(s.p50),
    p99: ms(s.p99),
    max: ms(s.max),
    'p50 ratio to before': ratio(s.p50 / base.p50),
    'p99 ratio to before': ratio(s.p99 / base.p99),
    goal: goalCell,
  });
  return {
    title: 'PostgreSQL: timer lateness and event resume',
    rows: [
      row('timer lateness, deadline → onResume: this store', lateNew, lateOld, `p99 < ${GOAL_LATENESS_P99_MS} ms: ${goal(lateNew.p99 < GOAL_LATENESS_P99_MS)}`),
      row('timer lateness: baseline, store before', lateOld, lateOld, ''),
      row('event resume, deliver() → onResume: this store', eventNew, eventOld, `p50 < ${GOAL_EVENT_P50_MS} ms: ${goal(eventNew.p50 < GOAL_EVENT_P50_MS)}`),
      row('event resume: baseline, store before', eventOld, eventOld, ''),
      { measured: 'the server meanwhile: one single-row UPDATE commit (not a lateness)', p50: ms(probe.p50), p99: ms(probe.p99), max: ms(probe.max), 'p50 ratio to before': '', 'p99 ratio to before': '', goal: '' },
    ],
    notes: [
      `Timers: ${num(timers)} timer flows bulk-inserted with deadlines spread over ${ms(spread)}, engine started 2 s before the first; real clock; lateness = onResume time − deadline.`,
      `Events: ${num(events)} flows waiting on invoice.paid/INV-i; one engine.deliver() at a time, timed from the call to its onResume (the first ${untimed(events)} untimed).`,
      'Baseline "before": the PostgreSQL store as it was before this change (bench/baseline/pg-store-before.ts) under the same engine, same run. Last row: what a commit (WAL flush) costs on this server meanwhile.',
    ],
  };
}

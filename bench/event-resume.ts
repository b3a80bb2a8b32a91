import Database from 'better-sqlite3';
import { openTaskflow, silentLogger, type ResumeHandler, type StartFlowInput, type Taskflow } from '../src/index.js';
import { pgReachable, PG_ADMIN_URL, preciseNow, tempPgDatabase } from './pg-support.js';
import { ms, num, quantile, tempFolder, type BenchOptions, type BenchResult, type Headline, type Row } from './report.js';

/**
 * Event resume: flows wait on (invoice.paid, INV-i); one `engine.deliver()` at a
 * time, each timed from the call to its flow's onResume, on SQLite (the default
 * store, FULL and NORMAL) and PostgreSQL. The floor beside them: one single-row
 * UPDATE commit on a plain SQLite file at FULL, what an fsync costs meanwhile.
 */

const TOPIC = 'invoice.paid';

export interface Latency {
  p50: number;
  p99: number;
  max: number;
}

const summarise = (samples: readonly number[]): Latency => ({ p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), max: Math.max(...samples) });

/** Events not timed at the start of a run: the first calls of a fresh process measure V8 compiling them. */
export const untimed = (count: number): number => Math.min(50, Math.floor(count / 10));

/**
 * The onResume to open a runtime with, and the loop that times each `deliver()` of
 * `INV-0` … `INV-(count - 1)` to it (the flows waiting on them are the caller's).
 */
export function deliveryTimer(): { onResume: ResumeHandler; time(tf: Taskflow, count: number): Promise<Latency> } {
  let resumedAt = 0;
  return {
    onResume: () => void (resumedAt = preciseNow()),
    async time(tf, count) {
      const samples: number[] = [];
      const skip = untimed(count);
      for (let i = 0; i < count; i++) {
        resumedAt = 0;
        const sent = preciseNow();
        const result = await tf.engine.deliver({ topic: TOPIC, correlationId: `INV-${i}`, payload: { amount: i } });
        if (result.resumed.length !== 1) throw new Error(`event ${i} resumed ${result.resumed.length} flows`);
        while (resumedAt === 0) await new Promise((resolve) => setImmediate(resolve));
        if (i >= skip) samples.push(resumedAt - sent);
      }
      return summarise(samples);
    },
  };
}

/** `count` flows parked on INV-0 … INV-(count - 1) through the public API, 500 a transaction. */
async function parkOnEvents(tf: Taskflow, count: number): Promise<void> {
  for (let from = 0; from < count; from += 500) {
    const inputs: StartFlowInput[] = [];
    for (let i = from; i < Math.min(count, from + 500); i++) {
      inputs.push({
        controllerId: 'bench/controller',
        goal: 'ship the order once its invoice is paid',
        ownerSessionKey: `agent:bench:session:${i % 100}`,
        state: { order: i },
        wait: { kind: 'external_event', topic: TOPIC, correlationId: `INV-${i}` },
      });
    }
    await tf.manager.createAndStartMany(inputs);
  }
}

export type Store = 'SQLite FULL' | 'SQLite NORMAL' | 'PostgreSQL';

/** A fresh runtime on `store` with `count` flows waiting, engine started: deliver() → onResume, one at a time. */
export async function eventResume(store: Store, count: number): Promise<Latency> {
  const folder = tempFolder('event-resume');
  const pg = store === 'PostgreSQL' ? await tempPgDatabase('event_resume') : undefined;
  const timer = deliveryTimer();
  try {
    const database = pg?.url ?? folder.path('resume.db');
    const synchronous = store === 'SQLite NORMAL' ? 'normal' : 'full';
    const tf = await openTaskflow({ database, synchronous, tickInterval: '1h', logger: silentLogger, onResume: timer.onResume });
    try {
      await parkOnEvents(tf, count);
      await tf.start();
      return await timer.time(tf, count);
    } finally {
      await tf.close();
    }
  } finally {
    folder.cleanup();
    await pg?.drop();
  }
}

/** One single-row UPDATE per transaction on a plain SQLite file at FULL: the fsync under every durable resume. */
function commitFloor(count: number): Latency {
  const folder = tempFolder('event-resume-floor');
  try {
    const db = new Database(folder.path('floor.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)');
    const update = db.prepare('UPDATE counter SET n = n + 1 WHERE id = 1');
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      update.run();
      samples.push(performance.now() - t);
    }
    db.close();
    return summarise(samples);
  } finally {
    folder.cleanup();
  }
}

const sizes = (quick: boolean) => ({ events: quick ? 200 : 1_000 });

async function stores(log: (line: string) => void): Promise<Store[]> {
  if (await pgReachable()) return ['SQLite FULL', 'SQLite NORMAL', 'PostgreSQL'];
  log(`event-resume: PostgreSQL skipped, ${PG_ADMIN_URL} is not reachable`);
  return ['SQLite FULL', 'SQLite NORMAL'];
}

export async function benchEventResume(options: BenchOptions): Promise<BenchResult> {
  const { events } = sizes(options.quick);
  const rows: Row[] = [];
  const row = (measured: string, l: Latency) => ({ measured, events: num(events), p50: ms(l.p50), p99: ms(l.p99), max: ms(l.max) });
  for (const store of await stores(options.log)) {
    const latency = await eventResume(store, events);
    options.log(`event-resume ${store}: p50 ${ms(latency.p50)} p99 ${ms(latency.p99)}`);
    rows.push(row(`${store}${store === 'PostgreSQL' ? ' (shared server)' : ''}: deliver() → onResume`, latency));
  }
  rows.push(row('floor: one single-row UPDATE commit, raw better-sqlite3, FULL (not a resume)', commitFloor(events)));
  return {
    title: 'Event resume: deliver() → onResume',
    rows,
    notes: [
      `${num(events)} flows parked on ${TOPIC}/INV-i through createAndStartMany, engine started (defaults, tickInterval 1h); one engine.deliver() at a time, timed from the call to its onResume (the first ${untimed(events)} untimed). A fresh database per store.`,
      'Each resume commits the flow, its audit event and its notification; the engine then claims the notification and calls onResume.',
      'Floor: what one durable commit costs on this machine at the same time.',
    ],
  };
}

export async function headlineEventResume(options: BenchOptions): Promise<Headline> {
  const { events } = sizes(options.quick);
  const metrics: Headline['metrics'] = [];
  for (const store of await stores(options.log)) {
    if (store === 'SQLite NORMAL') continue;
    const latency = await eventResume(store, events);
    options.log(`event-resume ${store}: p50 ${ms(latency.p50)} p99 ${ms(latency.p99)}`);
    metrics.push(
      { name: `${store}: deliver() → onResume p50`, value: latency.p50, unit: 'ms', better: 'lower' },
      { name: `${store}: deliver() → onResume p99`, value: latency.p99, unit: 'ms', better: 'lower' },
    );
  }
  return {
    title: 'Event resume: deliver() → onResume',
    metrics,
    notes: [`${num(events)} flows waiting on ${TOPIC}/INV-i (default store; SQLite at synchronous FULL); one engine.deliver() at a time, timed to its onResume; the first ${untimed(events)} untimed.`],
  };
}

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openTaskflow, type Taskflow, type TaskflowOptions } from '../src/index.js';
import { goal, ms, num, quantile, ratio, sleep, tempFolder, type BenchOptions, type BenchResult, type Headline, type Row } from './report.js';

/**
 * The host's event loop while the runtime works flat out: a 1 ms host
 * `setInterval` notes how late each tick comes, on an idle runtime and while the
 * runtime sustains its maximum transition rate, for the SQLite store in a worker
 * thread, the SQLite store on the main thread (the default), and PostgreSQL.
 */

/** Goal: the timer's p99 under load within this of its p99 on the idle runtime. */
const GOAL_MS = 2;
const IN_FLIGHT = 32;
const PG_ADMIN_URL = process.env.TASKFLOW_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A 1 ms interval; each tick's lateness is the gap since the previous one minus 1 ms (the tail gap counts too). */
function hostTimer(): { stop(): number[] } {
  const late: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    late.push(Math.max(0, now - last - 1));
    last = now;
  }, 1);
  return {
    stop() {
      clearInterval(timer);
      // A starved timer never ticks: the wait since its last tick is its lateness.
      late.push(Math.max(0, performance.now() - last - 1));
      return late;
    },
  };
}

/** One flow's life through the manager: create, start, wait, resume, finish (5 transitions). */
async function oneFlow(tf: Taskflow, n: number, far: number): Promise<void> {
  const flow = await tf.manager.createManaged({
    controllerId: 'bench/controller',
    goal: 'ship the order once its invoice is paid',
    ownerSessionKey: `agent:bench:session:${n % 100}`,
    state: { order: n },
  });
  await tf.manager.startRunning(flow.id);
  await tf.manager.setWaiting(flow.id, { kind: 'timer', at: far });
  await tf.manager.resume(flow.id, { paid: true });
  await tf.manager.finish(flow.id, { shipped: true });
}

/** `callers` loops of awaited flows for `budgetMs`; returns transitions/s. */
async function drive(tf: Taskflow, callers: number, budgetMs: number): Promise<number> {
  const far = Date.now() + 86_400_000;
  const started = performance.now();
  let flows = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() - started < budgetMs) await oneFlow(tf, flows++, far);
    }),
  );
  return (flows * 5 * 1000) / (performance.now() - started);
}

/**
 * Resolves once a worker-thread store's thread answers. Read by shape, not by class,
 * so this file imports only the public entry (`--against` runs it over another src/).
 */
async function threadUp(tf: Taskflow): Promise<void> {
  const store = tf.store as unknown as { connected?: () => Promise<unknown> };
  if (typeof store.connected === 'function') await store.connected();
}

interface Measured {
  rate?: number;
  late: number[];
}

async function measure(tf: Taskflow, load: 'idle' | 'tight' | 'inflight', budgetMs: number): Promise<Measured> {
  const timer = hostTimer();
  let rate: number | undefined;
  if (load === 'idle') await sleep(budgetMs);
  else rate = await drive(tf, load === 'tight' ? 1 : IN_FLIGHT, budgetMs);
  const late = timer.stop();
  return rate === undefined ? { late } : { rate, late };
}

async function pgDatabase(): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const name = `taskflow_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch {
    return undefined;
  } finally {
    await admin.end().catch(() => undefined);
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const again = new pg.Client({ connectionString: PG_ADMIN_URL });
      await again.connect();
      await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await again.end();
    },
  };
}

export async function benchEventLoop(options: BenchOptions): Promise<BenchResult> {
  const budgetMs = options.quick ? 600 : 3000;
  const folder = tempFolder('event-loop');
  const rows: Row[] = [];
  const rates: Record<string, number> = {};
  const variants: { store: string; open: () => Promise<{ tf: Taskflow; dispose?: () => Promise<void> }> }[] = [];
  for (const sync of ['full', 'normal'] as const) {
    for (const thread of ['worker', 'main'] as const) {
      variants.push({
        store: `SQLite ${sync.toUpperCase()}, ${thread === 'worker' ? 'worker thread' : 'main thread (default)'}`,
        open: async () => {
          const settings: TaskflowOptions = { database: folder.path(`${sync}-${thread}.db`), synchronous: sync, sqlite: { thread }, tickInterval: '1h' };
          const tf = await openTaskflow(settings);
          // Measured once the thread is up (until then calls run on a connection opened on this thread).
          await threadUp(tf);
          return { tf };
        },
      });
    }
  }
  variants.push({
    store: 'PostgreSQL',
    open: async () => {
      const database = await pgDatabase();
      if (!database) throw new Error(`no PostgreSQL at ${PG_ADMIN_URL}`);
      const tf = await openTaskflow({ database: database.url, tickInterval: '1h' });
      return { tf, dispose: database.drop };
    },
  });
  try {
    for (const variant of variants) {
      let opened: { tf: Taskflow; dispose?: () => Promise<void> };
      try {
        opened = await variant.open();
      } catch (error) {
        options.log(`event-loop: ${variant.store} skipped (${(error as Error).message})`);
        continue;
      }
      const { tf } = opened;
      try {
        await tf.start();
        // Warm-up, both loads: a fresh process spends its first thousands of calls compiling them, on this thread.
        await drive(tf, 1, options.quick ? 200 : 1_000);
        await drive(tf, IN_FLIGHT, options.quick ? 200 : 1_000);
        const idle = await measure(tf, 'idle', budgetMs);
        const idleP99 = quantile(idle.late, 0.99);
        for (const load of ['idle', 'tight', 'inflight'] as const) {
          const m = load === 'idle' ? idle : await measure(tf, load, budgetMs);
          const p99 = quantile(m.late, 0.99);
          if (m.rate !== undefined) rates[`${variant.store}/${load}`] = m.rate;
          options.log(`event-loop ${variant.store} ${load}: ${m.rate === undefined ? '' : `${num(m.rate)} transitions/s, `}timer p50 ${ms(quantile(m.late, 0.5))} p99 ${ms(p99)} max ${ms(Math.max(...m.late))}, ${m.late.length} ticks`);
          rows.push({
            store: variant.store,
            'runtime load': load === 'idle' ? 'idle (baseline)' : load === 'tight' ? 'tight loop: 1 caller, awaited calls back to back' : `${IN_FLIGHT} callers in flight`,
            'transitions/s': m.rate === undefined ? '' : num(m.rate),
            'timer ticks': num(m.late.length),
            'lateness p50': ms(quantile(m.late, 0.5)),
            'lateness p99': ms(p99),
            max: ms(Math.max(...m.late)),
            'p99 − idle p99': load === 'idle' ? '' : ms(p99 - idleP99),
            goal: load === 'idle' ? '' : `p99 ≤ idle + ${GOAL_MS} ms: ${goal(p99 - idleP99 <= GOAL_MS)}`,
          });
        }
      } finally {
        await tf.close();
        await opened.dispose?.();
      }
    }
  } finally {
    folder.cleanup();
  }
  const notes = [
    `Host timer: setInterval(1 ms); lateness of a tick = gap since the previous tick − 1 ms; the gap from the last tick to the end of the run counts too (a starved timer shows it whole). ${budgetMs} ms per row, engine started, tickInterval 1h.`,
    'Load: flows through tf.manager (create → start → wait → resume → finish, 5 transitions each), either one caller awaiting each call back to back (the tight loop) or 32 such callers at once. Before the rows, untimed, each load runs for 1 s (200 ms quick): the first thousands of calls of a fresh process mostly measure V8 compiling them.',
    'Worker thread: the better-sqlite3 connection lives in a worker; plans run on the main thread; commits queued while a transaction is open share the next one (group commit). Main thread: the default store (`sqlite: { thread: "main" }`): statements on this thread, in slices of at most 0.5 ms of work per turn of the event loop, group commit, checkpoints on a thread of their own.',
    'Measured on a shared 2-core machine: compare rows of one run, not runs.',
  ];
  for (const sync of ['FULL', 'NORMAL']) {
    const worker = rates[`SQLite ${sync}, worker thread/tight`];
    const main = rates[`SQLite ${sync}, main thread/tight`];
    const workerMany = rates[`SQLite ${sync}, worker thread/inflight`];
    const mainMany = rates[`SQLite ${sync}, main thread/inflight`];
    if (worker && main && workerMany && mainMany) {
      notes.push(
        `${sync}: worker / main transitions/s, one caller ${ratio(worker / main)}, ${IN_FLIGHT} in flight ${ratio(workerMany / mainMany)}.`,
      );
    }
  }
  return { title: "The host's event loop under load", rows, notes };
}

/**
 * The headline `--against` compares, at synchronous FULL: the host timer's p99
 * lateness and the transitions/s under load, on the default store (main thread;
 * one caller and 32 in flight) and on the worker-thread store (32 in flight).
 */
export async function headlineEventLoop(options: BenchOptions): Promise<Headline> {
  const budgetMs = options.quick ? 600 : 3000;
  const folder = tempFolder('event-loop');
  const metrics: Headline['metrics'] = [];
  try {
    for (const thread of ['main', 'worker'] as const) {
      const tf = await openTaskflow({ database: folder.path(`${thread}.db`), synchronous: 'full', sqlite: { thread }, tickInterval: '1h' });
      try {
        await threadUp(tf);
        await tf.start();
        await drive(tf, 1, options.quick ? 200 : 1_000);
        await drive(tf, IN_FLIGHT, options.quick ? 200 : 1_000);
        const label = thread === 'main' ? 'default store (main thread)' : 'worker-thread store';
        for (const load of thread === 'main' ? (['tight', 'inflight'] as const) : (['inflight'] as const)) {
          const m = await measure(tf, load, budgetMs);
          const p99 = quantile(m.late, 0.99);
          const under = load === 'tight' ? 'one caller' : `${IN_FLIGHT} in flight`;
          options.log(`event-loop ${label}, ${under}: ${num(m.rate ?? 0)} transitions/s, timer p99 ${ms(p99)}`);
          metrics.push(
            { name: `SQLite FULL, ${label}, ${under}: host timer lateness p99`, value: p99, unit: 'ms', better: 'lower' },
            { name: `SQLite FULL, ${label}, ${under}: transitions/s meanwhile`, value: m.rate ?? Number.NaN, unit: 'number', better: 'higher' },
          );
        }
      } finally {
        await tf.close();
      }
    }
  } finally {
    folder.cleanup();
  }
  return {
    title: "The host's event loop under load",
    metrics,
    notes: [`A 1 ms host setInterval; lateness of a tick = gap since the previous one − 1 ms. ${budgetMs} ms per load, engine started, after a warm-up of each load; load: flows through tf.manager (5 transitions each), one caller or ${IN_FLIGHT} at once.`],
  };
}

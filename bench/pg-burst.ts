import { openTaskflow } from '../src/index.js';
import { deliverAll } from './burst.js';
import { openPgStore, PG_ADMIN_URL, pgReachable, preciseNow, seedPgWaitingFlows, tempPgDatabase, type PgPath } from './pg-support.js';
import { goal, ms, num, ratio, sleep, type BenchOptions, type BenchResult, type Headline } from './report.js';

const GOAL_MS = 1_500;

/** End to end on PostgreSQL: `count` timers due at one deadline; the engine's host timer fires; every flow reaches onResume. */
export async function pgDeliverAll(count: number, path: PgPath): Promise<{ firstMs: number; lastMs: number; tickMs: number }> {
  const db = await tempPgDatabase('burst');
  try {
    const store = await openPgStore(db.url, path);
    let handled = 0;
    let first = 0;
    let last = 0;
    let lastTick = 0;
    const tf = await openTaskflow({
      store,
      tickInterval: '5s',
      onResume: (_flow, wake) => {
        const now = preciseNow();
        if (handled++ === 0) first = now;
        last = now;
        lastTick = Math.max(lastTick, wake.at.getTime());
      },
    });
    const deadline = Date.now() + 1_500;
    await seedPgWaitingFlows(db.url, count, { wakeAt: deadline });
    await tf.start();
    const until = deadline + 300_000;
    while (handled < count && Date.now() < until) await sleep(20);
    await tf.close();
    if (handled < count) throw new Error(`only ${handled} of ${count} flows reached onResume`);
    return { firstMs: first - deadline, lastMs: last - deadline, tickMs: lastTick - deadline };
  } finally {
    await db.drop();
  }
}

export async function benchPgBurst(options: BenchOptions): Promise<BenchResult> {
  const count = options.quick ? 2_000 : 10_000;
  const batched = await pgDeliverAll(count, 'batched');
  options.log(`pg burst batched: first onResume +${ms(batched.firstMs)}, last +${ms(batched.lastMs)}`);
  const before = await pgDeliverAll(count, 'before');
  options.log(`pg burst before: first onResume +${ms(before.firstMs)}, last +${ms(before.lastMs)}`);
  const sqlite = await deliverAll(count);
  options.log(`sqlite burst: last +${ms(sqlite.deliveredMs)}`);
  const row = (variant: string, first: string, last: number, baseline: number, goalCell: string) => ({
    variant,
    'deadline → first onResume': first,
    'deadline → last onResume': ms(last),
    'flows/s': num((count * 1000) / last),
    'ratio to PostgreSQL before': ratio(last / baseline),
    goal: goalCell,
  });
  return {
    title: `PostgreSQL: ${num(count)} timers due at once`,
    rows: [
      row('PostgreSQL, batched statements (this store)', ms(batched.firstMs), batched.lastMs, before.lastMs, `< ${ms(GOAL_MS)}: ${goal(batched.lastMs < GOAL_MS)}`),
      row('baseline: PostgreSQL store before (3 round trips per flow)', ms(before.firstMs), before.lastMs, before.lastMs, ''),
      row('baseline: SQLite FULL, same engine', '', sqlite.deliveredMs, before.lastMs, ''),
    ],
    notes: [
      `${num(count)} timer flows bulk-inserted, all due at one deadline 1.5 s ahead; engine started (defaults: batches of up to 500, 16 handlers); timed from the deadline to the first and the last onResume (performance.timeOrigin + performance.now()).`,
      'PostgreSQL on 127.0.0.1 (the shared server of the machine), a fresh database per run; each resume writes the flow, its audit event and its notification.',
      'Baseline "before": the PostgreSQL store as it was before this change (bench/baseline/pg-store-before.ts, commit ad6d353) under the same engine, in the same run.',
    ],
  };
}

/** The headline `--against` compares: deadline → first and last onResume of the burst on PostgreSQL (today's store). */
export async function headlinePgBurst(options: BenchOptions): Promise<Headline> {
  if (!(await pgReachable())) throw new Error(`no PostgreSQL at ${PG_ADMIN_URL}`);
  const count = options.quick ? 2_000 : 10_000;
  const run = await pgDeliverAll(count, 'batched');
  options.log(`pg burst: first onResume +${ms(run.firstMs)}, last +${ms(run.lastMs)}`);
  return {
    title: `PostgreSQL: ${num(count)} timers due at once`,
    metrics: [
      { name: `PostgreSQL: deadline → first onResume`, value: run.firstMs, unit: 'ms', better: 'lower' },
      { name: `PostgreSQL: deadline → last of ${num(count)} onResume`, value: run.lastMs, unit: 'ms', better: 'lower' },
    ],
    notes: [`${num(count)} timer flows bulk-inserted on a fresh database of the shared server, all due at one deadline 1.5 s ahead; engine started (defaults); timed from the deadline to the first and the last onResume.`],
  };
}

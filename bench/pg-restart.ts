import { openPgStore, seedPgWaitingFlows, tempPgDatabase } from './pg-support.js';
import { goal, median, mib, ms, num, type BenchOptions, type BenchResult } from './report.js';
import { openTaskflow } from '../src/index.js';
import { child, type ChildResult } from './restart.js';

const GOAL_MS = 300;
const DAY = 86_400_000;

/** A database with `count` waiting flows (1 in 5 on an event), the first wake a day ahead. */
async function prepare(count: number): Promise<{ url: string; first: number; drop(): Promise<void> }> {
  const db = await tempPgDatabase('restart');
  const tf = await openTaskflow({ store: await openPgStore(db.url, 'batched'), tickInterval: '1h' });
  await tf.close();
  const first = Date.now() + DAY;
  // Spread wide enough that i × 7919 never wraps: flow 1 (the first timer flow) wakes first.
  await seedPgWaitingFlows(db.url, count, { wakeAt: first, spreadMs: 1_000 * DAY, eventEvery: 5 });
  return { ...db, first };
}

export async function benchPgRestart(options: BenchOptions): Promise<BenchResult> {
  const sizes = [1_000, options.quick ? 20_000 : 100_000];
  const repeats = options.quick ? 1 : 3;
  const rows: BenchResult['rows'] = [];
  for (const size of sizes) {
    const db = await prepare(size);
    try {
      const results: ChildResult[] = [];
      for (let r = 0; r < repeats; r++) {
        // The first wake is the first timer flow's (i = 1: wakeAt + 7919).
        results.push(await child(db.url, 'engine', db.first + 7919));
      }
      for (const result of results) {
        if (result.armedAfter === undefined || !result.nextOk) throw new Error('the child never armed its host timer for the first wake time');
      }
      const armed = median(results.map((r) => r.armedAfter!));
      options.log(`pg restart ${num(size)}: armed after ${ms(armed)}`);
      rows.push({
        'waiting flows': num(size),
        variant: 'openTaskflow(postgres://…) + start() in a fresh process',
        'until next timer armed': ms(armed),
        'start() resolved': ms(median(results.map((r) => r.startedAfter))),
        'RSS after start': mib(median(results.map((r) => r.rss))),
        goal: size >= 100_000 ? `< ${GOAL_MS} ms: ${goal(armed < GOAL_MS)}` : '',
      });
    } finally {
      await db.drop();
    }
  }
  return {
    title: 'PostgreSQL: restart with waiting flows',
    rows,
    notes: [
      `Each run in a fresh child process (bench/restart-child.ts), median of ${repeats}; timed from just before openTaskflow() (connection, migrations check) until the engine arms its host timer for the earliest wake time.`,
      'Baseline: the 1,000-flow row beside it (the time must not grow with the number of waiting flows); bench/restart.ts has the SQLite rows.',
    ],
  };
}

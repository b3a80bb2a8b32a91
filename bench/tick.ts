import { openTaskflow } from '../src/index.js';
import { goal, median, ms, num, quantile, ratio, tempFolder, type BenchOptions, type BenchResult } from './report.js';
import { fullScanTick, rawConnection, seedWaitingFlows } from './seed.js';

const GOAL_MS = 0.2;
const DAY = 86_400_000;

/** `tick()` with nothing due, against the reference crate's full scan, at growing numbers of waiting flows. */
export async function benchTick(options: BenchOptions): Promise<BenchResult> {
  const sizes = options.quick ? [1_000, 100_000] : [1_000, 100_000, 1_000_000];
  const folder = tempFolder('tick');
  const rows: BenchResult['rows'] = [];
  try {
    const tf = await openTaskflow({ database: folder.path('tick.db'), tickInterval: '1h' });
    const sqlite = rawConnection(tf);
    const now = Date.now();
    let seeded = 0;
    for (const size of sizes) {
      const started = performance.now();
      sqlite.pragma('cache_size = -262144'); // 256 MiB while seeding, so random UUID keys do not thrash
      seedWaitingFlows(sqlite, size - seeded, { offset: seeded, now, wakeAt: (i) => now + 10 * DAY + i * 1000 });
      sqlite.pragma('cache_size = -2000'); // back to the default for the measurement
      seeded = size;
      options.log(`tick: seeded ${num(size)} waiting flows in ${ms(performance.now() - started)}`);

      // Indexed tick: warm up, then time many calls one by one.
      for (let i = 0; i < 200; i++) await tf.engine.tick(now);
      const samples: number[] = [];
      const iterations = options.quick ? 1_000 : 5_000;
      for (let i = 0; i < iterations; i++) {
        const t = performance.now();
        const result = await tf.engine.tick(now);
        samples.push(performance.now() - t);
        if (result.resumed + result.timedOut + result.cancelled !== 0) throw new Error('tick found due work; the seed is wrong');
      }
      const tick = median(samples);

      // Full scan: many runs when cheap, one at a million.
      const runs = size <= 1_000 ? 50 : size <= 100_000 ? 3 : 1;
      const scans: number[] = [];
      let scanned = 0;
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        const result = fullScanTick(sqlite, now);
        scans.push(performance.now() - t);
        scanned = result.scanned;
        if (result.due !== 0) throw new Error('the full scan found due work; the seed is wrong');
      }
      if (scanned !== size) throw new Error(`the full scan saw ${scanned} waiting flows, expected ${size}`);
      const scan = median(scans);
      options.log(`tick at ${num(size)}: indexed ${ms(tick)}, full scan ${ms(scan)}`);
      rows.push({
        'waiting flows': num(size),
        'tick() p50': ms(tick),
        'tick() p99': ms(quantile(samples, 0.99)),
        'full-scan tick': `${ms(scan)}${runs === 1 ? ' (1 run)' : ` (median of ${runs})`}`,
        'ratio tick / full scan': ratio(tick / scan),
        speed: `${num(scan / tick)}× faster`,
        goal: size === 1_000_000 ? `< ${GOAL_MS} ms: ${goal(tick < GOAL_MS)}` : '',
      });
    }
    await tf.close();
  } finally {
    folder.cleanup();
  }
  return {
    title: '2. tick() with nothing due',
    rows,
    notes: [
      'One SQLite file (FULL), grown to each size by a raw bulk insert; 4 in 5 flows wait on a timer, 1 in 5 on an event (half of those with a timeout); every wake time is days ahead.',
      'tick(): `await tf.engine.tick(now)`, timed call by call after a warm-up (engine not started, so no sweep runs meanwhile).',
      "Full scan (the reference crate's algorithm): SELECT every waiting flow, JSON.parse each wait_json and check its time in memory; raw better-sqlite3, no ORM.",
    ],
  };
}

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openTaskflow } from '../src/index.js';
import { goal, median, mib, ms, num, ratio, tempFolder, type BenchOptions, type BenchResult } from './report.js';
import { rawConnection, seedWaitingFlows } from './seed.js';

const CHILD = fileURLToPath(new URL('./restart-child.ts', import.meta.url));
const GOAL_MS = 300;
const DAY = 86_400_000;
const run = promisify(execFile);

/** What bench/restart-child.ts reports of one restart. */
export interface ChildResult {
  armedAfter?: number;
  startedAfter: number;
  rssBefore: number;
  rss: number;
  maxRss: number;
  nextOk?: boolean;
  loaded?: number;
}

/** Restarts the runtime on `database` (a file or a postgres:// URL) in a fresh process and reports how long it took. */
export async function child(path: string, mode: 'engine' | 'fullscan', firstWake: number): Promise<ChildResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', CHILD, path, mode, String(firstWake)], { maxBuffer: 1 << 20 });
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as ChildResult;
}

/** A database with `count` waiting flows, closed again, as a crashed or stopped process leaves it. */
async function prepare(path: string, count: number): Promise<number> {
  const tf = await openTaskflow({ database: path, tickInterval: '1h' });
  const now = Date.now();
  const first = now + DAY;
  const sqlite = rawConnection(tf);
  sqlite.pragma('cache_size = -262144');
  seedWaitingFlows(sqlite, count, { now, wakeAt: (i) => first + i * 1000 });
  // eventEvery 5: flow 0 waits on an event with a timeout at `first`, so the first wake time is `first`.
  sqlite.pragma('wal_checkpoint(TRUNCATE)');
  await tf.close();
  return first;
}

export async function benchRestart(options: BenchOptions): Promise<BenchResult> {
  const sizes = [1_000, 100_000];
  const repeats = options.quick ? 1 : 3;
  const folder = tempFolder('restart');
  const rows: BenchResult['rows'] = [];
  try {
    const measured: Array<{ size: number; armed: number; started: number; rss: number; delta: number; maxRss: number }> = [];
    const files = new Map<number, { path: string; first: number }>();
    for (const size of sizes) {
      const path = folder.path(`restart-${size}.db`);
      files.set(size, { path, first: await prepare(path, size) });
    }
    for (const size of sizes) {
      const { path, first } = files.get(size)!;
      const results: ChildResult[] = [];
      for (let r = 0; r < repeats; r++) results.push(await child(path, 'engine', first));
      for (const result of results) {
        if (result.armedAfter === undefined) throw new Error('the child never saw the host timer armed for the first wake time');
        if (!result.nextOk) throw new Error('nextDueAt() did not return the first wake time');
      }
      const armed = median(results.map((r) => r.armedAfter!));
      measured.push({
        size,
        armed,
        started: median(results.map((r) => r.startedAfter)),
        rss: median(results.map((r) => r.rss)),
        delta: median(results.map((r) => r.rss - r.rssBefore)),
        maxRss: median(results.map((r) => r.maxRss)),
      });
      options.log(`restart ${num(size)}: timer armed after ${ms(armed)}`);
    }
    const small = measured[0]!;
    for (const m of measured) {
      const large = m.size === 100_000;
      rows.push({
        'waiting flows': num(m.size),
        variant: 'openTaskflow + start()',
        'until next timer armed': ms(m.armed),
        'start() resolved': ms(m.started),
        'RSS after start': mib(m.rss),
        'RSS growth during open + start': mib(m.delta),
        'ratio RSS to 1k': ratio(m.rss / small.rss),
        goal: large ? `< ${GOAL_MS} ms: ${goal(m.armed < GOAL_MS)}; RSS flat: ${goal(m.rss / small.rss < 1.1)}` : '',
      });
    }
    const { path, first } = files.get(100_000)!;
    const scan = await child(path, 'fullscan', first);
    options.log(`restart full scan 100k: ${ms(scan.startedAfter)}, RSS ${mib(scan.rss)}`);
    rows.push({
      'waiting flows': num(100_000),
      variant: 'baseline: load every waiting flow and parse its wait (reference crate)',
      'until next timer armed': `${ms(scan.startedAfter)} (loaded ${num(scan.loaded ?? 0)})`,
      'start() resolved': '',
      'RSS after start': mib(scan.rss),
      'RSS growth during open + start': mib(scan.rss - scan.rssBefore),
      'ratio RSS to 1k': ratio(scan.rss / small.rss),
      goal: '',
    });
  } finally {
    folder.cleanup();
  }
  return {
    title: '5. Restart with waiting flows',
    rows,
    notes: [
      `Each run in a fresh child process (node --import tsx), median of ${repeats}; the database was written and closed by the parent just before (its pages are in the OS cache).`,
      'Timed from just before openTaskflow() (migrations check included) until the engine calls setTimeout for the earliest wake time, seen by wrapping setTimeout; start() resolves right after.',
      'RSS: process.memoryUsage().rss after start(); the growth column subtracts the RSS measured after imports, before opening.',
    ],
  };
}

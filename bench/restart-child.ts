/**
 * One restart, measured in a process of its own (spawned by bench/restart.ts):
 *   restart-child.ts <database> <engine|fullscan> <first wake time, epoch ms>
 * Prints one JSON line with the timings and the process's memory.
 */
import Database from 'better-sqlite3';
import { openTaskflow } from '../src/index.js';

const [path, mode, firstWake] = process.argv.slice(2);
if (!path || (mode !== 'engine' && mode !== 'fullscan') || !firstWake) {
  console.error('usage: restart-child.ts <database> <engine|fullscan> <first wake time>');
  process.exit(2);
}
const expectedWake = Number(firstWake);

/** When the engine's host timer for the first wake time is armed: seen by watching setTimeout. */
let armedAfter: number | undefined;
let t0 = 0;
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((handler: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => {
  const expected = expectedWake - Date.now();
  if (armedAfter === undefined && typeof delay === 'number' && Math.abs(delay - Math.min(expected, 2_147_483_647)) < 10_000) {
    armedAfter = performance.now() - t0;
  }
  return realSetTimeout(handler, delay, ...args);
}) as typeof setTimeout;

// The PostgreSQL store is loaded on demand (pg is an optional peer): load it before the clock starts, as the SQLite store is.
if (/^postgres(ql)?:\/\//.test(path)) await import('../src/runtime/store/postgres/open.js');
const rssBefore = process.memoryUsage().rss;
if (mode === 'engine') {
  t0 = performance.now();
  const tf = await openTaskflow({ database: path, tickInterval: '5s' });
  await tf.start();
  const startedAfter = performance.now() - t0;
  const next = await tf.engine.nextDueAt();
  const rss = process.memoryUsage().rss;
  await tf.close();
  console.log(
    JSON.stringify({ armedAfter, startedAfter, rssBefore, rss, maxRss: process.resourceUsage().maxRSS * 1024, nextOk: next?.getTime() === expectedWake }),
  );
} else {
  // The reference crate's way back: load every waiting flow and parse its wait.
  t0 = performance.now();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  const rows = db.prepare(`SELECT * FROM flows WHERE status = 'waiting'`).all() as Array<{ wait_json: string | null }>;
  const waits = rows.map((row) => (row.wait_json === null ? null : (JSON.parse(row.wait_json) as unknown)));
  const startedAfter = performance.now() - t0;
  const rss = process.memoryUsage().rss;
  console.log(JSON.stringify({ startedAfter, rssBefore, rss, maxRss: process.resourceUsage().maxRSS * 1024, loaded: waits.length }));
  db.close();
}

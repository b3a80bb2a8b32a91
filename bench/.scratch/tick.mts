import { openTaskflow } from '../../src/index.js';
import pg from 'pg';
import { openPgStore, seedPgWaitingFlows, tempPgDatabase } from '../pg-support.js';
const n = Number(process.argv[2] ?? 2000);
const path = (process.argv[3] ?? 'batched') as 'batched' | 'before';
const db = await tempPgDatabase('dbg');
const store = await openPgStore(db.url, path);
const tf = await openTaskflow({ store, tickInterval: '1h' });
const now = Date.now();
await seedPgWaitingFlows(db.url, n, { wakeAt: now - 1 });
// time each query on the pool's clients
const pool = (store as any).pool as pg.Pool;
const times: Record<string, number[]> = {};
pool.on('connect', () => {});
const origQuery = pg.Client.prototype.query;
(pg.Client.prototype as any).query = function (this: any, ...args: any[]) {
  const t = performance.now();
  const text = typeof args[0] === 'string' ? args[0] : args[0]?.text ?? '';
  const key = text.slice(0, 40).replace(/\s+/g, ' ');
  const r = origQuery.apply(this, args as any);
  if (r && typeof (r as any).then === 'function') (r as any).then(() => { (times[key] ??= []).push(performance.now() - t); }, () => {});
  return r;
};
const t = performance.now();
const res = await tf.engine.tick(now);
console.log(path, n, res, (performance.now() - t).toFixed(0), 'ms');
for (const [k, v] of Object.entries(times)) console.log(v.length, (v.reduce((a, b) => a + b, 0) / v.length).toFixed(1), k);
await tf.close(); await db.drop(); process.exit(0);

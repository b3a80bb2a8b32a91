import { openTaskflow } from '../../src/index.js';
import pg from 'pg';
import { openPgStore, seedPgWaitingFlows, tempPgDatabase } from '../pg-support.js';
const db = await tempPgDatabase('dbg');
const store = await openPgStore(db.url, 'batched');
const tf = await openTaskflow({ store, tickInterval: '1h', batchSize: 500 });
const now = Date.now();
await seedPgWaitingFlows(db.url, 2000, { wakeAt: now - 1 });
const origQuery = pg.Client.prototype.query;
let done = false;
(pg.Client.prototype as any).query = function (this: any, ...args: any[]) {
  const text = typeof args[0] === 'string' ? args[0] : '';
  if (!done && text.startsWith('WITH upd') && (args[1]?.[0]?.length ?? 0) >= 256) {
    done = true;
    return origQuery.call(this, 'EXPLAIN (ANALYZE, BUFFERS) ' + text, args[1]).then((r: any) => { console.log(r.rows.map((x: any) => x['QUERY PLAN']).join('\n')); throw new Error('explained'); });
  }
  return origQuery.apply(this, args as any);
};
console.log(await tf.engine.tick(now));
await tf.close(); await db.drop(); process.exit(0);

import { openTaskflow } from '../../src/index.js';
import { openPgStore, preciseNow, seedPgWaitingFlows, tempPgDatabase } from '../pg-support.js';
const n = Number(process.argv[2] ?? 10000);
const path = (process.argv[3] ?? 'batched') as 'batched' | 'before';
const db = await tempPgDatabase('dbg');
const store = await openPgStore(db.url, path);
const stats: Record<string, { n: number; ms: number; rows: number }> = {};
for (const name of ['claimNotifications', 'completeNotifications', 'commitClaiming', 'commit', 'nextNotificationAt', 'nextWakeAt']) {
  const orig = (store as any)[name].bind(store);
  (store as any)[name] = async (...args: unknown[]) => {
    const t = performance.now();
    const r = await orig(...args);
    const s = (stats[name] ??= { n: 0, ms: 0, rows: 0 });
    s.n++; s.ms += performance.now() - t; if (Array.isArray(r)) s.rows += r.length;
    return r;
  };
}
let handled = 0, last = 0;
const tf = await openTaskflow({ store, tickInterval: '5s', onResume: () => { handled++; last = preciseNow(); } });
const deadline = Date.now() + 1500;
await seedPgWaitingFlows(db.url, n, { wakeAt: deadline });
await tf.start();
while (handled < n && Date.now() < deadline + 60000) await new Promise((r) => setTimeout(r, 20));
console.log(path, handled, 'last', (last - deadline).toFixed(0), JSON.stringify(stats));
await tf.close(); await db.drop(); process.exit(0);

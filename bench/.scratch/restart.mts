import { openTaskflow } from '../../src/index.js';
import { openPostgresStore } from '../../src/runtime/store/postgres/store.js';
import { seedPgWaitingFlows, tempPgDatabase } from '../pg-support.js';
const db = await tempPgDatabase('rs');
await (await openTaskflow({ database: db.url, tickInterval: '1h' })).close();
await seedPgWaitingFlows(db.url, 1000, { wakeAt: Date.now() + 86400000, spreadMs: 1e9, eventEvery: 5 });
for (let r = 0; r < 3; r++) {
  const t0 = performance.now();
  const store = await openPostgresStore({ connectionString: db.url });
  const t1 = performance.now();
  const tf = await openTaskflow({ store, tickInterval: '5s' });
  const t2 = performance.now();
  await tf.start();
  const t3 = performance.now();
  console.log('open store', (t1 - t0).toFixed(0), 'openTaskflow', (t2 - t1).toFixed(0), 'start', (t3 - t2).toFixed(0));
  await tf.close();
}
await db.drop(); process.exit(0);

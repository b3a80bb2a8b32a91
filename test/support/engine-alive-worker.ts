/**
 * A worker whose only job is a started engine (issue 9.7). Usage: engine-alive-worker <db>
 * Prints "started <flowId>" once started with one flow waiting on a timer 300 ms away,
 * "resumed <reason> <flowId>" for each onResume, and "closed" once SIGTERM made it close.
 * It never calls process.exit: it ends only when nothing keeps it alive.
 */
import { openTaskflow } from '../../src/index.js';

const db = process.argv[2];
if (!db) throw new Error('usage: engine-alive-worker <db>');

const tf = await openTaskflow({
  database: db,
  tickInterval: '200ms',
  onResume: (flow, wake) => console.log(`resumed ${wake.reason} ${flow.id}`),
});
process.once('SIGTERM', () => {
  void tf.close().then(() => console.log('closed'));
});
await tf.start();
const flow = await tf.manager.createManaged({ controllerId: 'test/alive', goal: 'stay alive', ownerSessionKey: 'agent:alive:session:1' });
await tf.manager.startRunning(flow.id);
await tf.manager.setWaiting(flow.id, { kind: 'timer', at: Date.now() + 300 });
console.log(`started ${flow.id}`);

/**
 * The agent of the inspector's browser test, in its own process: runs the engine
 * on the database (timers fire there) and finishes `flowId` when it resumes.
 * Usage: ui-agent-worker <db> <flowId>. Prints "finished <id>", then exits.
 * It runs the built package (global-setup builds dist/), as an agent installed
 * from npm does: loading the sources through tsx took a busy machine over 20 s.
 */
import { openTaskflow, silentLogger } from 'nexo-taskflow';

const [db, flowId] = process.argv.slice(2);
if (!db || !flowId) throw new Error('usage: ui-agent-worker <db> <flowId>');
const tf = await openTaskflow({
  database: db,
  logger: silentLogger,
  onResume: async (flow) => {
    if (flow.id !== flowId) return;
    await tf.manager.finish(flow.id, { shipped: true });
    process.stdout.write(`finished ${flow.id}\n`);
    setTimeout(() => void tf.close(), 50);
  },
});
await tf.start();

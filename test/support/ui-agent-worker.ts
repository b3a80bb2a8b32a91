/**
 * The agent of the inspector's browser test, in its own process: on its own
 * connection to the database it resumes `flowId`, works a moment, and finishes it.
 * Usage: ui-agent-worker <db> <flowId>. Prints "resumed <id>" and "finished <id>".
 */
import { openTaskflow, silentLogger } from '../../src/index.js';

const [db, flowId] = process.argv.slice(2);
if (!db || !flowId) throw new Error('usage: ui-agent-worker <db> <flowId>');
const tf = await openTaskflow({ database: db, logger: silentLogger });
await tf.manager.resume(flowId, { picked_up_by: 'agent process' });
process.stdout.write(`resumed ${flowId}\n`);
await new Promise((resolve) => setTimeout(resolve, 300));
await tf.manager.finish(flowId, { shipped: true });
process.stdout.write(`finished ${flowId}\n`);
await tf.close();

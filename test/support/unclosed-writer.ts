/**
 * Opens a runtime on the file given, writes once and ends without closing or
 * starting it: the process must exit by itself (the checkpoint thread and the
 * durable-commit file handle must not hold it).
 */
import { openTaskflow, silentLogger } from '../../src/index.js';

const tf = await openTaskflow({ database: process.argv[2]!, logger: silentLogger });
const flow = await tf.manager.createManaged({ controllerId: 'test/unclosed', goal: 'exit without close', ownerSessionKey: 'agent:test:1' });
process.stdout.write(`wrote ${flow.id}\n`);

/**
 * Opens a runtime on the file given, writes enough for the checkpoint thread to
 * ask for a catch-up pause (some 60 MiB of log), and ends without closing or
 * starting it: every write must complete (nothing left waiting on the thread's
 * answer) and the process must exit by itself (nothing of the store holds it).
 */
import { openTaskflow, silentLogger } from '../../src/index.js';

const tf = await openTaskflow({ database: process.argv[2]!, logger: silentLogger });
let last = '';
for (let i = 0; i < 1_500; i++) {
  const flows = await Promise.all([1, 2, 3].map(() => tf.manager.createAndStart({ controllerId: 'test/unclosed', goal: 'exit without close', ownerSessionKey: 'agent:test:1', wait: { kind: 'manual', signal: 'go' } })));
  last = flows[2]!.id;
}
process.stdout.write(`wrote ${last}\n`);

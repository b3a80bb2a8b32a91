import { openTaskflow } from '../../src/index.js';

const url = process.env.TASKFLOW_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const tf = await openTaskflow({ database: url });
const owner = 'agent:billing:session:9';
const flows = await Promise.all(
  ['INV-1', 'INV-2', 'INV-3'].map(async (invoice) => {
    const flow = await tf.manager.createManaged({ controllerId: 'billing/agent', goal: `collect ${invoice}`, ownerSessionKey: owner });
    return tf.manager.startRunning(flow.id);
  }),
);
// 24 concurrent writes on a pool of 10: those beyond the pool share transactions.
const writes = await Promise.allSettled(
  Array.from({ length: 24 }, (_, i) => tf.manager.updateState(flows[i % 3]!.id, { [`note${i}`]: i })),
);
console.log(writes.every((w) => w.status === 'fulfilled')); // true
await tf.close();

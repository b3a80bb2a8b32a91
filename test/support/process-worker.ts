/**
 * A second process for the multi-process tests. Usage:
 *   update <db> <flowId> <count> <prefix>   count state updates of one flow
 *   tick <db>                               tick until nothing is due; prints how many it resumed
 *   park <db> <count>                       creates count flows waiting (timer in 500 ms, and events), prints their ids, then idles
 *   hang <db> <leaseMs>                     starts the engine with an onResume that never finishes; prints "claimed <flowId>"
 */
import { openTaskflow } from '../../src/index.js';

const [mode, dbArg, ...args] = process.argv.slice(2);
if (!mode || !dbArg) throw new Error('usage: process-worker <mode> <db> ...');
const db: string = dbArg;

const owner = 'agent:worker:session:1';

async function main(): Promise<void> {
  if (mode === 'update') {
    const tf = await openTaskflow({ database: db });
    const [flowId, count, prefix] = args;
    for (let i = 0; i < Number(count); i++) await tf.manager.updateState(flowId!, { [`${prefix}${i}`]: i });
    await tf.close();
    return;
  }
  if (mode === 'tick') {
    const tf = await openTaskflow({ database: db });
    let resumed = 0;
    for (let idle = 0; idle < 20; ) {
      const result = await tf.engine.tick();
      resumed += result.resumed;
      idle = result.resumed === 0 ? idle + 1 : 0;
    }
    process.stdout.write(`${resumed}\n`);
    await tf.close();
    return;
  }
  if (mode === 'park') {
    const tf = await openTaskflow({ database: db });
    const ids: string[] = [];
    for (let i = 0; i < Number(args[0]); i++) {
      const flow = await tf.manager.createManaged({ controllerId: 'worker', goal: `park ${i}`, ownerSessionKey: owner });
      await tf.manager.startRunning(flow.id);
      const wait =
        i % 2 === 0
          ? ({ kind: 'timer', at: Date.now() + 500 } as const)
          : ({ kind: 'external_event', topic: 'parked', correlationId: `c-${i}` } as const);
      await tf.manager.setWaiting(flow.id, wait);
      ids.push(flow.id);
    }
    process.stdout.write(`${JSON.stringify(ids)}\n`);
    setInterval(() => {}, 1_000);
    return;
  }
  if (mode === 'hang') {
    const tf = await openTaskflow({
      database: db,
      resumeLease: Number(args[0]),
      onResume: (flow) => {
        process.stdout.write(`claimed ${flow.id}\n`);
        return new Promise<void>(() => {});
      },
    });
    await tf.start();
    setInterval(() => {}, 1_000);
    return;
  }
  throw new Error(`unknown mode ${mode}`);
}

await main();

/**
 * The agent process the torture suite kills at random instants. It runs the
 * engine and drives every flow through its script of waits from `onResume`:
 * each resume is written to the ledger first (so the orchestrator can check
 * that every resume reached a handler at least once), then the flow parks on
 * its next wait or finishes. A redelivered resume finds the flow already moved
 * on and does nothing: the handler is idempotent by `expectedRevision`.
 *
 *   agent.ts <database> <ledger file> [nats url]
 */
import { appendFileSync } from 'node:fs';
import { FlowError, openTaskflow, type Flow, type Wake } from '../../src/index.js';
import { nextWait, waitsDone } from './script.js';

const [database, ledger, natsUrl] = process.argv.slice(2);
if (!database || !ledger) throw new Error('usage: agent.ts <database> <ledger> [nats url]');

let unhandled = 0;
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    unhandled++;
    process.stderr.write(`UNHANDLED ${event}: ${error instanceof Error ? error.stack : String(error)}\n`);
  });
}

async function advance(flow: Flow, wake: Wake): Promise<void> {
  appendFileSync(ledger!, `${JSON.stringify({ flowId: flow.id, reason: wake.reason, at: wake.at.getTime(), pid: process.pid })}\n`);
  if (flow.status !== 'running') return; // a redelivery: the flow has moved on already
  // The agent's own work (an LLM call, say): a kill often lands in the middle of it.
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 60));
  const done = waitsDone(flow);
  const wait = nextWait(flow, done, Date.now());
  try {
    if (wait) await tf.manager.setWaiting(flow.id, wait, { expectedRevision: flow.revision });
    else await tf.manager.finish(flow.id, { waits: done }, { expectedRevision: flow.revision });
  } catch (error) {
    // Another delivery of the same resume got there first.
    if (FlowError.isInstance(error) && (error.code === 'revision_mismatch' || error.code === 'illegal_transition')) return;
    throw error;
  }
}

/** Opens the runtime, trying again while the database server is down (a host's supervisor would). */
async function openRetrying(options: Parameters<typeof openTaskflow>[0]): Promise<Awaited<ReturnType<typeof openTaskflow>>> {
  for (;;) {
    try {
      return await openTaskflow(options);
    } catch (error) {
      if (!(FlowError.isInstance(error) && error.code === 'storage')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

const tf = await openRetrying({
  database,
  tickInterval: '500ms',
  resumeLease: '2s',
  onResume: advance,
  logger: {
    debug: () => undefined,
    info: () => undefined,
    warn: (fields: object, message?: string) => process.stderr.write(`warn: ${message ?? ''} ${JSON.stringify(fields, errorFields)}\n`),
    error: (fields: object, message?: string) => process.stderr.write(`error: ${message ?? ''} ${JSON.stringify(fields, errorFields)}\n`),
  },
  ...(natsUrl ? { nats: { servers: natsUrl, subjects: ['torture.>'] } } : {}),
});
await tf.start();
process.stdout.write(`ready ${process.pid}\n`);
process.on('SIGTERM', () => {
  void tf.close().then(() => process.exit(unhandled === 0 ? 0 : 3));
});
setInterval(() => undefined, 60_000);

function errorFields(_key: string, value: unknown): unknown {
  return value instanceof Error ? { message: value.message, name: value.name } : value;
}

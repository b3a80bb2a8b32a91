/**
 * One agent process of the demo.
 *   intake <ai|langchain>  the agent is asked about two invoices, starts a flow for each and parks it
 *                          on the payment event with a deadline; then the process idles (and is killed)
 *   host <ai|langchain>    a fresh process: opens the same database, re-arms everything, and on every
 *                          resume re-invokes the agent, which reads the flow and finishes it
 */
import { isTerminal, openTaskflow, type Taskflow, type TaskflowOptions } from 'nexo-taskflow';
import { narrate } from './narrate.js';
import { DEMO_DB, DEMO_STREAM, INVOICES, intakePrompt, NATS_URL, SESSION } from './settings.js';

const [phase, sdk = 'ai'] = process.argv.slice(2);
const { runAgent } = sdk === 'langchain' ? await import('./langchain-agent.js') : await import('./ai-agent.js');
const who = phase === 'intake' ? 'agent#1' : 'agent#2';
const showCall = (input: Record<string, unknown>, output: Record<string, unknown> | undefined) => {
  const flow = output?.flow as { status: string; current_step: string } | undefined;
  const answer = output?.ok ? (flow ? `${flow.status} at step ${flow.current_step}` : 'ok') : `refused: ${String(output?.message)}`;
  const { action, ...args } = input;
  narrate(who, `  taskflow ${String(action)} ${JSON.stringify(args)} → ${answer}`);
};
const bus: Pick<TaskflowOptions, 'nats'> =
  process.env.DEMO_NATS === '1' ? { nats: { servers: NATS_URL, subjects: ['payments.received'], stream: DEMO_STREAM, durable: DEMO_STREAM, resumeSubject: 'taskflow.demo.resume' } } : {};

if (phase === 'intake') {
  const tf = await openTaskflow({ database: DEMO_DB, ...bus });
  await tf.start();
  for (const invoice of INVOICES) {
    narrate(who, `asked: "${intakePrompt(invoice)}"`);
    narrate(who, `says: "${await runAgent(tf, SESSION, intakePrompt(invoice), showCall)}"`);
  }
  for (const flow of await tf.manager.listByOwner(SESSION)) {
    const wait = flow.wait?.kind === 'external_event' ? flow.wait : undefined;
    narrate(who, `flow ${flow.state.invoice} is ${flow.status} on ${wait?.topic}/${wait?.correlationId} until ${wait?.timeoutAt?.toISOString()}`);
  }
  narrate(who, 'flows are waiting; this process now idles');
  setInterval(() => undefined, 60_000);
} else if (phase === 'host') {
  const tf: Taskflow = await openTaskflow({
    database: DEMO_DB,
    tickInterval: '1s',
    ...bus,
    onResume: async (flow, wake) => {
      const payload = wake.payload === undefined ? '' : ` with ${JSON.stringify(wake.payload)}`;
      narrate(who, `onResume: flow ${flow.state.invoice} woke up (${wake.reason})${payload}; re-invoking the agent`);
      const text = await runAgent(tf, flow.ownerSessionKey, `Flow ${flow.id} resumed (${wake.reason}). Read its status and carry on.`, showCall);
      narrate(who, `says: "${text}"`);
    },
  });
  await tf.start();
  narrate(who, `started: ${bus.nats ? 'NATS bridge connected, ' : ''}timers re-armed from ${DEMO_DB}`);
  const poll = setInterval(() => {
    void tf.manager.listByOwner(SESSION).then(async (flows) => {
      if (flows.length === 0 || !flows.every((f) => isTerminal(f.status))) return;
      clearInterval(poll);
      await tf.close();
      narrate(who, 'every flow is finished; exiting');
      process.exit(0);
    });
  }, 200);
} else {
  throw new Error('usage: agent-process.ts <intake|host> <ai|langchain>');
}

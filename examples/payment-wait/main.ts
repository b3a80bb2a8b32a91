/**
 * The payment-wait demo: an agent parks two invoices on a payment event, its process
 * is killed, a new one takes over, the payment for one arrives over NATS and the other
 * times out into the reminder branch. Run with `npm run demo` (`-- --langchain` for
 * the LangChain variant, also `npm run demo:langchain`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { openTaskflow } from 'nexo-taskflow';
import { narrate, table } from './narrate.js';
import { DEMO_DB, DEMO_STREAM, NATS_URL, SESSION } from './settings.js';

process.env.DEMO_T0 ??= String(Date.now());
const sdk = process.argv.includes('--langchain') ? 'langchain' : 'ai';
const AGENT = fileURLToPath(new URL('./agent-process.ts', import.meta.url));

for (const suffix of ['', '-wal', '-shm']) rmSync(DEMO_DB + suffix, { force: true });
narrate('demo', `payment-wait demo (${sdk === 'ai' ? 'Vercel AI SDK generateText' : 'LangChain createAgent'}, scripted model), database ${DEMO_DB}`);

const nc = await connect({ servers: NATS_URL, timeout: 1_000, maxReconnectAttempts: 0 }).catch(() => undefined);
if (nc) {
  await resetDemoStream(nc);
  narrate('demo', `NATS at ${NATS_URL}: events travel over JetStream`);
} else {
  narrate('demo', `no NATS server answers at ${NATS_URL}: events are delivered in-process instead`);
}

narrate('demo', 'starting agent process #1');
const first = startAgent('intake');
await first.line(/flows are waiting/);
narrate('demo', `killing agent process #1 (pid ${first.child.pid}) with SIGKILL while both flows wait`);
first.child.kill('SIGKILL');
await first.exited;

const payment = { amount: 120, currency: 'USD', paid_at: new Date().toISOString() };
const publishPayment = async (connection: NatsConnection, stored: boolean): Promise<void> => {
  const h = headers();
  h.set('Taskflow-Correlation-Id', 'INV-42');
  const body = JSON.stringify({ payload: payment });
  if (stored) {
    // JetStream acknowledges once the stream has stored it: it survives until an agent runs.
    await jetstream(connection).publish('payments.received', body, { headers: h, msgID: `payment-INV-42-${process.env.DEMO_T0}` });
  } else {
    connection.publish('payments.received', body, { headers: h });
    await connection.flush();
  }
};
let publishLater = false;
if (nc) {
  try {
    await publishPayment(nc, true);
    narrate('payments', 'payment of INV-42 published on NATS (JetStream stored it) while no agent process runs');
  } catch {
    publishLater = true; // core NATS only: a message sent while nobody listens is lost
  }
} else {
  const tf = await openTaskflow({ database: DEMO_DB });
  await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: payment, eventId: 'payment-INV-42' });
  await tf.close();
  narrate('payments', 'payment of INV-42 delivered in-process while no agent process runs');
}
narrate('payments', 'no payment will come for INV-77');

narrate('demo', 'starting agent process #2');
const second = startAgent('host');
await second.line(/started:/);
if (nc && publishLater) {
  await publishPayment(nc, false);
  narrate('payments', 'payment of INV-42 published on core NATS (no JetStream) now that agent #2 listens');
}

// A few seconds on an idle machine; generous, for a busy one.
const code = await Promise.race([second.exited, new Promise<number>((r) => setTimeout(() => r(-1), 120_000))]);
if (code !== 0) {
  second.child.kill('SIGKILL');
  throw new Error(code === -1 ? 'agent process #2 did not finish within 120 s' : `agent process #2 exited with ${code}`);
}
await nc?.close();

const tf = await openTaskflow({ database: DEMO_DB });
const flows = (await tf.manager.listByOwner(SESSION)).reverse();
process.stdout.write('\n');
for (const flow of flows) {
  const events = await tf.manager.listEvents(flow.id);
  process.stdout.write(`Audit log of flow ${flow.state.invoice} (${flow.id}): ${flow.status}, outcome ${JSON.stringify(flow.state.outcome)}\n`);
  const t0 = Number(process.env.DEMO_T0);
  // Numbered per flow: row n is the write that took the flow to revision n - 1.
  const rows = events.map((e, i) => [String(i + 1), `+${((e.at.getTime() - t0) / 1000).toFixed(2)}s`, e.kind, detail(e.payload)]);
  process.stdout.write(`${table(['#', 'at', 'event', 'detail'], rows)}\n`);
  process.stdout.write(`final state (revision ${flow.revision}, step ${flow.currentStep}): ${JSON.stringify(flow.state)}\n\n`);
}
await tf.close();
const outcome = Object.fromEntries(flows.map((f) => [String(f.state.invoice), String(f.state.outcome)]));
process.stdout.write(`Outcome: ${JSON.stringify(outcome)}\n`);
const db = relative(process.cwd(), DEMO_DB).startsWith('..') ? DEMO_DB : relative(process.cwd(), DEMO_DB);
process.stdout.write(
  `\nThe flows stay in ${db}; see them with the operator CLI:\n` +
    `  npx taskflow list --db ${db}\n` +
    flows.map((f) => `  npx taskflow show ${f.id} --db ${db}\n`).join(''),
);
process.exit(outcome['INV-42'] === 'shipped' && outcome['INV-77'] === 'reminder_sent' ? 0 : 1);

function detail(payload: Record<string, unknown>): string {
  const { at: _at, ...rest } = payload;
  const text = JSON.stringify(rest);
  return text === '{}' ? '' : text.length > 90 ? `${text.slice(0, 87)}...` : text;
}

async function resetDemoStream(connection: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(connection).catch(() => undefined);
  await jsm?.streams.delete(DEMO_STREAM).catch(() => undefined);
}

function startAgent(phase: 'intake' | 'host'): { child: ChildProcess; line(match: RegExp): Promise<void>; exited: Promise<number> } {
  const child = spawn(process.execPath, ['--import', 'tsx', AGENT, phase, sdk], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, DEMO_NATS: nc ? '1' : '0' },
  });
  let seen = '';
  const waiters: Array<{ match: RegExp; resolve: () => void }> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    seen += chunk.toString();
    for (const w of waiters.filter((w) => w.match.test(seen))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  return {
    child,
    exited,
    line: (match) =>
      new Promise<void>((resolve, reject) => {
        if (match.test(seen)) return resolve();
        waiters.push({ match, resolve });
        void exited.then((code) => reject(new Error(`agent process exited (${code}) before printing ${match}`)));
      }),
  };
}

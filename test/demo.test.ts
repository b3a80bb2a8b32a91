import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTaskflow } from '../src/index.js';
import { taskflowCli } from './support/cli-run.js';
import { startNatsServer, type NatsServer } from './support/nats-server.js';
import { tempDbPath } from './support/temp-db.js';

const run = promisify(execFile);

/** Runs examples/payment-wait end to end, as `npm run demo` does, and reads its database after. */
async function runDemo(variant: string[], env: Record<string, string>): Promise<{ output: string; database: string }> {
  const database = tempDbPath('demo.db');
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/payment-wait/main.ts', ...variant], {
    env: { ...process.env, NATS_URL: nats!.url, ...env, DEMO_DB: database },
    timeout: 150_000,
  });
  return { output: stdout, database };
}

const NO_NATS = { NATS_URL: 'nats://127.0.0.1:1' };

// The demo's own nats-server (JetStream on a free port), passed as NATS_URL as a user would.
let nats: NatsServer | undefined;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.dispose();
});

describe.each([
  { name: 'Vercel AI SDK, over NATS JetStream', variant: [], env: {}, via: /published on NATS \(JetStream stored it\)/ },
  { name: 'LangChain, over NATS JetStream', variant: ['--langchain'], env: {}, via: /published on NATS \(JetStream stored it\)/ },
  { name: 'Vercel AI SDK, no NATS server', variant: [], env: NO_NATS, via: /no NATS server answers .* delivered in-process instead/ },
])('the payment-wait demo ($name)', ({ variant, env, via }) => {
  it('finishes flow 1 with the payment after a process restart and takes flow 2 into the reminder by timeout', async () => {
    const { output, database } = await runDemo(variant, env);
    expect(output).toMatch(via);
    expect(output).toMatch(/killing agent process #1 \(pid \d+\) with SIGKILL while both flows wait/);
    expect(output).toContain('Outcome: {"INV-42":"shipped","INV-77":"reminder_sent"}');
    // Audit tables: rows numbered per flow, then the flow's final state.
    expect(output).toMatch(/^#\s+at\s+event\s+detail\n[- ]+\n1\s+\+[\d.]+s\s+created\s/m);
    expect(output).toMatch(/^5\s+\+[\d.]+s\s+finished\nfinal state \(revision 4, step await_payment\): \{"invoice":"INV-42",.*"outcome":"shipped"/m);
    expect(output).toMatch(/^6\s+\+[\d.]+s\s+finished\nfinal state \(revision 5, step reminder\): \{"invoice":"INV-77",.*"outcome":"reminder_sent"\}$/m);
    // It ends with the CLI commands that show its flows, and they do.
    const commands = [...output.matchAll(/^ {2}npx taskflow (.+)$/gm)].map((m) => m[1]!.split(' '));
    expect(commands.map((c) => c[0])).toEqual(['list', 'show', 'show']);
    for (const args of commands) expect((await taskflowCli(args)).code).toBe(0);
    const shown = await taskflowCli([...commands[1]!, '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ flow: { status: 'finished' } });

    const tf = await openTaskflow({ database });
    try {
      const flows = await tf.manager.listByOwner('agent:billing:session:demo');
      const paid = flows.find((f) => f.state.invoice === 'INV-42')!;
      const unpaid = flows.find((f) => f.state.invoice === 'INV-77')!;
      expect(paid).toMatchObject({ status: 'finished', state: { resume_event: { amount: 120 }, outcome: 'shipped', paid_amount: 120 } });
      expect(unpaid).toMatchObject({ status: 'finished', currentStep: 'reminder', state: { outcome: 'reminder_sent' } });
      const reasons = async (id: string) => (await tf.manager.listEvents(id)).filter((e) => e.kind === 'resumed').map((e) => e.payload.reason);
      expect(await reasons(paid.id)).toEqual(['event']);
      expect(await reasons(unpaid.id)).toEqual(['timeout']);
      // the flows were created by the killed process and finished by the second one
      const killedAt = output.indexOf('killing agent process #1');
      expect(output.indexOf('taskflow finish')).toBeGreaterThan(killedAt);
      expect(output.lastIndexOf('taskflow start')).toBeLessThan(killedAt);
    } finally {
      await tf.close();
    }
  }, 180_000);
});

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, openTaskflow, silentLogger, type Diagnosis } from '../src/index.js';
import { TempFolders, taskflowCli } from './support/cli-run.js';
import { newFlow } from './support/taskflow.js';

const temp = new TempFolders();
afterAll(() => temp.removeAll());

const DAY = 86_400_000;

/** A database prepared with a clock `daysAgo` days back; the CLI then reads it at the real time. */
async function database(prepare: (tf: Awaited<ReturnType<typeof openTaskflow>>) => Promise<void>, daysAgo = 10): Promise<string> {
  const db = join(temp.make(), 'taskflow.db');
  const tf = await openTaskflow({ database: db, clock: new ManualClock(Date.now() - daysAgo * DAY), logger: silentLogger });
  try {
    await prepare(tf);
  } finally {
    await tf.close();
  }
  return db;
}

describe('taskflow doctor', () => {
  it('exits 0 and says so when no wait is in trouble', async () => {
    const db = await database(async (tf) => void (await tf.manager.createManaged(newFlow)));
    const result = await taskflowCli(['--db', db, 'doctor']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe('no waits in trouble; no engine running\n');
  });

  it('exits 1 and lists each finding with its reason and fix; --json gives the diagnosis', async () => {
    let flowId = '';
    const db = await database(async (tf) => {
      const flow = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(flow.id);
      flowId = (await tf.manager.setWaiting(flow.id, { kind: 'timer', at: tf.clock.now() + 60_000 })).id;
    });
    const text = await taskflowCli(['--db', db, 'doctor']);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`no_engine: 1 timer(s) or timeout(s) are due, but no engine has ever recorded a heartbeat on this database\n  flow ${flowId}\n  fix: start a runtime`);
    expect(text.stdout).toMatch(/1 finding; no engine running\n$/);
    const json = await taskflowCli(['--db', db, 'doctor', '--json']);
    expect(json.code).toBe(1);
    const diagnosis = JSON.parse(json.stdout) as Diagnosis;
    expect(diagnosis).toMatchObject({ ok: false, findings: [{ kind: 'no_engine', flowIds: [flowId] }], engines: [], truncated: false });
  });

  it('reports an old signal wait by --manual-wait-age', async () => {
    const db = await database(async (tf) => {
      const flow = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(flow.id);
      await tf.manager.setWaiting(flow.id, { kind: 'manual' });
    });
    expect((await taskflowCli(['--db', db, 'doctor'])).code).toBe(1);
    expect((await taskflowCli(['--db', db, 'doctor', '--manual-wait-age', '30d'])).code).toBe(0);
    expect(await taskflowCli(['--db', db, 'doctor', '--manual-wait-age', 'soon'])).toMatchObject({ code: 2 });
  });
});

describe('taskflow deliver --start', () => {
  const start = JSON.stringify({ owner: 'billing', idempotencyKey: 'invoice:INV-42', flow: { controllerId: 'billing/invoice', goal: 'ship once INV-42 is paid' } });

  it('starts the flow of the key with the event, then delivers to it', async () => {
    const db = await database(async () => undefined, 0);
    const first = await taskflowCli(['--db', db, 'deliver', 'payments.received', 'INV-42', '--payload', '{"amount":42}', '--start', start, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const out = JSON.parse(first.stdout) as { started: boolean; flow: { id: string; status: string }; resumed: string[]; kept: boolean };
    expect(out).toMatchObject({ topic: 'payments.received', correlationId: 'INV-42', started: true, flow: { status: 'running' }, kept: false });
    expect(out.resumed).toEqual([out.flow.id]);
    const second = await taskflowCli(['--db', db, 'deliver', 'payments.received', 'INV-42', '--start', start]);
    expect(second.stdout).toBe(`found flow ${out.flow.id} (running)\nevent payments.received/INV-42: no flow waits on it; kept in the inbox for a later wait\n`);
    const tf = await openTaskflow({ database: db, logger: silentLogger });
    try {
      expect(await tf.manager.listByOwner('billing')).toHaveLength(1);
      expect((await tf.manager.get(out.flow.id))!.state).toEqual({ resume_event: { amount: 42 } });
    } finally {
      await tf.close();
    }
  });

  it('refuses a --start that is not a JSON object, changing nothing', async () => {
    const db = await database(async () => undefined, 0);
    expect(await taskflowCli(['--db', db, 'deliver', 'payments.received', 'INV-42', '--start', '[1]'])).toMatchObject({ code: 2 });
    const bad = await taskflowCli(['--db', db, 'deliver', 'payments.received', 'INV-42', '--start', '{"owner":"billing","idempotencyKey":"k","flow":{"goal":"g"}}']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid_input.*controllerId/);
    expect((await taskflowCli(['--db', db, 'inbox', '--json'])).stdout).toContain('"keys": 0');
  });
});

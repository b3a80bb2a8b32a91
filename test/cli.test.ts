import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLOW_STATUSES, type FlowStatus } from '../src/index.js';
import {
  OWNER_1,
  OWNER_2,
  TempFolders,
  readDatabase,
  seedDatabase,
  taskflowBin,
  taskflowCli,
  type CliResult,
  type SeededFlows,
} from './support/cli-run.js';

const temp = new TempFolders();

/** A fresh seeded database for a test that changes it. */
async function freshDatabase(): Promise<{ db: string; flows: SeededFlows }> {
  const db = join(temp.make(), 'taskflow.db');
  return { db, flows: await seedDatabase(db) };
}

/** The failure contract: one line on stderr, no stack trace, nothing on stdout. */
function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stdout).toBe('');
  expect(result.stderr.endsWith('\n')).toBe(true);
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stderr).toMatch(pattern);
}

function parse<T = Record<string, unknown>>(result: CliResult): T {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

afterAll(() => temp.removeAll());

describe.concurrent('taskflow CLI, reading', () => {
  let db: string;
  let flows: SeededFlows;
  beforeAll(async () => {
    db = join(temp.make(), 'taskflow.db');
    flows = await seedDatabase(db);
  });
  const cli = (...args: string[]) => taskflowCli(['--db', db, ...args]);

  it('list prints every flow as a table, least recently updated first', async () => {
    const result = await cli('list');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+STEP\s+WAIT\s+OWNER\s+UPDATED\s+GOAL$/);
    // Flows updated in the same millisecond come in status order, then creation order (LIST_ORDER).
    const rank = (status: FlowStatus) => FLOW_STATUSES.indexOf(status);
    const ids = Object.values(flows)
      .sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime() || rank(a.status) - rank(b.status) || a.createdAt.getTime() - b.createdAt.getTime())
      .map((f) => f.id);
    expect(lines.slice(1, 6).map((line) => line.split(/\s+/)[0])).toEqual(ids);
    expect(result.stdout).toContain('event payments.received/INV-42');
    expect(result.stdout).toContain('signal approve');
    expect(lines.at(-1)).toBe('5 flows');
  });

  it('list --json gives { count, flows } with ISO timestamps', async () => {
    const out = parse<{ count: number; flows: Array<Record<string, unknown>> }>(await cli('list', '--json'));
    expect(out.count).toBe(5);
    expect(out.flows).toHaveLength(5);
    const payment = out.flows.find((f) => f.id === flows.paymentWait.id)!;
    expect(payment).toMatchObject({
      status: 'waiting',
      ownerSessionKey: OWNER_1,
      state: { invoice: 'INV-42' },
      wait: { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' },
      cancelRequested: false,
      revision: 2,
      createdAt: flows.paymentWait.createdAt.toISOString(),
    });
    expect(Object.keys(payment).sort()).toEqual(
      ['id', 'controllerId', 'goal', 'ownerSessionKey', 'requesterOrigin', 'currentStep', 'state', 'wait', 'status', 'cancelRequested', 'revision', 'createdAt', 'updatedAt'].sort(),
    );
  });

  it('list filters by status, by owner, by both, and honours --limit', async () => {
    const [waiting, owner2, owner1Waiting, one] = await Promise.all([
      cli('list', '--status', 'waiting', '--json'),
      cli('list', '--owner', OWNER_2, '--json'),
      cli('list', '--owner', OWNER_1, '--status', 'waiting', '--json'),
      cli('list', '--limit', '1', '--json'),
    ]);
    const ids = (r: CliResult) => parse<{ flows: Array<{ id: string }> }>(r).flows.map((f) => f.id).sort();
    expect(ids(waiting)).toEqual([flows.paymentWait.id, flows.approvalWait.id].sort());
    expect(ids(owner2)).toEqual([flows.approvalWait.id, flows.created.id].sort());
    expect(ids(owner1Waiting)).toEqual([flows.paymentWait.id]);
    expect(parse<{ count: number }>(one).count).toBe(1);
  });

  it('list says so when nothing matches', async () => {
    const result = await cli('list', '--status', 'failed');
    expect(result).toMatchObject({ code: 0, stdout: 'no flows\n' });
  });

  it('list refuses a bad status, limit or empty owner with exit 2', async () => {
    const [status, limit, zero, owner] = await Promise.all([
      cli('list', '--status', 'sleeping'),
      cli('list', '--limit', 'ten'),
      cli('list', '--limit', '0'),
      cli('list', '--owner', ''),
    ]);
    expectOneLineError(status, 2, /--status must be one of created, running, waiting, finished, failed, cancelled/);
    expectOneLineError(limit, 2, /--limit must be a whole number/);
    expectOneLineError(zero, 2, /--limit must be a whole number/);
    expectOneLineError(owner, 2, /^taskflow: list: --owner must not be empty\n$/);
  });

  it('TASKFLOW_DB_PATH picks the database when --db is absent', async () => {
    const result = await taskflowCli(['list', '--json'], { env: { TASKFLOW_DB_PATH: db } });
    expect(parse<{ count: number }>(result).count).toBe(5);
  });

  it('show prints the flow, its steps and its audit timeline', async () => {
    const result = await cli('show', flows.approvalWait.id);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^id:\\s+${flows.approvalWait.id}$`, 'm'));
    expect(result.stdout).toMatch(/^status:\s+waiting$/m);
    expect(result.stdout).toMatch(/^wait:\s+signal approve$/m);
    expect(result.stdout).toMatch(/^Observed steps .*\nRUN\s+TASK\s+STATUS/m);
    expect(result.stdout).toMatch(/^run-1\s+draft refund email\s+succeeded/m);
    expect(result.stdout).toMatch(/^Timeline\n#\s+AT\s+KIND\s+DETAILS/m);
    for (const kind of ['created', 'step_observed', 'waiting']) expect(result.stdout).toMatch(new RegExp(`\\s${kind}\\s`));
  });

  it('show --json gives { flow, steps, events }, with revision + 1 events', async () => {
    const out = parse<{ flow: { id: string; revision: number }; steps: Array<Record<string, unknown>>; events: Array<Record<string, unknown>> }>(
      await cli('show', flows.approvalWait.id, '--json'),
    );
    expect(out.flow.id).toBe(flows.approvalWait.id);
    expect(out.steps).toEqual([expect.objectContaining({ runId: 'run-1', task: 'draft refund email', status: 'succeeded', result: { draft: 'ok' } })]);
    expect(out.events).toHaveLength(out.flow.revision + 1);
    expect(out.events.map((e) => e.kind)).toEqual(['created', 'step_observed', 'waiting']);
    expect(Object.keys(out.events[0]!).sort()).toEqual(['at', 'flowId', 'id', 'kind', 'payload']);
  });

  it('events prints the audit log whole; --json gives { flowId, count, events }', async () => {
    const [text, json] = await Promise.all([cli('events', flows.finished.id), cli('events', flows.finished.id, '--json')]);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^#\s+AT\s+KIND\s+DETAILS$/);
    expect(text.stdout).toContain('{"status":"created","controllerId":"kate/shop","goal":"say hello"}');
    const out = parse<{ flowId: string; count: number; events: Array<{ kind: string }> }>(json);
    expect(out.flowId).toBe(flows.finished.id);
    expect(out.count).toBe(3);
    expect(out.events.map((e) => e.kind)).toEqual(['created', 'started', 'finished']);
  });

  it('an unknown or malformed id is not_found, exit 1', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    const results = await Promise.all([cli('show', unknown), cli('show', 'not-a-uuid'), cli('events', unknown), cli('cancel', 'nope'), cli('resume', unknown), cli('signal', unknown)]);
    for (const result of results) expectOneLineError(result, 1, /^taskflow: not_found: no flow with id /);
  });

  it('with --json an error is one JSON line on stderr', async () => {
    const result = await cli('show', 'not-a-uuid', '--json');
    expectOneLineError(result, 1, /^\{/);
    expect(JSON.parse(result.stderr)).toEqual({ ok: false, error: 'not_found', message: 'no flow with id "not-a-uuid"' });
  });

  it('help lists every command; a command has its own help', async () => {
    const [help, dashHelp, showHelp, helpCancel] = await Promise.all([
      taskflowCli(['help']),
      taskflowCli(['--help']),
      taskflowCli(['show', '--help']),
      taskflowCli(['help', 'cancel']),
    ]);
    expect(help.code).toBe(0);
    for (const name of ['list', 'show', 'events', 'cancel', 'resume', 'signal', 'deliver', 'prune', 'help']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${name}\\s`, 'm'));
    }
    expect(help.stdout).toContain('Exit codes:');
    expect(dashHelp).toEqual(help);
    expect(showHelp.stdout).toMatch(/^Usage: taskflow show <id>/);
    expect(helpCancel.stdout).toContain('--request-only');
  });

  it('refuses a bad command line with exit 2', async () => {
    const [unknown, helpUnknown, missingId, missingCorrelation, extra, unknownOption, missingValue] = await Promise.all([
      cli('frobnicate'),
      cli('help', 'frobnicate'),
      cli('show'),
      cli('deliver', 'payments.received'),
      cli('events', flows.finished.id, 'extra'),
      cli('list', '--colour'),
      cli('list', '--status'),
    ]);
    expectOneLineError(unknown, 2, /unknown command "frobnicate"/);
    expectOneLineError(helpUnknown, 2, /unknown command "frobnicate"/);
    expectOneLineError(missingId, 2, /show: missing <id>/);
    expectOneLineError(missingCorrelation, 2, /deliver: missing <correlation-id>/);
    expectOneLineError(extra, 2, /events: unexpected argument "extra"/);
    expectOneLineError(unknownOption, 2, /list: unknown option --colour/);
    expectOneLineError(missingValue, 2, /^taskflow: list: --status needs a value/);
  });
});

describe.concurrent('taskflow CLI, changing flows', () => {
  it('cancel cancels a waiting flow through the cancel request', async () => {
    const { db, flows } = await freshDatabase();
    const out = parse<{ outcome: string; previousStatus: string; flow: { status: string } }>(
      await taskflowCli(['--db', db, 'cancel', flows.paymentWait.id, '--json']),
    );
    expect(out).toMatchObject({ outcome: 'cancelled', previousStatus: 'waiting', flow: { status: 'cancelled' } });
    const kinds = await readDatabase(db, async (tf) => (await tf.manager.listEvents(flows.paymentWait.id)).map((e) => e.kind));
    expect(kinds.slice(-1)).toEqual(['cancelled']);
  });

  it('cancel requests, then forces, a running flow; --request-only only requests', async () => {
    const { db, flows } = await freshDatabase();
    const forced = await taskflowCli(['--db', db, 'cancel', flows.running.id]);
    expect(forced).toMatchObject({ code: 0, stdout: `cancelled flow ${flows.running.id} (was running)\n` });
    const asked = parse<{ outcome: string; flow: { status: string; cancelRequested: boolean } }>(
      await taskflowCli(['--db', db, 'cancel', flows.created.id, '--request-only', '--json']),
    );
    expect(asked).toMatchObject({ outcome: 'cancel_requested', flow: { status: 'created', cancelRequested: true } });
    await readDatabase(db, async (tf) => {
      expect((await tf.manager.listEvents(flows.running.id)).map((e) => e.kind).slice(-2)).toEqual(['cancel_requested', 'cancelled']);
      expect(await tf.manager.get(flows.created.id)).toMatchObject({ status: 'created', cancelRequested: true });
    });
  });

  it('cancel leaves a cancelled flow alone (exit 0) and refuses a finished one (exit 1)', async () => {
    const { db, flows } = await freshDatabase();
    await taskflowCli(['--db', db, 'cancel', flows.running.id]);
    const again = parse<{ outcome: string }>(await taskflowCli(['--db', db, 'cancel', flows.running.id, '--json']));
    expect(again.outcome).toBe('already_cancelled');
    const finished = await taskflowCli(['--db', db, 'cancel', flows.finished.id]);
    expectOneLineError(finished, 1, /^taskflow: already_terminal: flow .* is already finished/);
    expect(await readDatabase(db, (tf) => tf.manager.get(flows.finished.id))).toMatchObject({ status: 'finished', revision: flows.finished.revision });
  });

  it('resume moves a waiting flow to running, merging --patch, as a manual resume', async () => {
    const { db, flows } = await freshDatabase();
    const out = parse<{ flow: { status: string; state: Record<string, unknown>; wait: unknown } }>(
      await taskflowCli(['--db', db, 'resume', flows.paymentWait.id, '--patch', '{"paid_by":"operator"}', '--json']),
    );
    expect(out.flow).toMatchObject({ status: 'running', wait: null, state: { invoice: 'INV-42', paid_by: 'operator' } });
    const last = await readDatabase(db, async (tf) => (await tf.manager.listEvents(flows.paymentWait.id)).at(-1));
    expect(last).toMatchObject({ kind: 'resumed', payload: expect.objectContaining({ reason: 'manual' }) });
  });

  it('resume refuses bad JSON, a non-object patch (exit 2) and a flow not waiting (exit 1), changing nothing', async () => {
    const { db, flows } = await freshDatabase();
    const [badJson, array, notWaiting] = await Promise.all([
      taskflowCli(['--db', db, 'resume', flows.paymentWait.id, '--patch', '{paid_by:']),
      taskflowCli(['--db', db, 'resume', flows.paymentWait.id, '--patch', '[1,2]']),
      taskflowCli(['--db', db, 'resume', flows.running.id]),
    ]);
    expectOneLineError(badJson, 2, /^taskflow: --patch is not valid JSON \(at character 2\)/);
    expectOneLineError(array, 2, /--patch must be a JSON object/);
    expectOneLineError(notWaiting, 1, /^taskflow: illegal_transition: /);
    await readDatabase(db, async (tf) => {
      expect(await tf.manager.get(flows.paymentWait.id)).toMatchObject({ status: 'waiting', revision: flows.paymentWait.revision });
      expect(await tf.manager.get(flows.running.id)).toMatchObject({ status: 'running', revision: flows.running.revision });
    });
  });

  it('signal resumes a flow waiting for that signal, with its payload', async () => {
    const { db, flows } = await freshDatabase();
    const result = await taskflowCli(['--db', db, 'signal', flows.approvalWait.id, '--name', 'approve', '--payload', '{"by":"ana"}']);
    expect(result).toMatchObject({ code: 0, stdout: `signalled flow ${flows.approvalWait.id} with approve: running\n` });
    const last = await readDatabase(db, async (tf) => (await tf.manager.listEvents(flows.approvalWait.id)).at(-1));
    expect(last).toMatchObject({ kind: 'resumed', payload: expect.objectContaining({ reason: 'signal' }) });
  });

  it('signal refuses a wrong name or a flow not waiting (exit 1) and bad JSON (exit 2)', async () => {
    const { db, flows } = await freshDatabase();
    const [wrongName, unnamed, notWaiting, eventWait, badJson] = await Promise.all([
      taskflowCli(['--db', db, 'signal', flows.approvalWait.id, '--name', 'reject']),
      taskflowCli(['--db', db, 'signal', flows.approvalWait.id]),
      taskflowCli(['--db', db, 'signal', flows.running.id]),
      taskflowCli(['--db', db, 'signal', flows.paymentWait.id, '--json']),
      taskflowCli(['--db', db, 'signal', flows.approvalWait.id, '--name', 'approve', '--payload', 'yes']),
    ]);
    expectOneLineError(wrongName, 1, /invalid_input: .*waits for the signal "approve", not "reject"/);
    expectOneLineError(unnamed, 1, /invalid_input: /);
    expectOneLineError(notWaiting, 1, /illegal_transition: /);
    expectOneLineError(eventWait, 1, /"error":"invalid_input"/);
    expectOneLineError(badJson, 2, /--payload is not valid JSON/);
    expect(await readDatabase(db, (tf) => tf.manager.get(flows.approvalWait.id))).toMatchObject({ status: 'waiting' });
  });

  it('deliver resumes the flows waiting on the key, keeps an unmatched event, ignores a repeated id', async () => {
    const { db, flows } = await freshDatabase();
    const cli = (...args: string[]) => taskflowCli(['--db', db, 'deliver', ...args, '--json']);
    const first = parse(await cli('payments.received', 'INV-42', '--payload', '{"amount":120}', '--event-id', 'evt-1'));
    expect(first).toEqual({ topic: 'payments.received', correlationId: 'INV-42', resumed: [flows.paymentWait.id], kept: false, duplicate: false });
    expect(parse(await cli('payments.received', 'INV-42', '--event-id', 'evt-1'))).toMatchObject({ resumed: [], duplicate: true });
    expect(parse(await cli('payments.received', 'INV-99', '--payload', '{"amount":5}'))).toMatchObject({ resumed: [], kept: true });
    const text = await taskflowCli(['--db', db, 'deliver', 'payments.received', 'INV-98']);
    expect(text).toMatchObject({ code: 0, stdout: 'event payments.received/INV-98: no flow waits on it; kept in the inbox for a later wait\n' });
    await readDatabase(db, async (tf) => {
      expect(await tf.manager.get(flows.paymentWait.id)).toMatchObject({ status: 'running', state: { resume_event: { amount: 120 } } });
      // The kept event resumes a later wait on its key at once.
      await tf.manager.startRunning(flows.created.id);
      const late = await tf.manager.setWaiting(flows.created.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-99' });
      expect(late).toMatchObject({ status: 'running', state: { resume_event: { amount: 5 } } });
    });
  });

  it('deliver refuses bad JSON and a bad --keep-for with exit 2', async () => {
    const { db } = await freshDatabase();
    const [badJson, keepFor] = await Promise.all([
      taskflowCli(['--db', db, 'deliver', 'payments.received', 'INV-42', '--payload', '{"amount":']),
      taskflowCli(['--db', db, 'deliver', 'payments.received', 'INV-42', '--keep-for', 'forever']),
    ]);
    expectOneLineError(badJson, 2, /--payload is not valid JSON/);
    expectOneLineError(keepFor, 2, /--keep-for "forever" is not a duration/);
  });

  it('prune deletes terminal flows older than the duration, and needs one', async () => {
    const { db, flows } = await freshDatabase();
    const [missing, bad] = await Promise.all([taskflowCli(['--db', db, 'prune']), taskflowCli(['--db', db, 'prune', '--older-than', 'a month'])]);
    expectOneLineError(missing, 2, /prune needs --older-than <duration>/);
    expectOneLineError(bad, 2, /--older-than "a month" is not a duration/);
    expect(parse(await taskflowCli(['--db', db, 'prune', '--older-than', '30d', '--json']))).toMatchObject({ pruned: 0, olderThan: '30d' });
    const text = await taskflowCli(['--db', db, 'prune', '--older-than', '0']);
    expect(text.stdout).toMatch(/^pruned 1 terminal flow last updated at or before \d{4}-/);
    await readDatabase(db, async (tf) => {
      expect(await tf.manager.get(flows.finished.id)).toBeUndefined();
      expect(await tf.manager.get(flows.paymentWait.id)).toBeDefined();
    });
  });
});

describe.concurrent('taskflow CLI, bad input', () => {
  it('prune refuses a bare number with exit 2 and asks for a unit', async () => {
    const { db, flows } = await freshDatabase();
    for (const bare of ['30', '30.5', ' 7 ']) {
      expectOneLineError(await taskflowCli(['--db', db, 'prune', '--older-than', bare]), 2, /--older-than \S+ has no unit: add one, such as \S+d/);
    }
    await readDatabase(db, async (tf) => expect(await tf.manager.get(flows.finished.id)).toBeDefined());
  });

  it('deliver takes keys by the one key rule: a padded correlation id resumes the flow waiting on it', async () => {
    const { db, flows } = await freshDatabase();
    const out = parse<{ resumed: string[] }>(await taskflowCli(['--db', db, 'deliver', ' payments.received', 'INV-42 ', '--json']));
    expect(out.resumed).toEqual([flows.paymentWait.id]);
  });

  it('deliver refuses a control character in a key with exit 1, changing nothing', async () => {
    const { db, flows } = await freshDatabase();
    const result = await taskflowCli(['--db', db, 'deliver', 'payments.received', 'INV-42\u0001']);
    expectOneLineError(result, 1, /correlationId must not contain control characters/);
    await readDatabase(db, async (tf) => expect((await tf.manager.get(flows.paymentWait.id))!.status).toBe('waiting'));
  });
});

describe.concurrent('taskflow CLI, missing database', () => {
  const commands = (id: string): string[][] => [
    ['list'],
    ['show', id],
    ['events', id],
    ['cancel', id],
    ['resume', id],
    ['signal', id],
    ['deliver', 'payments.received', 'INV-42'],
    ['prune', '--older-than', '30d'],
  ];
  const id = '00000000-0000-4000-8000-000000000000';

  it('every command exits 3 on a missing --db file and creates neither it nor its folder', async () => {
    const folder = temp.make();
    const db = join(folder, 'nested', 'taskflow.db');
    const results = await Promise.all(commands(id).map((args) => taskflowCli(['--db', db, ...args])));
    for (const result of results) expectOneLineError(result, 3, /^taskflow: missing_database: no database at .*nested\/taskflow\.db/);
    expect(existsSync(join(folder, 'nested'))).toBe(false);
  });

  it('a missing TASKFLOW_DB_PATH file exits 3 and is not created', async () => {
    const db = join(temp.make(), 'taskflow.db');
    const result = await taskflowCli(['list', '--json'], { env: { TASKFLOW_DB_PATH: db } });
    expectOneLineError(result, 3, /"error":"missing_database"/);
    expect(existsSync(db)).toBe(false);
  });

  it('the default ./data/taskflow.db is not created either', async () => {
    const cwd = temp.make();
    const result = await taskflowBin(['list'], { cwd });
    expectOneLineError(result, 3, /no database at .*data\/taskflow\.db/);
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('a folder, an empty file or a file that is not a taskflow database exits 3, untouched', async () => {
    const folder = temp.make();
    const dir = join(folder, 'dir.db');
    mkdirSync(dir);
    const empty = join(folder, 'empty.db');
    writeFileSync(empty, '');
    const text = join(folder, 'notes.txt');
    writeFileSync(text, 'hello, not sqlite\n'.repeat(100));
    const [a, b, c] = await Promise.all([taskflowCli(['--db', dir, 'list']), taskflowCli(['--db', empty, 'list']), taskflowCli(['--db', text, 'list'])]);
    expectOneLineError(a, 3, /is not a database file/);
    expectOneLineError(b, 3, /is not a taskflow database/);
    expectOneLineError(c, 3, /is not a taskflow database/);
    expect(existsSync(`${empty}-wal`)).toBe(false);
  });

  it('an empty --db is a usage error', async () => {
    expectOneLineError(await taskflowCli(['--db', '', 'list']), 2, /--db must not be empty/);
  });
});

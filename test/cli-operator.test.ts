import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, openTaskflow, type Flow, type FlowStatus } from '../src/index.js';
import { OWNER_1, TempFolders, readDatabase, seedDatabase, taskflowBin, taskflowCli, type CliResult } from './support/cli-run.js';
import { tempPgDatabase } from './support/pg-database.js';

const run = promisify(execFile);
const temp = new TempFolders();
afterAll(() => temp.removeAll());

function expectUsageError(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(pattern);
}

function json<T>(result: CliResult): T {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

interface Page {
  count: number;
  offset: number;
  hasMore: boolean;
  nextOffset: number | null;
  flows: Array<{ id: string; status: FlowStatus; ownerSessionKey: string }>;
}

/**
 * 13 flows over three owners and five statuses, written at few distinct instants
 * so that many share an `updatedAt` (as flows resumed by one tick do).
 */
async function seedTies(path: string): Promise<void> {
  const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
  const tf = await openTaskflow({ database: path, clock });
  try {
    const m = tf.manager;
    const make = (i: number) => m.createManaged({ controllerId: 'ops/paging', goal: `flow ${i}`, ownerSessionKey: `agent:ops:session:${i % 3}` });
    const flows: Flow[] = [];
    for (let i = 0; i < 13; i++) flows.push(await make(i));
    clock.advance(1000);
    for (const f of flows.slice(0, 10)) await m.startRunning(f.id);
    for (const f of flows.slice(0, 6)) await m.setWaiting(f.id, { kind: 'manual' });
    clock.advance(1000);
    for (const f of flows.slice(0, 2)) await m.cancel(f.id);
    for (const f of flows.slice(6, 8)) await m.finish(f.id);
    await m.fail(flows[8]!.id, 'boom');
  } finally {
    await tf.close();
  }
}

describe.concurrent('taskflow list: paging and one sort order', () => {
  let db: string;
  const cli = (...args: string[]) => taskflowCli(['--db', db, 'list', '--json', ...args]);
  const all = async (...args: string[]) => json<Page>(await cli('--limit', '1000', ...args)).flows.map((f) => f.id);

  beforeAll(async () => {
    db = join(temp.make(), 'taskflow.db');
    await seedTies(db);
  });

  it('--json says whether more follow, and --offset pages reach every flow once', async () => {
    const ids: string[] = [];
    const pages: Page[] = [];
    for (let offset: number | null = 0; offset !== null; ) {
      const page: Page = json<Page>(await cli('--limit', '4', '--offset', String(offset)));
      pages.push(page);
      ids.push(...page.flows.map((f) => f.id));
      offset = page.nextOffset;
    }
    expect(pages.map((p) => [p.offset, p.count, p.hasMore, p.nextOffset])).toEqual([
      [0, 4, true, 4],
      [4, 4, true, 8],
      [8, 4, true, 12],
      [12, 1, false, null],
    ]);
    expect(ids).toEqual(await all());
    expect(new Set(ids).size).toBe(13);
  });

  it('the text output says where the next page starts', async () => {
    const first = await taskflowCli(['--db', db, 'list', '--limit', '5']);
    expect(first.stdout.trimEnd().split('\n').at(-1)).toBe('5 flows; more follow: --offset 5');
    const last = await taskflowCli(['--db', db, 'list', '--limit', '5', '--offset', '10']);
    expect(last.stdout.trimEnd().split('\n').at(-1)).toBe('flows 11 to 13');
    const past = await taskflowCli(['--db', db, 'list', '--offset', '50']);
    expect(past.stdout).toBe('no flows after the first 50\n');
  });

  it('every filter lists in the same order: least recently updated first, ties in status then creation order', async () => {
    const everything = json<Page>(await cli('--limit', '1000')).flows;
    const rank = (s: FlowStatus) => ['created', 'running', 'waiting', 'finished', 'failed', 'cancelled'].indexOf(s);
    const full = await readDatabase(db, async (tf) => Promise.all(everything.map(async (f) => (await tf.manager.get(f.id))!)));
    // Ties are real here: 13 flows share 3 update instants, across statuses.
    expect(new Set(full.map((f) => f.updatedAt.getTime())).size).toBe(3);
    const inOrder = (a: Flow, b: Flow) =>
      a.updatedAt < b.updatedAt ||
      (a.updatedAt.getTime() === b.updatedAt.getTime() && (rank(a.status) < rank(b.status) || (a.status === b.status && a.createdAt <= b.createdAt)));
    for (let i = 1; i < full.length; i++) expect(inOrder(full[i - 1]!, full[i]!), `${i}`).toBe(true);
    const ids = everything.map((f) => f.id);
    for (const status of ['waiting', 'running', 'cancelled', 'created'] as const) {
      expect(await all('--status', status)).toEqual(everything.filter((f) => f.status === status).map((f) => f.id));
    }
    for (const owner of ['agent:ops:session:0', 'agent:ops:session:1']) {
      expect(await all('--owner', owner)).toEqual(everything.filter((f) => f.ownerSessionKey === owner).map((f) => f.id));
      expect(await all('--owner', owner, '--status', 'waiting')).toEqual(
        everything.filter((f) => f.ownerSessionKey === owner && f.status === 'waiting').map((f) => f.id),
      );
    }
    // Paging a filter keeps to the same order.
    const waitingPages = [...json<Page>(await cli('--status', 'waiting', '--limit', '3')).flows, ...json<Page>(await cli('--status', 'waiting', '--limit', '3', '--offset', '3')).flows];
    expect(waitingPages.map((f) => f.id)).toEqual(ids.filter((id) => everything.find((f) => f.id === id)!.status === 'waiting'));
  });

  it('help list documents the order and the paging options', async () => {
    const help = await taskflowCli(['help', 'list']);
    expect(help.stdout).toContain('Order, whatever the filter: least recently updated first');
    expect(help.stdout).toContain('--offset <n>');
    expect(help.stdout).toContain('"hasMore": bool');
  });
});

describe.concurrent('taskflow CLI: small things', () => {
  const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

  it('--version prints the package version, in-process and as the installed bin', async () => {
    const [inProcess, bin] = await Promise.all([taskflowCli(['--version']), taskflowBin(['--version'])]);
    expect(inProcess).toEqual({ code: 0, stdout: `taskflow ${version}\n`, stderr: '' });
    expect(bin).toEqual(inProcess);
  });

  it('a bare taskflow prints the help, exit 0', async () => {
    const [bare, help] = await Promise.all([taskflowCli([]), taskflowCli(['help'])]);
    expect(bare).toEqual({ code: 0, stdout: help.stdout, stderr: '' });
    expect(bare.stdout).toMatch(/^taskflow: operate nexo-taskflow flows/);
  });

  it('every empty argument is the same usage error, exit 2, before any database is opened', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const db = join(temp.make(), 'absent.db');
    const cases: Array<[string[], string]> = [
      [['show', ''], 'show: <id> must not be empty'],
      [['deliver', '', 'INV-1'], 'deliver: <topic> must not be empty'],
      [['deliver', 'payments.received', ' '], 'deliver: <correlation-id> must not be empty'],
      [['list', '--owner', ''], 'list: --owner must not be empty'],
      [['list', '--status', ''], 'list: --status must not be empty'],
      [['list', '--limit', ''], 'list: --limit must not be empty'],
      [['signal', id, '--name', ''], 'signal: --name must not be empty'],
      [['resume', id, '--patch', ''], 'resume: --patch must not be empty'],
      [['deliver', 'a', 'b', '--event-id', ''], 'deliver: --event-id must not be empty'],
      [['prune', '--older-than', ''], 'prune: --older-than must not be empty'],
      [['list', '--db', ''], 'list: --db must not be empty'],
      [['help', ''], 'help: <command> must not be empty'],
    ];
    const results = await Promise.all(cases.map(([args]) => taskflowCli(args.includes('--db') ? args : ['--db', db, ...args])));
    results.forEach((result, i) => expectUsageError(result, new RegExp(`^taskflow: ${cases[i]![1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n$`)));
  });

  it('command-line mistakes are told in the CLI\'s own words', async () => {
    const db = join(temp.make(), 'taskflow.db');
    const { paymentWait } = await seedDatabase(db);
    const [missingValue, flagValue, unknown, shortUnknown, badJson] = await Promise.all([
      taskflowCli(['list', '--status']),
      taskflowCli(['list', '--json=yes']),
      taskflowCli(['list', '--colour']),
      taskflowCli(['list', '-x']),
      taskflowCli(['--db', db, 'resume', paymentWait.id, '--patch', '{"a":']),
    ]);
    expectUsageError(missingValue, /^taskflow: list: --status needs a value \(run `taskflow help list`\)\n$/);
    expectUsageError(flagValue, /^taskflow: list: --json takes no value/);
    expectUsageError(unknown, /^taskflow: list: unknown option --colour/);
    expectUsageError(shortUnknown, /^taskflow: list: unknown option -x/);
    expectUsageError(badJson, /^taskflow: --patch is not valid JSON \(it ends too early\); quote it for the shell/);
    for (const result of [missingValue, flagValue, unknown, shortUnknown, badJson]) expect(result.stderr).not.toMatch(/Option '|ERR_|SyntaxError|Unexpected/);
  });
});

describe.concurrent('taskflow show: steps explained', () => {
  it('shows the step moves of a managed flow, numbered like its timeline, and says what observed steps are', async () => {
    const db = join(temp.make(), 'taskflow.db');
    const flow = await readDatabase(db, async (tf) => {
      const created = await tf.manager.createManaged({ controllerId: 'billing/agent', goal: 'remind Ben', ownerSessionKey: OWNER_1, currentStep: 'await_payment' });
      await tf.manager.startRunning(created.id);
      await tf.manager.updateState(created.id, { reminder_sent_to: 'Ben' }, 'reminder');
      return tf.manager.finish(created.id, { outcome: 'reminder_sent' });
    });
    const text = await taskflowCli(['--db', db, 'show', flow.id]);
    expect(text.stdout).toMatch(/^Step moves \(current_step, as the controller moved it\)\n#\s+AT\s+TO STEP\n3\s+\S+\s+reminder\n/m);
    expect(text.stdout).toMatch(/^Observed steps \(work recorded by a mirrored flow, one row per run\)\nnone recorded\n/m);
    expect(text.stdout).toMatch(/^3\s+\S+\s+state_updated\s+\{"keys":\["reminder_sent_to"\],"currentStep":"reminder"\}$/m);
    const timelineRows = text.stdout.split('Timeline\n')[1]!.split('\n\n')[0]!.trimEnd().split('\n').slice(1).map((line) => line.split(/\s+/)[0]);
    expect(timelineRows).toEqual(['1', '2', '3', '4']);
    const out = json<{ stepMoves: Array<{ row: number; step: string; eventId: number }>; events: Array<{ id: number }> }>(
      await taskflowCli(['--db', db, 'show', flow.id, '--json']),
    );
    expect(out.stepMoves).toEqual([expect.objectContaining({ row: 3, step: 'reminder', eventId: out.events[2]!.id })]);
    const help = await taskflowCli(['help', 'show']);
    expect(help.stdout).toContain('step moves      the flow\'s own step label (current_step)');
  });

  it('a flow that never moved its step says so', async () => {
    const db = join(temp.make(), 'taskflow.db');
    const { running } = await seedDatabase(db);
    const text = await taskflowCli(['--db', db, 'show', running.id]);
    expect(text.stdout).toMatch(/^Step moves .*\nnone: at step init since it was created\n/m);
  });
});

describe('taskflow CLI on a database this user can only read', () => {
  const isRoot = process.getuid?.() === 0;
  /** Runs the bin as another user when root (root reads and writes every file), else as this one. */
  const asReader = (args: string[]) => taskflowBin(args, isRoot ? { user: 'postgres' } : {});
  const readOnly = (folder: string, db: string) => {
    chmodSync(db, 0o444);
    for (const suffix of ['-wal', '-shm']) {
      try {
        chmodSync(db + suffix, 0o444);
      } catch {
        // absent: the database was closed cleanly
      }
    }
    chmodSync(folder, 0o555);
  };

  it('reads it (list, show, events) and refuses changes with exit 3, saying it is read-only', async () => {
    const folder = temp.make();
    const db = join(folder, 'taskflow.db');
    const flows = await seedDatabase(db);
    readOnly(folder, db);
    const before = readFileSync(db);
    const [list, show, events, cancel] = await Promise.all([
      asReader(['--db', db, 'list', '--json']),
      asReader(['--db', db, 'show', flows.paymentWait.id]),
      asReader(['--db', db, 'events', flows.paymentWait.id, '--json']),
      asReader(['--db', db, 'cancel', flows.paymentWait.id]),
    ]);
    expect(json<Page>(list).count).toBe(5);
    expect(show.stdout).toMatch(/^status:\s+waiting$/m);
    expect(json<{ count: number }>(events).count).toBe(flows.paymentWait.revision + 1);
    expect(cancel.code).toBe(3);
    expect(cancel.stderr).toMatch(/^taskflow: storage: cancel: .*taskflow\.db is read-only for this user; list, show and events still work\n$/);
    expect(readFileSync(db).equals(before)).toBe(true);
    expect(readdirSync(folder)).toEqual(['taskflow.db']);
  });

  it('reads it while the application has it open and writing (WAL files present)', async () => {
    const folder = temp.make();
    const db = join(folder, 'taskflow.db');
    await seedDatabase(db);
    const app = await openTaskflow({ database: db });
    try {
      const late = await app.manager.createManaged({ controllerId: 'kate/shop', goal: 'written by the running app', ownerSessionKey: OWNER_1 });
      readOnly(folder, db);
      const list = json<Page>(await asReader(['--db', db, 'list', '--json']));
      expect(list.count).toBe(6);
      expect(list.flows.map((f) => f.id)).toContain(late.id);
    } finally {
      chmodSync(folder, 0o755);
      await app.close();
    }
  });
});

describe('taskflow CLI on PostgreSQL', () => {
  async function tables(url: string): Promise<string[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
      );
      return rows.map((r) => r.name);
    } finally {
      await client.end();
    }
  }

  it('never creates tables: on an empty database every command exits 3 and the database stays empty', async () => {
    const url = await tempPgDatabase();
    const id = '00000000-0000-4000-8000-000000000000';
    const results = await Promise.all([['list'], ['show', id], ['deliver', 'payments.received', 'INV-1'], ['prune', '--older-than', '0']].map((args) => taskflowCli(['--db', url, ...args])));
    for (const result of results) {
      expect(result.code).toBe(3);
      expect(result.stderr).toBe('taskflow: storage: this PostgreSQL database is not a taskflow database (it has no taskflow tables)\n');
    }
    expect(await tables(url)).toEqual([]);
  });

  it('works on a database the application created, and adds nothing to it', async () => {
    const url = await tempPgDatabase();
    const app = await openTaskflow({ database: url });
    const flow = await app.manager.createManaged({ controllerId: 'ops/pg', goal: 'visible to the CLI', ownerSessionKey: OWNER_1 });
    await app.close();
    const before = await tables(url);
    const list = json<Page>(await taskflowCli(['--db', url, 'list', '--json']));
    expect(list.flows.map((f) => f.id)).toEqual([flow.id]);
    expect(json<{ outcome: string }>(await taskflowCli(['--db', url, 'cancel', flow.id, '--json'])).outcome).toBe('cancelled');
    expect(await tables(url)).toEqual(before);
  });
});

describe('without the optional pg package', () => {
  /** An app folder with this package installed (dist/ copied) and every dependency but `pg`. */
  function appWithoutPg(): string {
    const app = temp.make();
    const modules = join(app, 'node_modules');
    const pkg = join(modules, 'nexo-taskflow');
    mkdirSync(pkg, { recursive: true });
    cpSync('dist', join(pkg, 'dist'), { recursive: true });
    cpSync('drizzle', join(pkg, 'drizzle'), { recursive: true });
    cpSync('package.json', join(pkg, 'package.json'));
    for (const entry of readdirSync('node_modules')) {
      if (entry === 'pg' || entry === '.bin' || entry === 'nexo-taskflow') continue;
      symlinkSync(resolve('node_modules', entry), join(modules, entry));
    }
    return app;
  }
  const url = 'postgres://postgres@127.0.0.1:5432/postgres';

  it('the library and the CLI both say: npm install pg', async () => {
    const app = appWithoutPg();
    writeFileSync(
      join(app, 'open.mjs'),
      `import { openTaskflow } from 'nexo-taskflow';\n` +
        `try { await openTaskflow({ database: ${JSON.stringify(url)} }); console.log('opened'); }\n` +
        `catch (error) { console.log(error.name, error.code, error.message); }\n`,
    );
    const library = await run(process.execPath, ['open.mjs'], { cwd: app, encoding: 'utf8', timeout: 120_000 });
    expect(library.stdout).toBe('FlowError missing_dependency a postgres:// database needs the pg package, an optional peer dependency: npm install pg\n');
    const cli = await taskflowBin(['list', '--db', url], { bin: join(app, 'node_modules/nexo-taskflow/dist/cli/main.js'), cwd: app });
    expect(cli).toEqual({
      code: 3,
      stdout: '',
      stderr: 'taskflow: missing_dependency: a postgres:// database needs the pg package, an optional peer dependency: npm install pg\n',
    });
  });
});

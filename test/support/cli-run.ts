import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../../src/cli/run.js';
import { openTaskflow, type Flow } from '../../src/index.js';

const run = promisify(execFile);

/** The built CLI, as `npm install` links it. */
export const CLI_BIN = resolve('dist/cli/main.js');

/** What one CLI run printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a CLI run sees: the test's, without `TASKFLOW_DB_PATH`, plus `env`. */
function cliEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const { TASKFLOW_DB_PATH: _ignored, ...inherited } = process.env;
  return { ...inherited, ...env };
}

/**
 * Runs one `taskflow ...args` command line in this process, through the same
 * `runCli` that `dist/cli/main.js` calls: same parsing, output and exit code, no
 * process to spawn (so a busy machine does not make tests time out). Only
 * `--db`, or `TASKFLOW_DB_PATH` in `env`, picks the database. Tests that need
 * what only a process has (a working directory, a user, an installed package)
 * use {@link taskflowBin}.
 */
export async function taskflowCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (text) => void (stdout += text) },
    stderr: { write: (text) => void (stderr += text) },
    env: cliEnv(options.env),
  });
  return { code, stdout, stderr };
}

/** Options of {@link taskflowBin}. */
export interface BinOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The script to run instead of this package's `dist/cli/main.js` (an installed copy). */
  bin?: string;
  /** Runs the command as this user (`runuser -u <user>`); the test process must be root. */
  user?: string;
}

/** Runs `node dist/cli/main.js ...args` as its own process, as a user's shell does. */
export async function taskflowBin(args: readonly string[], options: BinOptions = {}): Promise<CliResult> {
  const command = [process.execPath, options.bin ?? CLI_BIN, ...args];
  const [file, ...argv] = options.user === undefined ? command : ['runuser', '-u', options.user, '--', ...command];
  try {
    const { stdout, stderr } = await run(file!, argv, {
      env: cliEnv(options.env),
      cwd: options.cwd ?? process.cwd(),
      encoding: 'utf8',
      // Starting Node and loading the runtime takes well under a second on an idle
      // machine; generous, so that a busy one does not fail the test.
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/**
 * Temp folders that outlive single tests (the CLI suites run tests concurrently,
 * so a per-test `afterEach` cleanup would pull folders from under running tests).
 */
export class TempFolders {
  private readonly folders: string[] = [];

  /** A fresh empty folder. */
  make(): string {
    const folder = mkdtempSync(join(tmpdir(), 'taskflow-cli-'));
    this.folders.push(folder);
    return folder;
  }

  removeAll(): void {
    for (const folder of this.folders.splice(0)) rmSync(folder, { recursive: true, force: true });
  }
}

/** The flows of {@link seedDatabase}, one per situation an operator meets. */
export interface SeededFlows {
  /** Waiting on `payments.received` / `INV-42`, owner `agent:kate:session:1`. */
  paymentWait: Flow;
  /** Waiting on the manual signal `approve`, with one step recorded, owner `agent:kate:session:2`. */
  approvalWait: Flow;
  /** Running, owner `agent:kate:session:1`. */
  running: Flow;
  /** Created, never started, owner `agent:kate:session:2`. */
  created: Flow;
  /** Finished, owner `agent:kate:session:1`. */
  finished: Flow;
}

export const OWNER_1 = 'agent:kate:session:1';
export const OWNER_2 = 'agent:kate:session:2';

/** Creates a taskflow database at `path` through the runtime API, with one flow of each kind; closes it. */
export async function seedDatabase(path: string): Promise<SeededFlows> {
  const tf = await openTaskflow({ database: path });
  try {
    const m = tf.manager;
    const base = { controllerId: 'kate/shop' };
    const paymentWait = await m.createManaged({ ...base, goal: 'ship order 42 once INV-42 is paid', ownerSessionKey: OWNER_1, state: { invoice: 'INV-42' } });
    await m.startRunning(paymentWait.id);
    await m.setWaiting(paymentWait.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' });

    const approvalWait = await m.createMirrored({ ...base, goal: 'send the refund once approved', ownerSessionKey: OWNER_2 });
    await m.recordStepObservation({ flowId: approvalWait.id, runId: 'run-1', task: 'draft refund email', status: 'succeeded', result: { draft: 'ok' } });
    await m.setWaiting(approvalWait.id, { kind: 'manual', signal: 'approve' });

    const running = await m.createManaged({ ...base, goal: 'triage the inbox', ownerSessionKey: OWNER_1 });
    await m.startRunning(running.id);

    const created = await m.createManaged({ ...base, goal: 'plan the week', ownerSessionKey: OWNER_2 });

    const finished = await m.createManaged({ ...base, goal: 'say hello', ownerSessionKey: OWNER_1 });
    await m.startRunning(finished.id);
    await m.finish(finished.id, { said: 'hello' });

    const reread = async (id: string): Promise<Flow> => (await m.get(id))!;
    return {
      paymentWait: await reread(paymentWait.id),
      approvalWait: await reread(approvalWait.id),
      running: await reread(running.id),
      created: await reread(created.id),
      finished: await reread(finished.id),
    };
  } finally {
    await tf.close();
  }
}

/** Opens the database at `path`, runs `read`, and closes it again. */
export async function readDatabase<T>(path: string, read: (tf: Awaited<ReturnType<typeof openTaskflow>>) => Promise<T>): Promise<T> {
  const tf = await openTaskflow({ database: path });
  try {
    return await read(tf);
  } finally {
    await tf.close();
  }
}

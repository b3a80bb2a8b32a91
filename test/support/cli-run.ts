import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
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

/**
 * Runs `node dist/cli/main.js ...args`. `TASKFLOW_DB_PATH` is removed from the
 * inherited environment so that only `env` (or `--db`) picks the database.
 */
export async function taskflowCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  const { TASKFLOW_DB_PATH: _ignored, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI_BIN, ...args], {
      env: { ...inherited, ...options.env },
      cwd: options.cwd ?? process.cwd(),
      encoding: 'utf8',
      timeout: 20_000,
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

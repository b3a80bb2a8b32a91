import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdtempSync, openSync, closeSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FlowError } from '../runtime/errors.js';
import { openPostgres } from '../runtime/store/postgres/loader.js';
import { openSqliteStore } from '../runtime/store/sqlite/open.js';
import type { FlowStore } from '../runtime/store/contract.js';
import { defaultDatabasePath, isPostgresUrl, openTaskflow, type Taskflow, type TaskflowOptions } from '../runtime/taskflow.js';
import { emptyArgument } from './args.js';
import { CliError, EXIT } from './errors.js';

/** Where the database comes from: `--db`, else `TASKFLOW_DB_PATH`, else `./data/taskflow.db`. */
export function chooseDatabase(option: string | undefined, env: NodeJS.ProcessEnv): string {
  if (option !== undefined) {
    if (option.trim() === '') throw emptyArgument('taskflow', '--db');
    return option;
  }
  return defaultDatabasePath(env);
}

function missing(message: string): CliError {
  return new CliError('missing_database', message, EXIT.storage);
}

/** A database the CLI opened, and how. */
export interface OpenedDatabase {
  tf: Taskflow;
  /** True when this user may only read the database: commands that change flows are refused. */
  readonly: boolean;
  /** Where it is, for messages: the absolute file path, or the URL without its password. */
  where: string;
}

/**
 * Opens the runtime over an existing database for one command, writing nothing
 * on open: the CLI never creates a database, a table or a folder, and never
 * migrates one (that is the application's job). A SQLite file this user can
 * only read opens read-only. The engine is not started: the CLI arms no timers
 * and runs no `onResume`; resumes it causes are queued as notifications for the
 * application's own running engine.
 */
export async function openExisting(database: string, options: Partial<TaskflowOptions> = {}): Promise<OpenedDatabase> {
  if (isPostgresUrl(database)) {
    const store = await openPostgres({ connectionString: database, migrate: false, maxConnections: 2 });
    return { tf: await openTaskflow({ ...options, store }), readonly: false, where: redact(database) };
  }
  const path = resolve(database);
  assertDatabaseFile(path);
  const writable = canWrite(path);
  const { store, dispose } = writable ? { store: openSqlite(path, false), dispose: undefined } : openReadOnly(path);
  const tf = await openTaskflow({ ...options, store });
  if (dispose) {
    const close = tf.close.bind(tf);
    return { tf: { ...tf, close: async () => void (await close(), dispose()) }, readonly: true, where: path };
  }
  return { tf, readonly: !writable, where: path };
}

/** Refuses, with exit 3, a path that is not an existing regular file: an operator's typo must not leave a database behind. */
function assertDatabaseFile(path: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw missing(`no database at ${path} (give --db <path> or set TASKFLOW_DB_PATH)`);
  }
  if (!isFile) throw missing(`${path} is not a database file`);
}

function canWrite(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Opens with `migrate: false`; a file that is not a taskflow database (or not SQLite) is `missing_database`. */
function openSqlite(path: string, readonly: boolean): FlowStore {
  try {
    return openSqliteStore({ path, migrate: false, readonly });
  } catch (error) {
    if (FlowError.isInstance(error) && /not a taskflow database|older taskflow schema/.test(error.message)) throw missing(error.message);
    const cause = (FlowError.isInstance(error) ? error.cause : error) as { code?: unknown; message?: unknown } | undefined;
    if (cause?.code === 'SQLITE_NOTADB') throw missing(`${path} is not a taskflow database: ${String(cause.message)}`);
    throw error;
  }
}

/**
 * A file this user may only read. SQLite reads a WAL database through its `-shm`
 * file, which it must be able to create when it is absent; in a folder this user
 * cannot write, and with no `-wal` left (no writer has pending changes), the CLI
 * reads a private copy of the file instead, removed on close.
 */
function openReadOnly(path: string): { store: FlowStore; dispose: (() => void) | undefined } {
  try {
    return { store: openSqlite(path, true), dispose: undefined };
  } catch (error) {
    const code = ((FlowError.isInstance(error) ? error.cause : error) as { code?: unknown } | undefined)?.code;
    const cannotShareWal = code === 'SQLITE_READONLY_DIRECTORY' || code === 'SQLITE_CANTOPEN';
    if (!cannotShareWal || existsSync(`${path}-wal`)) throw error;
  }
  const folder = mkdtempSync(join(tmpdir(), 'taskflow-cli-'));
  const dispose = () => rmSync(folder, { recursive: true, force: true });
  try {
    const copy = join(folder, 'snapshot.db');
    copyFileSync(path, copy);
    chmodSync(copy, 0o600);
    // Bytes 18 and 19 of the header say "WAL" (2); a copy read without its -shm reads as a rollback-journal file (1).
    const fd = openSync(copy, 'r+');
    try {
      writeSync(fd, Buffer.from([1, 1]), 0, 2, 18);
    } finally {
      closeSync(fd);
    }
    return { store: openSqlite(copy, true), dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the PostgreSQL database';
  }
}

import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { defaultDatabasePath, isPostgresUrl, openTaskflow, type Taskflow, type TaskflowOptions } from '../runtime/taskflow.js';
import { CliError, EXIT } from './errors.js';

/** Where the database comes from: `--db`, else `TASKFLOW_DB_PATH`, else `./data/taskflow.db`. */
export function chooseDatabase(option: string | undefined, env: NodeJS.ProcessEnv): string {
  if (option !== undefined) {
    if (option.trim() === '') throw new CliError('usage', '--db needs a path or a postgres:// URL', EXIT.usage);
    return option;
  }
  return defaultDatabasePath(env);
}

function missing(message: string): CliError {
  return new CliError('missing_database', message, EXIT.storage);
}

/**
 * Refuses, with exit 3, a SQLite database that is not already a taskflow one:
 * the runtime's store creates and migrates whatever file it is given, and an
 * operator's typo must not leave an empty database behind. The file must exist,
 * be a regular file, and hold the `flows` table; it is probed read-only.
 */
export function assertExistingDatabase(path: string): void {
  const absolute = resolve(path);
  let isFile: boolean;
  try {
    isFile = statSync(absolute).isFile();
  } catch {
    throw missing(`no database at ${absolute} (give --db <path> or set TASKFLOW_DB_PATH)`);
  }
  if (!isFile) throw missing(`${absolute} is not a database file`);
  let probe: Database.Database | undefined;
  try {
    probe = new Database(absolute, { readonly: true, fileMustExist: true });
    const table = probe.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'flows'").get();
    if (table === undefined) throw missing(`${absolute} is not a taskflow database (it has no flows table)`);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw missing(`${absolute} is not a taskflow database: ${(error as Error).message}`);
  } finally {
    probe?.close();
  }
}

/**
 * Opens the runtime over an existing database for one command. The engine is not
 * started: the CLI arms no timers and runs no `onResume`; resumes it causes are
 * queued as notifications for the application's own running engine.
 * A `postgres://` URL is passed through as is.
 */
export async function openExisting(database: string, options: Partial<TaskflowOptions> = {}): Promise<Taskflow> {
  if (isPostgresUrl(database)) return openTaskflow({ ...options, database });
  assertExistingDatabase(database);
  return openTaskflow({ ...options, database: resolve(database) });
}

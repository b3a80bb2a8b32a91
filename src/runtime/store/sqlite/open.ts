import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { FlowError } from '../../errors.js';
import { connect, type ConnectionSettings } from './connection.js';
import { storageError } from './errors.js';
import type { SqliteStoreOptions } from './options.js';
import { SqliteFlowStore } from './store.js';

const DEFAULT_BUSY_TIMEOUT = 5000;

/**
 * Opens (creating and migrating as needed) a SQLite database as a {@link FlowStore}.
 * Throws `FlowError('storage')` naming the file and what to do when it cannot be
 * opened: a damaged or foreign file, a read-only folder, a full disk.
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteFlowStore {
  const requested = options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT;
  if (typeof requested !== 'number' || !Number.isFinite(requested) || requested < 0) {
    throw new FlowError('invalid_input', `busyTimeout must be a number of milliseconds, 0 or more; got ${String(options.busyTimeout)}`);
  }
  const busyTimeout = Math.min(Math.ceil(requested), 2 ** 31 - 1);
  const readonly = options.readonly === true;
  const passive = readonly || options.migrate === false;
  const synchronous = options.synchronous ?? 'full';
  const settings: ConnectionSettings = {
    path: options.path,
    synchronous,
    busyTimeout,
    passive,
    readonly,
    groupCommit: options.groupCommit !== false,
    // Off the main thread (the worker store's own thread) an fsync in COMMIT stalls no one.
    fsyncOffThread: synchronous === 'full' && isMainThread && !passive && options.path !== ':memory:',
  };
  if (options.path !== ':memory:' && !passive) {
    try {
      mkdirSync(dirname(options.path), { recursive: true });
    } catch (error) {
      throw new FlowError(
        'storage',
        `cannot create the folder of ${options.path} (${(error as Error).message}); create it, or point TASKFLOW_DB_PATH (the \`database\` option) at another file.`,
        { cause: error },
      );
    }
  }
  try {
    return new SqliteFlowStore(connect(settings, { migrate: !passive }), settings);
  } catch (error) {
    throw storageError(error, options.path);
  }
}

import type { SqliteStoreOptions } from './options.js';
import { openSqliteStore as openStore } from './open.js';
import { openSqliteWorkerStore as openWorkerStore } from './worker/store.js';
import type { FlowStore } from '../contract.js';

/**
 * Opens (creating and migrating as needed) a SQLite database as a {@link FlowStore},
 * for `openTaskflow({ store })` or direct use. The connection stays private: the
 * store is the public contract, whatever the dialect.
 */
export function openSqliteStore(options: SqliteStoreOptions): FlowStore {
  return openStore(options);
}

/**
 * Opens a SQLite database as a {@link FlowStore} whose connection lives in a worker
 * thread (what `openTaskflow` does by default): no statement, fsync or lock wait
 * runs on the calling thread's event loop, and commits made together share one
 * transaction (group commit). The file is opened, migrated and checked on the
 * calling thread first, with the same errors as {@link openSqliteStore}, and that
 * connection answers calls until the thread is up.
 */
export async function openSqliteWorkerStore(options: SqliteStoreOptions): Promise<FlowStore> {
  return openWorkerStore(options);
}

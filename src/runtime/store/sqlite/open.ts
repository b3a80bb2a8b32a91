import type { SqliteStoreOptions } from './options.js';
import { openSqliteStore as openStore } from './store.js';
import type { FlowStore } from '../contract.js';

/**
 * Opens (creating and migrating as needed) a SQLite database as a {@link FlowStore},
 * for `openTaskflow({ store })` or direct use. The connection stays private: the
 * store is the public contract, whatever the dialect.
 */
export function openSqliteStore(options: SqliteStoreOptions): FlowStore {
  return openStore(options);
}

import type { SqliteStoreOptions } from './sqlite-options.js';
import { openSqliteStore as openStore } from './sqlite-store.js';
import type { FlowStore } from './store.js';

/**
 * Opens (creating and migrating as needed) a SQLite database as a {@link FlowStore},
 * for `openTaskflow({ store })` or direct use. The connection stays private: the
 * store is the public contract, whatever the dialect.
 */
export function openSqliteStore(options: SqliteStoreOptions): FlowStore {
  return openStore(options);
}

import type { FlowStore } from '../../src/index.js';
import { SqliteFlowStore } from '../../src/runtime/store/sqlite/store.js';
import { SqliteWorkerStore } from '../../src/runtime/store/sqlite/worker/store.js';

/**
 * A PRAGMA on the connection of a SQLite store, whichever thread it lives on (the
 * worker thread by default, the main thread with `sqlite: { thread: 'main' }`).
 */
export async function sqlitePragma(store: FlowStore, source: string): Promise<unknown> {
  if (store instanceof SqliteWorkerStore) return store.pragma(source, { simple: true });
  if (store instanceof SqliteFlowStore) return store.sqlite.pragma(source, { simple: true });
  throw new Error(`not a SQLite store: ${store.dialect}`);
}

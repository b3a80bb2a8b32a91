/** Options of `openSqliteStore`. (Kept apart from the store so the public declarations need no SQLite driver types.) */
export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. The folder is created when missing. */
  path: string;
  /** `full` (default) survives power loss; `normal` is faster and survives a process crash. */
  synchronous?: 'full' | 'normal';
  /**
   * How long a call waits for a lock another process holds, in ms, before it fails
   * with `storage` ("database is locked by another process"). The wait is
   * asynchronous: the event loop keeps running meanwhile. Default 5000.
   * (Only opening a file that another process is creating or migrating waits synchronously.)
   */
  busyTimeout?: number;
  /**
   * Apply pending migrations on open (default true). With `false` the store writes
   * nothing on open (no folder, no file, no WAL switch): the file must exist and
   * already hold this version's schema, else `storage` (the operator CLI opens so).
   */
  migrate?: boolean;
  /**
   * Group commit (default true): commits asked for in the same turn of the event
   * loop share one transaction and its fsync, each in a savepoint of its own, so a
   * refused one fails alone. `false` gives every call a transaction of its own, as
   * before group commit (the benchmarks' baseline).
   */
  groupCommit?: boolean;
  /** Open the file read-only (implies `migrate: false`): reads work, every write fails with `storage`. */
  readonly?: boolean;
}

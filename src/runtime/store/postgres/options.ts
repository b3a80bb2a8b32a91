import type pg from 'pg';

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** A `postgres://` URL; ignored when `pool` is given. Default `DATABASE_URL`. */
  connectionString?: string;
  /**
   * A pool you manage; the store does not end it on close. Give it an `'error'`
   * listener: an idle connection the server drops is reported there, and pg
   * turns an unheard one into an uncaught exception.
   */
  pool?: pg.Pool;
  /** Connections in the store's own pool. Default 10. */
  maxConnections?: number;
  /**
   * The longest a store call (one query, or one whole transaction) waits for the
   * server, in ms. Past it the connection is dropped and the call fails with
   * `storage`, so a hung server or a silent network cannot hold a caller, nor
   * `close()`, forever. Default 30000.
   */
  queryTimeout?: number;
  /** The longest a call waits for a connection (a new one, or a free one in the pool), in ms. Default 10000. */
  connectTimeout?: number;
  /**
   * Apply pending migrations on open (default true). With `false` the store writes
   * nothing on open: it checks that the database already holds this version's
   * schema and refuses (`storage`) one that does not (the operator CLI opens so).
   */
  migrate?: boolean;
}

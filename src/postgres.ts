/**
 * `nexo-taskflow/postgres`: the PostgreSQL store, for hosts that build the store
 * themselves (`openTaskflow({ store })`). `openTaskflow({ database: 'postgres://…' })`
 * needs nothing from here. Needs the optional peer `pg`.
 */
import type { FlowStore } from './runtime/store/contract.js';
import { openPostgresStore as openStore } from './runtime/store/postgres/open.js';
import type { PostgresStoreOptions as StoreOptions } from './runtime/store/postgres/options.js';

/**
 * The part of a `pg.Pool` the store uses. Any `pg.Pool` fits; it is spelled out here
 * so these declarations need neither `pg`'s nor its type package's declarations.
 */
export interface PgPool {
  connect(): Promise<unknown>;
  query(...args: never[]): unknown;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** A `postgres://` URL; ignored when `pool` is given. Default `DATABASE_URL`. */
  connectionString?: string;
  /**
   * A `pg.Pool` you manage; the store does not end it on close. Give it an `'error'`
   * listener: an idle connection the server drops is reported there, and pg
   * turns an unheard one into an uncaught exception.
   */
  pool?: PgPool;
  /** Connections in the store's own pool. Default 10. */
  maxConnections?: number;
  /**
   * The longest a store call (one query, or one whole transaction) waits for the
   * server, in ms; past it the call fails with `storage`, so a hung server cannot
   * hold a caller, nor `close()`, forever. Default 30000.
   */
  queryTimeout?: number;
  /** The longest a call waits for a connection, in ms. Default 10000. */
  connectTimeout?: number;
  /**
   * Apply pending migrations on open (default true). With `false` nothing is
   * written on open: a database without this version's schema is refused (`storage`).
   */
  migrate?: boolean;
}

// Both option types must name the same options: this line stops compiling when they part.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
const sameOptions: SameKeys<PostgresStoreOptions, StoreOptions> = true;
void sameOptions;

/** Opens (and migrates) a PostgreSQL database as a {@link FlowStore}. Many processes may share it. */
export function openPostgresStore(options: PostgresStoreOptions = {}): Promise<FlowStore> {
  return openStore(options as StoreOptions);
}

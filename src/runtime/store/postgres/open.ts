import pg from 'pg';
import { FlowError } from '../../errors.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_QUERY_TIMEOUT_MS, KEEPALIVE_DELAY_MS } from './connection.js';
import type { PostgresStoreOptions } from './options.js';
import { PostgresFlowStore } from './store.js';

/** Opens (and migrates) a PostgreSQL database as a {@link FlowStore}. Many processes may share it. */
export async function openPostgresStore(options: PostgresStoreOptions = {}): Promise<PostgresFlowStore> {
  const ownPool = options.pool === undefined;
  const connectTimeout = positive(options.connectTimeout, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeout');
  const queryTimeout = positive(options.queryTimeout, DEFAULT_QUERY_TIMEOUT_MS, 'queryTimeout');
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.connectionString ?? process.env.DATABASE_URL,
      max: options.maxConnections ?? 10,
      // The limit on opening a connection goes to each new connection, not to the pool
      // (whose option would start a timer on every checkout); the wait for a free one is the store's.
      Client: clientsTimingOutAfter(connectTimeout),
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    });
  // An idle connection that the server closes is replaced on next use; without a
  // listener, pg would turn that into an uncaught exception.
  if (ownPool) pool.on('error', () => undefined);
  const store = new PostgresFlowStore(pool, ownPool, { queryTimeout, connectTimeout });
  try {
    if (options.migrate === false) await store.assertMigrated();
    else await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}

/** A `pg.Client` class whose connections give up opening after `ms`. */
function clientsTimingOutAfter(ms: number): new () => pg.Client {
  return class extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(typeof config === 'string' ? { connectionString: config, connectionTimeoutMillis: ms } : { ...config, connectionTimeoutMillis: ms });
    }
  };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new FlowError('invalid_input', `${name} must be a positive number of milliseconds`);
  }
  return value;
}

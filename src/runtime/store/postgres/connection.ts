import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { FlowError } from '../../errors.js';
import { COMMITS_CHANNEL, PgCommitWatch } from './commit-watch.js';
import { describeServer, errorCode, pgStorageError, type FailureContext } from './errors.js';

export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Migrations and pruning may rightly take long: their own, wider limit (a hung server still cannot hold them forever). */
export const MAINTENANCE_TIMEOUT_MS = 10 * 60_000;
/** How often the time limits of calls in flight are checked (at most; a quarter of the shortest limit when smaller). */
const WATCHDOG_MS = 250;
/** How long `close()` lets calls in flight finish before it cuts their connections. */
const CLOSE_GRACE_MS = 5_000;
/** How long `close()` lets idle connections say goodbye before it closes their sockets. */
const END_GRACE_MS = 1_000;
/** TCP keepalive probes start after this much silence: a peer gone without a word is noticed in about a minute, not hours. */
export const KEEPALIVE_DELAY_MS = 10_000;

export type Db = NodePgDatabase<Record<string, never>>;
/** Queries of one checked-out connection (inside or outside a transaction). */
export type Tx = Db;

/** Timeouts of a {@link PostgresFlowStore}, in ms. */
export interface PostgresStoreTimeouts {
  queryTimeout: number;
  connectTimeout: number;
}

/** How one call runs: its time limit (default `queryTimeout`), and whether its `COMMIT` is on the wire. */
export interface CallContext {
  timeout?: number;
  committing?: boolean;
}

/** A connection checked out for one call. */
interface Lease {
  client: pg.PoolClient;
  /** An error the connection reported (the server went away): it goes back to the pool to be discarded. */
  broken: unknown;
  timedOut: boolean;
  /** `close()` cut the connection while the call was still waiting on the server. */
  cut: boolean;
}

/**
 * The PostgreSQL store's connections and their lifecycle: the pool (and, when the
 * store made it, every connection of it), one checked-out connection per call
 * with its error listener and time limit (one watchdog timer for all), the
 * `LISTEN` connection of the commit watch, and the close.
 *
 * States: open (calls check out connections) → closed (calls fail with
 * `storage`; those in flight get {@link CLOSE_GRACE_MS}, then their connections
 * are cut, and an own pool is ended).
 */
export class PgConnection {
  /** Drizzle over the pool, for queries of your own; the store's calls do not go through it. */
  readonly db: Db;
  closed = false;
  /** Told apart from other stores' notifications: this store's own commits are not reported to its watchers. */
  readonly id = randomUUID();
  readonly server: string;
  readonly timeouts: PostgresStoreTimeouts;
  private readonly leases = new Set<Lease>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly drizzles = new WeakMap<pg.PoolClient, Db>();
  /** Every connection of the store's own pool, so none outlives `close()`. */
  private readonly connections = new Set<pg.Client>();
  private readonly closing: Promise<never>;
  private abortCalls: (reason: unknown) => void = () => undefined;
  private watch: PgCommitWatch | undefined;
  /** Time limits of the calls in flight, checked by one interval timer (no timer per call). */
  private readonly deadlines = new Set<{ at: number; expire(): void }>();
  private watchdog: NodeJS.Timeout | undefined;

  constructor(
    readonly pool: pg.Pool,
    readonly ownPool: boolean,
    timeouts: Partial<PostgresStoreTimeouts> = {},
  ) {
    this.db = drizzle(pool);
    this.server = describeServer(pool.options);
    this.timeouts = {
      queryTimeout: timeouts.queryTimeout ?? DEFAULT_QUERY_TIMEOUT_MS,
      connectTimeout: timeouts.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
    };
    this.closing = new Promise<never>((_, reject) => {
      this.abortCalls = reject;
    });
    this.closing.catch(() => undefined);
    if (ownPool) {
      pool.on('connect', (client) => {
        this.connections.add(client);
        // Whatever path a connection takes (checked out, idle, being removed), a server
        // that goes away is never an uncaught error; the call using it hears of it anyway.
        client.on('error', () => undefined);
      });
      pool.on('remove', (client) => void this.connections.delete(client));
    }
  }

  /** `NOTIFY`, sent at COMMIT and only if it commits: other stores' watchers hear that there is work. */
  async announce(tx: Tx): Promise<void> {
    await tx.execute(sql`SELECT pg_notify(${COMMITS_CHANNEL}, ${this.id})`);
  }

  /**
   * `LISTEN`s on one dedicated connection while anyone watches; another store's
   * commit that makes a flow wait for a time or queues a notification for any
   * engine calls `listener` as soon as it commits. The connection comes back by
   * itself (with backoff) after the server restarts, and the listener is then
   * called once, as it is when the connection first listens: commits made while
   * nobody listened were not heard.
   */
  watchForeignCommits(listener: () => void): () => void {
    if (this.closed) return () => undefined;
    this.watch ??= new PgCommitWatch(
      {
        ...this.pool.options,
        connectionTimeoutMillis: this.timeouts.connectTimeout,
        // Only LISTEN is ever sent on it: a server that does not answer that is given up, and tried again.
        query_timeout: this.timeouts.connectTimeout,
        keepAlive: true,
        keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      },
      this.id,
    );
    return this.watch.subscribe(listener);
  }

  /**
   * Closes the store within a bounded time whatever the server does: calls in
   * flight get a few seconds to finish, then their connections are cut (they
   * fail with `storage`); the pool (when the store made it) is ended.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watch?.close();
    this.abortCalls(new FlowError('storage', `the store was closed while the call waited for a connection to PostgreSQL at ${this.server}`));
    if (this.inFlight.size > 0) await settledWithin([...this.inFlight], CLOSE_GRACE_MS);
    for (const lease of this.leases) {
      lease.cut = true;
      destroySocket(lease.client);
    }
    await Promise.allSettled([...this.inFlight]);
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    if (!this.ownPool) return;
    await settledWithin([this.pool.end(), this.allConnectionsEnded()], END_GRACE_MS);
    // Connections to a server that does not answer cannot end politely: close their sockets.
    for (const client of this.connections) destroySocket(client);
    this.connections.clear();
  }

  private allConnectionsEnded(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.connections.size > 0) return;
        this.pool.off('remove', check);
        resolve();
      };
      this.pool.on('remove', check);
      check();
    });
  }

  assertOpen(): void {
    if (this.closed) throw new FlowError('storage', 'the store is closed');
  }

  /**
   * Runs `work` on a connection of its own: checked out with a time limit,
   * listened to for errors, cut after `queryTimeout`, and given back (or
   * discarded when it broke). What fails is a `FlowError('storage')`.
   */
  async run<T>(operation: string, work: (db: Db, client: pg.PoolClient) => Promise<T>, context: CallContext = {}): Promise<T> {
    this.assertOpen();
    const call = this.runOnConnection(operation, work, context);
    this.inFlight.add(call);
    try {
      return await call;
    } finally {
      this.inFlight.delete(call);
    }
  }

  private async runOnConnection<T>(operation: string, work: (db: Db, client: pg.PoolClient) => Promise<T>, context: CallContext): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.checkout();
    } catch (error) {
      if (FlowError.isInstance(error)) throw error;
      throw pgStorageError(operation, error, this.server);
    }
    const lease: Lease = { client, broken: undefined, timedOut: false, cut: false };
    const onError = (error: unknown): void => {
      lease.broken ??= error;
    };
    client.on('error', onError);
    this.leases.add(lease);
    const limit = context.timeout ?? this.timeouts.queryTimeout;
    const cancelDeadline = this.deadline(limit, () => {
      lease.timedOut = true;
      destroySocket(client);
    });
    try {
      let db = this.drizzles.get(client);
      if (!db) this.drizzles.set(client, (db = drizzle(client)));
      return await work(db, client);
    } catch (error) {
      if (FlowError.isInstance(error)) throw error;
      // COMMIT refused by the server did not commit; COMMIT whose answer never came may have.
      const unanswered = lease.broken !== undefined || lease.timedOut || lease.cut;
      if (lease.cut) {
        const outcome = context.committing ? '; whether it committed is unknown' : '';
        throw new FlowError('storage', `the store was closed while the call waited on PostgreSQL at ${this.server}${outcome} [${operation}]`, { cause: error });
      }
      const failure: FailureContext = { duringCommit: context.committing === true && unanswered };
      if (lease.timedOut) failure.timedOutAfter = limit;
      // What the server said (a SQLSTATE) beats what the socket said afterwards.
      const cause = errorCode(error) === undefined && lease.broken !== undefined ? lease.broken : error;
      throw pgStorageError(operation, cause, this.server, failure);
    } finally {
      cancelDeadline();
      this.leases.delete(lease);
      client.removeListener('error', onError);
      client.release(lease.broken !== undefined || lease.timedOut || lease.cut ? true : undefined);
    }
  }

  /** A connection from the pool within `connectTimeout`; one that arrives later goes straight back. */
  private async checkout(): Promise<pg.PoolClient> {
    const connecting = this.pool.connect();
    let cancelDeadline = (): void => undefined;
    const late = new Promise<never>((_, reject) => {
      cancelDeadline = this.deadline(this.timeouts.connectTimeout, () =>
        reject(new Error(`timeout exceeded when trying to connect (${this.timeouts.connectTimeout} ms)`)),
      );
    });
    try {
      return await Promise.race([connecting, late, this.closing]);
    } catch (error) {
      connecting.then((client) => client.release(), () => undefined);
      throw error;
    } finally {
      cancelDeadline();
    }
  }

  /** Calls `expire` once `ms` have passed, unless the returned cancel comes first. */
  private deadline(ms: number, expire: () => void): () => void {
    const entry = { at: Date.now() + ms, expire };
    this.deadlines.add(entry);
    if (!this.watchdog) {
      const period = Math.max(10, Math.min(WATCHDOG_MS, Math.floor(Math.min(this.timeouts.queryTimeout, this.timeouts.connectTimeout) / 4)));
      this.watchdog = setInterval(() => {
        const now = Date.now();
        for (const due of this.deadlines) {
          if (due.at > now) continue;
          this.deadlines.delete(due);
          due.expire();
        }
      }, period);
      this.watchdog.unref?.();
    }
    return () => void this.deadlines.delete(entry);
  }

  /**
   * One transaction on a connection of its own; rolled back when `work` throws.
   * With `begun`, `work` sends the `BEGIN` itself, in its first round trip;
   * with `commits`, it sends the `COMMIT` too (with its last statement), and says
   * so in `phase` first.
   */
  async transaction<T>(
    operation: string,
    work: (tx: Tx, client: pg.PoolClient, phase: { committing: boolean }) => Promise<T>,
    options: { begun?: boolean; commits?: boolean } = {},
  ): Promise<T> {
    const phase = { committing: false };
    return this.run(
      operation,
      async (db, client) => {
        if (!options.begun) await client.query('BEGIN');
        let result: T;
        try {
          result = await work(db, client, phase);
        } catch (error) {
          // A connection that broke rolled back by itself; a healthy one is told to.
          if (!FlowError.isInstance(error) || error.code !== 'storage') await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
        if (options.commits) return result;
        phase.committing = true;
        await client.query('COMMIT');
        return result;
      },
      phase,
    );
  }
}

/** Waits for the promises to settle, for at most `ms`. */
async function settledWithin(promises: readonly Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref?.();
  });
  await Promise.race([Promise.allSettled(promises), late]);
  clearTimeout(timer);
}

/** Closes a connection's socket at once: its queries fail, and the server ends its session. */
function destroySocket(client: pg.Client): void {
  (client.connection?.stream as Socket | undefined)?.destroy();
}

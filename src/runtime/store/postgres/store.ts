import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { and, asc, desc, eq, inArray, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import pg from 'pg';
import { FlowError } from '../../errors.js';
import { assertSchemaCurrent } from '../schema-version.js';
import { TERMINAL_STATUSES, type Flow, type FlowEvent, type FlowStatus, type FlowStep, type JsonObject } from '../../flow.js';
import { eventFromRow, flowFromRow, inboxSummaryFromRow, stepFromRow } from '../flow-rows.js';
import { COMMITS_CHANNEL, PgCommitWatch } from './commit-watch.js';
import { describeServer, errorCode, pgStorageError, type FailureContext } from './errors.js';
import { eventInbox, flowEvents, flows, flowSteps, resumeNotifications, seenEvents } from './schema.js';
import { MAX_ERROR_LENGTH, notificationFromRow } from '../notification-rows.js';
import type { BatchCommit, BatchOutcome, ClaimedNotification, Committed, Decision, FlowPageRequest, FlowStore, InboxKeySummary, ListOptions, Loaded, LoadRequest, ResumeNotification } from '../contract.js';
import { GroupCommitter, type GroupItem } from './group-commit.js';
import { flowColumnsOf, runLoad } from './load-sql.js';
import { writeDecision } from './write-sql.js';
import { inboxBound, inboxTotalCheck, inboxTotalMoved } from './inbox-total.js';
import { sendAll } from './pipeline.js';
import { WAITING_TOPICS_SQL } from '../waiting-topics-sql.js';
import { wakeFromJson } from '../../wake.js';
import { HEARTBEATS_SQL, WAITING_KEYS_SQL, numbered } from '../diagnostics-sql.js';
import { bridgeToJson, heartbeatFromRow, type Heartbeat, type WaitingKey } from '../diagnostics.js';
import { inspectQueries, type InspectQueries } from '../inspect.js';

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

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../../../drizzle/pg', import.meta.url));
const MIGRATION_LOCK = 7_415_263_001;
const DEFAULT_PAGE = 1000;
const MAX_ATTEMPTS = 20;
const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Migrations and pruning may rightly take long: their own, wider limit (a hung server still cannot hold them forever). */
const MAINTENANCE_TIMEOUT_MS = 10 * 60_000;
/** How often the time limits of calls in flight are checked (at most; a quarter of the shortest limit when smaller). */
const WATCHDOG_MS = 250;
/** How long `close()` lets calls in flight finish before it cuts their connections. */
const CLOSE_GRACE_MS = 5_000;
/** How long `close()` lets idle connections say goodbye before it closes their sockets. */
const END_GRACE_MS = 1_000;
/** TCP keepalive probes start after this much silence: a peer gone without a word is noticed in about a minute, not hours. */
const KEEPALIVE_DELAY_MS = 10_000;
/**
 * Most commits of this process running at once in transactions of their own;
 * the commits beyond share one transaction (group commit, one WAL flush for all).
 * More buys no throughput, the group carrying the crowd, and costs the host: each
 * transaction in flight is one more server backend competing for the CPU, and one
 * more socket answering in the same turn of the event loop. On 2 cores with 32
 * callers, 4 instead of the pool's 10 took a 1 ms host timer's p99 lateness from
 * about 7 ms over idle to about 2 to 4 ms, at the same transitions/s (bench/event-loop.ts).
 */
const MAX_DIRECT_COMMITS = 4;
/** unique_violation, serialization_failure, deadlock_detected: the transaction is retried. */
const RETRYABLE = new Set(['23505', '40001', '40P01']);
const DEADLOCK = '40P01';

type Db = NodePgDatabase<Record<string, never>>;
/** Queries of one checked-out connection (inside or outside a transaction). */
type Tx = Db;

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

/** Timeouts of a {@link PostgresFlowStore}, in ms. */
export interface PostgresStoreTimeouts {
  queryTimeout: number;
  connectTimeout: number;
}

/** How one call runs: its time limit (default `queryTimeout`), and whether its `COMMIT` is on the wire. */
interface CallContext {
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
 * The PostgreSQL {@link FlowStore}. Rows a commit reads are locked `FOR UPDATE`
 * (due flows with `SKIP LOCKED`, so processes share the due work), and an event
 * key is serialised with a transaction-scoped advisory lock, so an event and a
 * wait on the same key can never miss each other.
 *
 * Every call runs on a connection checked out for it, with an error listener
 * (a server that goes away never raises an uncaught error), a time limit
 * (`queryTimeout`), and failures reported as `FlowError('storage')` saying what
 * happened and where. A commit that makes a flow wait for a time, or queues a
 * resume notification for any engine, `NOTIFY`s {@link COMMITS_CHANNEL} in its
 * transaction: {@link PostgresFlowStore.watchForeignCommits} hears it.
 */
export class PostgresFlowStore implements FlowStore {
  readonly dialect = 'postgres' as const;
  /** Drizzle over the pool, for queries of your own; the store's calls do not go through it. */
  readonly db: Db;
  private closed = false;
  /** Told apart from other stores' notifications: this store's own commits are not reported to its watchers. */
  private readonly id = randomUUID();
  private readonly server: string;
  private readonly timeouts: PostgresStoreTimeouts;
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
  /** Commits beyond {@link MAX_DIRECT_COMMITS} (or the pool's connections, when fewer) share a transaction. */
  private readonly group: GroupCommitter;

  constructor(
    readonly pool: pg.Pool,
    private readonly ownPool: boolean,
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
    this.group = new GroupCommitter(
      Math.max(1, Math.min(pool.options.max ?? 10, MAX_DIRECT_COMMITS)),
      (item) => this.commitOne(item),
      (items) => this.runGroup(items),
    );
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

  /** Applies the migrations this version needs; several processes starting at once take turns. */
  async migrate(): Promise<void> {
    await this.run(
      'migrate',
      async (_db, client) => {
        // Already current (the common restart): two reads, no lock, no migrator.
        const last = await lastAppliedMigration(client);
        if (last !== undefined && last >= newestMigration()) return;
        await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
        try {
          await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
        }
      },
      { timeout: Math.max(MAINTENANCE_TIMEOUT_MS, this.timeouts.queryTimeout) },
    );
  }

  /** Checks, writing nothing, that the database already holds this version's schema (`migrate: false`). */
  async assertMigrated(): Promise<void> {
    const last = await this.run('assertMigrated', async (_db, client) => lastAppliedMigration(client));
    assertSchemaCurrent(MIGRATIONS_FOLDER, last, 'this PostgreSQL database');
  }

  async commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    return (await this.commitWith(load, plan, undefined)).result;
  }

  async commitClaiming<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit = Infinity): Promise<Committed<T>> {
    return this.commitWith(load, plan, leaseUntil, limit);
  }

  /**
   * Several commits in one transaction: `BEGIN`, then per commit a savepoint, its
   * load (one round trip) and its write (one statement), then one `COMMIT`. A
   * plan that throws, or a write that is refused (a revision that moved, an
   * error of the server), rolls back to its own savepoint and fails alone; a
   * deadlock or unique violation retries that commit alone. A failure of the
   * connection or of the `COMMIT` fails every commit of the batch.
   */
  async commitBatch<T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> {
    this.assertOpen();
    if (items.length === 0) return [];
    const group = items.map((item) => ({ load: item.load, plan: item.plan, ...(claim ? { leaseUntil: claim.leaseUntil } : {}), limit: 0 }));
    return this.runGroup(group, claim ? (claim.limit ?? Infinity) : 0);
  }

  private async commitWith<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number | undefined, limit = Infinity): Promise<Committed<T>> {
    this.assertOpen();
    const outcome = await this.group.commit({ load, plan, ...(leaseUntil === undefined ? {} : { leaseUntil }), limit });
    if (!outcome.ok) throw outcome.error;
    return { result: outcome.result, claimed: outcome.claimed };
  }

  /** One commit in a transaction of its own: `BEGIN` and its load in one round trip, its write in one statement, `COMMIT`. */
  private async commitOne<T>(item: GroupItem<T>): Promise<BatchOutcome<T>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transaction(
          'commit',
          async (_tx, client, phase) => {
            const loaded = await runLoad(client, item.load, ['BEGIN']);
            const decision = item.plan(loaded);
            const bound = inboxBound(loaded, decision);
            // The write and the COMMIT go together: from here, a lost answer leaves the outcome unknown.
            phase.committing = true;
            const { claimed } = await writeDecision(client, decision, {
              leaseUntil: item.leaseUntil,
              limit: item.limit,
              storeId: this.id,
              commit: true,
              load: item.load,
              ...(bound === undefined ? {} : { inboxBound: bound }),
            });
            return { ok: true as const, result: decision.result, claimed };
          },
          { begun: true, commits: true },
        );
      } catch (error) {
        if (attempt < MAX_ATTEMPTS && isStorage(error) && (RETRYABLE.has(errorCode(error.cause) ?? '') || inboxTotalMoved(error))) continue;
        throw error;
      }
    }
  }

  /**
   * Commits `items` in one transaction, a savepoint each. With `sharedLimit`,
   * the items claim at most that many wakes in all (commitBatch); without it,
   * each item claims up to its own `limit` (grouped commits of many callers).
   * A deadlock of an item while earlier items hold their locks rolls the whole
   * group back and runs it again: nothing of it was written. So does a check of
   * the inbox's total that finds events kept meanwhile (`inbox-total.ts`).
   */
  private async runGroup<T>(items: readonly GroupItem<T>[], sharedLimit?: number): Promise<BatchOutcome<T>[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runGroupOnce(items, sharedLimit);
      } catch (error) {
        if (attempt < MAX_ATTEMPTS && isStorage(error) && (errorCode(error.cause) === DEADLOCK || inboxTotalMoved(error))) continue;
        throw error;
      }
    }
  }

  /** One try of {@link runGroup}: one transaction. */
  private async runGroupOnce<T>(items: readonly GroupItem<T>[], sharedLimit?: number): Promise<BatchOutcome<T>[]> {
    return this.transaction(
      'commitBatch',
      async (_tx, client, phase) => {
        const outcomes: BatchOutcome<T>[] = [];
        let prefix: string[] = ['BEGIN'];
        let claimedInAll = 0;
        let holdsLocks = false;
        const kept: { bound?: number } = {};
        for (const item of items) {
          for (let attempt = 1; ; attempt++) {
            const limit = sharedLimit === undefined ? item.limit : Math.max(0, sharedLimit - claimedInAll);
            const outcome = await this.commitItem(client, item, [...prefix, 'SAVEPOINT taskflow_item'], limit, kept);
            prefix = [];
            if (outcome.ok) {
              claimedInAll += outcome.claimed.length;
              outcomes.push(outcome);
              prefix = ['RELEASE SAVEPOINT taskflow_item'];
              holdsLocks = true;
              break;
            }
            // Only this item's work is undone; the batch goes on.
            await client.query('ROLLBACK TO SAVEPOINT taskflow_item; RELEASE SAVEPOINT taskflow_item');
            const { error } = outcome;
            if (error instanceof pg.DatabaseError) {
              // A deadlock while earlier items hold their locks: PostgreSQL checks a lock wait once, so this item
              // retried here would wait behind the same waiter and lose again, every second. The whole group
              // rolls back instead, which frees that waiter, and runs again (runGroup).
              if (error.code === DEADLOCK && holdsLocks) throw error;
              if (attempt < MAX_ATTEMPTS && RETRYABLE.has(error.code ?? '')) continue;
              outcomes.push({ ok: false, error: pgStorageError('commit', error, this.server) });
            } else outcomes.push(outcome);
            break;
          }
        }
        phase.committing = true;
        await sendAll(client, [...(kept.bound === undefined ? [] : inboxTotalCheck(kept.bound)), { text: 'COMMIT' }]);
        return outcomes;
      },
      { begun: true, commits: true },
    );
  }

  /**
   * One item of a group, after `statements` (its savepoint): its load, plan and
   * write. What fails the item alone comes back as an outcome (the plan's error,
   * a refused write, an error of the server); a broken connection throws.
   */
  private async commitItem<T>(client: pg.PoolClient, item: GroupItem<T>, statements: readonly string[], limit: number, kept: { bound?: number }): Promise<BatchOutcome<T>> {
    let loaded: Loaded;
    try {
      loaded = await runLoad(client, item.load, statements);
    } catch (error) {
      if (error instanceof pg.DatabaseError) return { ok: false, error };
      throw error;
    }
    let decision: Decision<T>;
    try {
      decision = item.plan(loaded);
    } catch (error) {
      return { ok: false, error };
    }
    try {
      const { claimed } = await writeDecision(client, decision, { leaseUntil: item.leaseUntil, limit, storeId: this.id, load: item.load });
      const bound = inboxBound(loaded, decision);
      if (bound !== undefined) kept.bound = bound;
      return { ok: true, result: decision.result, claimed };
    } catch (error) {
      if (error instanceof pg.DatabaseError || FlowError.isInstance(error)) return { ok: false, error };
      throw error;
    }
  }

  /** `NOTIFY`, sent at COMMIT and only if it commits: other stores' watchers hear that there is work. */
  private async announce(tx: Tx): Promise<void> {
    await tx.execute(sql`SELECT pg_notify(${COMMITS_CHANNEL}, ${this.id})`);
  }

  async getFlow(id: string): Promise<Flow | undefined> {
    return this.run('getFlow', async (db) => {
      const [row] = await db.select().from(flows).where(eq(flows.id, id));
      return row ? flowFromRow(row) : undefined;
    });
  }

  async listByOwner(owner: string, options: ListOptions = {}): Promise<Flow[]> {
    const where =
      options.status === undefined ? eq(flows.ownerSessionKey, owner) : and(eq(flows.ownerSessionKey, owner), eq(flows.status, options.status));
    return this.run('listByOwner', async (db) => {
      const rows = await db
        .select()
        .from(flows)
        .where(where)
        .orderBy(desc(flows.createdAt), desc(flows.seq))
        .limit(options.limit ?? DEFAULT_PAGE)
        .offset(options.offset ?? 0);
      return rows.map(flowFromRow);
    });
  }

  async listByStatus(status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
    return this.run('listByStatus', async (db) => {
      const rows = await db
        .select()
        .from(flows)
        .where(eq(flows.status, status))
        .orderBy(asc(flows.updatedAt), asc(flows.seq))
        .limit(options.limit ?? DEFAULT_PAGE)
        .offset(options.offset ?? 0);
      return rows.map(flowFromRow);
    });
  }

  async listSteps(flowId: string): Promise<FlowStep[]> {
    return this.run('listSteps', async (db) => {
      const rows = await db.select().from(flowSteps).where(eq(flowSteps.flowId, flowId)).orderBy(asc(flowSteps.createdAt), asc(flowSteps.seq));
      return rows.map(stepFromRow);
    });
  }

  async listEvents(flowId: string): Promise<FlowEvent[]> {
    return this.run('listEvents', async (db) => {
      const rows = await db.select().from(flowEvents).where(eq(flowEvents.flowId, flowId)).orderBy(asc(flowEvents.id));
      return rows.map(eventFromRow);
    });
  }

  async lastEvents(flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
    this.assertOpen();
    if (flowIds.length === 0) return new Map();
    return this.run('lastEvents', async (_db, client) => {
      // One seek on flow_events_flow_kind per flow, however long its log (DISTINCT ON would read every event of the kind).
      const { rows } = await client.query<{ id: string; flow_id: string; kind: string; payload_json: string; at: string }>(
        `SELECT e.id, e.flow_id, e.kind, e.payload_json, e.at FROM unnest($1::text[]) AS f(id)
         CROSS JOIN LATERAL (SELECT * FROM flow_events WHERE flow_id = f.id AND kind = $2 ORDER BY id DESC LIMIT 1) AS e`,
        [[...flowIds], kind],
      );
      return new Map(
        rows.map((row) => [row.flow_id, eventFromRow({ id: Number(row.id), flowId: row.flow_id, kind: row.kind, payloadJson: row.payload_json, at: Number(row.at) })]),
      );
    });
  }

  async pruneTerminal(cutoff: number): Promise<number> {
    return this.run(
      'pruneTerminal',
      async (db) => {
        const deleted = await db
          .delete(flows)
          .where(and(inArray(flows.status, [...TERMINAL_STATUSES]), lte(flows.updatedAt, cutoff)))
          .returning({ id: flows.id });
        return deleted.length;
      },
      { timeout: Math.max(MAINTENANCE_TIMEOUT_MS, this.timeouts.queryTimeout) },
    );
  }

  async countByStatus(): Promise<Partial<Record<FlowStatus, number>>> {
    return this.run('countByStatus', async (db) => {
      const rows = await db.select({ status: flows.status, count: sql<string>`count(*)` }).from(flows).groupBy(flows.status);
      return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
    });
  }

  async pageFlows(request: FlowPageRequest): Promise<Flow[]> {
    const after = request.after;
    return this.run('pageFlows', async (db) => {
      const rows = await db
        .select()
        .from(flows)
        .where(
          after === undefined
            ? eq(flows.status, request.status)
            : and(eq(flows.status, request.status), sql`(${flows.updatedAt}, ${flows.id}) < (${after.updatedAt}, ${after.id})`),
        )
        .orderBy(desc(flows.updatedAt), desc(flows.id))
        .limit(request.limit);
      return rows.map(flowFromRow);
    });
  }

  async listWaking(limit: number): Promise<Flow[]> {
    return this.run('listWaking', async (db) => {
      const rows = await db
        .select()
        .from(flows)
        .where(and(eq(flows.status, 'waiting'), isNotNull(flows.wakeAt)))
        .orderBy(asc(flows.wakeAt))
        .limit(limit);
      return rows.map(flowFromRow);
    });
  }

  async nextWakeAt(): Promise<number | undefined> {
    return this.run('nextWakeAt', async (db) => {
      const [row] = await db
        .select({ wakeAt: flows.wakeAt })
        .from(flows)
        .where(and(eq(flows.status, 'waiting'), isNotNull(flows.wakeAt)))
        .orderBy(asc(flows.wakeAt))
        .limit(1);
      return row?.wakeAt ?? undefined;
    });
  }

  async recordHeartbeat(beat: Heartbeat, forgetBefore: number): Promise<void> {
    await this.run('recordHeartbeat', async (_db, client) => {
      await client.query(numbered(HEARTBEATS_SQL.upsert), [beat.id, beat.host, beat.startedAt.getTime(), beat.beatAt.getTime(), bridgeToJson(beat.bridge)]);
      await client.query(numbered(HEARTBEATS_SQL.forget), [forgetBefore]);
    });
  }

  async listHeartbeats(limit: number): Promise<Heartbeat[]> {
    return this.run('listHeartbeats', async (_db, client) => {
      const { rows } = await client.query<{ id: string; host: string; startedAt: string; beatAt: string; bridgeJson: string | null }>(numbered(HEARTBEATS_SQL.list), [limit]);
      return rows.map((row) => heartbeatFromRow({ ...row, startedAt: Number(row.startedAt), beatAt: Number(row.beatAt) }));
    });
  }

  async waitingKeys(topic: string, limit: number): Promise<WaitingKey[]> {
    return this.run('waitingKeys', async (_db, client) => {
      const { rows } = await client.query<WaitingKey>(numbered(WAITING_KEYS_SQL), [topic, limit]);
      return rows;
    });
  }

  async waitingTopics(): Promise<string[]> {
    return this.run('waitingTopics', async (_db, client) => {
      const { rows } = await client.query<{ topic: string }>(WAITING_TOPICS_SQL);
      return rows.map((row) => row.topic);
    });
  }

  async claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
    // One statement, one round trip (its own transaction): pick the due ones (SKIP LOCKED), push their lease, read their flows.
    return this.run('claimNotifications', async (_db, client) => {
      const { rows } = await client.query<Record<string, unknown> & { n_id: string; n_flow_id: string; n_wake_json: string; n_attempts: number; n_due_at: string }>(
        `WITH due AS (SELECT id FROM resume_notifications WHERE dead_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED),
         claimed AS (UPDATE resume_notifications n SET due_at = $2, attempts = n.attempts + 1 FROM due WHERE n.id = due.id
           RETURNING n.id AS n_id, n.flow_id AS n_flow_id, n.wake_json AS n_wake_json, n.attempts AS n_attempts)
         SELECT claimed.*, ${flowColumnsOf('f')} FROM claimed LEFT JOIN flows f ON f.id = claimed.n_flow_id ORDER BY claimed.n_id`,
        [now, now + leaseMs, limit],
      );
      return rows.map((row) => ({
        id: Number(row.n_id),
        flowId: row.n_flow_id,
        flow: row.id === null ? undefined : flowFromRow(row as unknown as Parameters<typeof flowFromRow>[0]),
        wake: wakeFromJson(JSON.parse(row.n_wake_json) as JsonObject),
        attempts: Number(row.n_attempts),
      }));
    });
  }

  async completeNotifications(ids: readonly number[]): Promise<void> {
    this.assertOpen();
    if (ids.length === 0) return;
    // One array parameter, however many ids: one plan, no statement as long as the list.
    await this.run('completeNotifications', async (_db, client) => {
      await client.query('DELETE FROM resume_notifications WHERE id = ANY($1::bigint[])', [[...ids]]);
    });
  }

  async retryNotification(id: number, dueAt: number, error: string): Promise<void> {
    await this.run('retryNotification', async (db) => {
      await db.update(resumeNotifications).set({ dueAt, lastError: error.slice(0, MAX_ERROR_LENGTH) }).where(eq(resumeNotifications.id, id));
    });
  }

  async parkNotification(id: number, at: number, error: string): Promise<void> {
    await this.run('parkNotification', async (db) => {
      await db.update(resumeNotifications).set({ deadAt: at, lastError: error.slice(0, MAX_ERROR_LENGTH) }).where(eq(resumeNotifications.id, id));
    });
  }

  async requeueDead(flowId: string, now: number, notificationId?: number): Promise<number> {
    return this.transaction('requeueDead', async (tx) => {
      const dead = and(eq(resumeNotifications.flowId, flowId), isNotNull(resumeNotifications.deadAt));
      const requeued = await tx
        .update(resumeNotifications)
        .set({ deadAt: null, attempts: 0, dueAt: now })
        .where(notificationId === undefined ? dead : and(dead, eq(resumeNotifications.id, notificationId)))
        .returning({ id: resumeNotifications.id });
      // Requeued from the CLI: the running application hears of it at once.
      if (requeued.length > 0) await this.announce(tx);
      return requeued.length;
    });
  }

  async listNotifications(flowIds: readonly string[]): Promise<ResumeNotification[]> {
    this.assertOpen();
    if (flowIds.length === 0) return [];
    return this.run('listNotifications', async (db) => {
      const rows = await db
        .select()
        .from(resumeNotifications)
        .where(inArray(resumeNotifications.flowId, [...flowIds]))
        .orderBy(asc(resumeNotifications.id));
      return rows.map(notificationFromRow);
    });
  }

  async listDeadNotifications(limit: number): Promise<ResumeNotification[]> {
    return this.run('listDeadNotifications', async (db) => {
      const rows = await db
        .select()
        .from(resumeNotifications)
        .where(isNotNull(resumeNotifications.deadAt))
        .orderBy(desc(resumeNotifications.deadAt))
        .limit(limit);
      return rows.map(notificationFromRow);
    });
  }

  async nextNotificationAt(): Promise<number | undefined> {
    return this.run('nextNotificationAt', async (db) => {
      const [row] = await db
        .select({ dueAt: resumeNotifications.dueAt })
        .from(resumeNotifications)
        .where(isNull(resumeNotifications.deadAt))
        .orderBy(asc(resumeNotifications.dueAt))
        .limit(1);
      return row?.dueAt;
    });
  }

  async listInbox(): Promise<InboxKeySummary[]> {
    return this.run('listInbox', async (db) => {
      const rows = await db
        .select({
          topic: eventInbox.topic,
          correlationId: eventInbox.correlationId,
          events: sql<string>`count(*)`,
          oldestAt: sql<string>`min(${eventInbox.receivedAt})`,
          newestAt: sql<string>`max(${eventInbox.receivedAt})`,
          expiresAt: sql<string>`min(${eventInbox.expiresAt})`,
        })
        .from(eventInbox)
        .groupBy(eventInbox.topic, eventInbox.correlationId)
        .orderBy(sql`min(${eventInbox.receivedAt})`, eventInbox.topic, eventInbox.correlationId);
      return rows.map(inboxSummaryFromRow);
    });
  }

  async purgeExpiredEvents(now: number): Promise<number> {
    return this.run('purgeExpiredEvents', async (db) => {
      const kept = await db.delete(eventInbox).where(lte(eventInbox.expiresAt, now)).returning({ id: eventInbox.id });
      const seen = await db.delete(seenEvents).where(lte(seenEvents.expiresAt, now)).returning({ id: seenEvents.eventId });
      return kept.length + seen.length;
    });
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

  inspect(): InspectQueries {
    return inspectQueries('postgres', (text, params) => this.run('inspect', async (_db, client) => (await client.query(text, params as unknown[])).rows as Record<string, unknown>[]));
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

  private assertOpen(): void {
    if (this.closed) throw new FlowError('storage', 'the store is closed');
  }

  /**
   * Runs `work` on a connection of its own: checked out with a time limit,
   * listened to for errors, cut after `queryTimeout`, and given back (or
   * discarded when it broke). What fails is a `FlowError('storage')`.
   */
  private async run<T>(operation: string, work: (db: Db, client: pg.PoolClient) => Promise<T>, context: CallContext = {}): Promise<T> {
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
  private async transaction<T>(
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

/** The `created_at` of the newest applied migration; undefined when the database has no taskflow tables. */
async function lastAppliedMigration(client: pg.PoolClient): Promise<number | undefined> {
  const { rows } = await client.query<{ ok: boolean }>(
    "SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AND to_regclass('flows') IS NOT NULL AS ok",
  );
  if (!rows[0]?.ok) return undefined;
  const applied = await client.query<{ last: string | null }>('SELECT max(created_at)::text AS last FROM drizzle.__drizzle_migrations');
  const last = applied.rows[0]?.last;
  return last === null || last === undefined ? undefined : Number(last);
}

let newest: number | undefined;
/** The `folderMillis` of this version's newest migration (read once per process). */
function newestMigration(): number {
  newest ??= Math.max(...readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER }).map((m) => m.folderMillis));
  return newest;
}

/** A `pg.Client` class whose connections give up opening after `ms`. */
function clientsTimingOutAfter(ms: number): new () => pg.Client {
  return class extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(typeof config === 'string' ? { connectionString: config, connectionTimeoutMillis: ms } : { ...config, connectionTimeoutMillis: ms });
    }
  };
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

function isStorage(error: unknown): error is FlowError {
  return FlowError.isInstance(error) && error.code === 'storage';
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new FlowError('invalid_input', `${name} must be a positive number of milliseconds`);
  }
  return value;
}

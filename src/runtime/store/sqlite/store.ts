import { accessSync, constants, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { FlowError } from '../../errors.js';
import { assertSchemaCurrent } from '../schema-version.js';
import type { Flow, FlowEvent, FlowStatus, FlowStep, JsonObject } from '../../flow.js';
import { eventFromRow, flowFromRow, flowToRow, inboxSummaryFromRow, keptEventFromRow, keptEventToRow, stepFromRow, stepToRow } from '../flow-rows.js';
import { SqliteChangeWatch } from './change-watch.js';
import { isSqliteBusy, lockedError, needsNewConnection, sqliteCode, storageError } from './errors.js';
import { prepareStatements, type SqliteStatements } from './statements.js';
import { WAITING_TOPICS_SQL } from '../waiting-topics-sql.js';
import type { BatchCommit, BatchOutcome, ClaimedNotification, Committed, Decision, FlowPageRequest, FlowWrite, FlowStore, InboxKeySummary, ListOptions, Loaded, LoadRequest, ResumeNotification } from '../contract.js';
import { MAX_ERROR_LENGTH, notificationFromRow } from '../notification-rows.js';
import { seenTopicOf } from '../seen-events.js';
import { inspectQueries, type InspectQueries } from '../inspect.js';
import { cachedStatement } from './cached-statements.js';
import { wakeFromJson, wakeToJson } from '../../wake.js';
import { anyOfKeysOf } from '../../any-of.js';
import { HEARTBEATS_SQL, WAITING_KEYS_SQL } from '../diagnostics-sql.js';
import { bridgeToJson, heartbeatFromRow, type Heartbeat, type WaitingKey } from '../diagnostics.js';

/** Where a commit puts the notifications it queues already claimed. */
export interface Claim {
  leaseUntil: number;
  claimed: ClaimedNotification[];
  /** At most this many are claimed; the rest are queued due at once. */
  limit: number;
}

import type { SqliteStoreOptions } from './options.js';
import { commitGroupOn, freshClaim, refusesOnlyItsItem, transactionStatements, type GroupPlan, type GroupUnit, type ItemOutcome } from './group-commit.js';
import { CommitQueue, type QueuedUnit } from './commit-queue.js';
import { WalSync } from './wal-sync.js';
import { checkpointInThread, INLINE_DEFAULT_FRAMES, INLINE_SAFETY_FRAMES, type CheckpointRegistration } from './checkpointer.js';
import { isMainThread } from 'node:worker_threads';
import { nextTurn, SLICE_MS, yieldIfSliceSpent } from '../../event-loop-slice.js';

export type { SqliteStoreOptions };

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../../../drizzle/sqlite', import.meta.url));
const DEFAULT_PAGE = 1000;
const DEFAULT_BUSY_TIMEOUT = 5000;
/** The longest pause between two tries for a lock: the delay a call sees after the lock is released. */
const MAX_LOCK_PAUSE_MS = 16;
/** How often `watchForeignCommits` reads `PRAGMA data_version` while someone listens. */
const CHANGE_CHECK_MS = 10;
/** Bytes of write-ahead log kept on disk once it rewinds (SQLite's default keeps its largest size). */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** Terminal flows deleted per transaction by `pruneTerminal`, so no transaction holds the lock for long. */
const PRUNE_BATCH = 500;

/** One better-sqlite3 connection with everything prepared on it. */
export interface Connection {
  readonly sqlite: Database.Database;
  readonly db: BetterSQLite3Database;
  readonly q: SqliteStatements;
  /** One wrapped transaction runner, reused: `db.transaction()` per call costs measurable time. */
  readonly inTransaction: Database.Transaction<(work: () => unknown) => unknown>;
  readonly dataVersion: Database.Statement<[], number>;
}

interface ConnectionSettings {
  path: string;
  synchronous: 'full' | 'normal';
  busyTimeout: number;
  /** Write nothing on open (`migrate: false` or `readonly`). */
  passive: boolean;
  readonly: boolean;
  groupCommit: boolean;
  /** At `synchronous: 'full'`, a crowded group commit is made at NORMAL and its log fsynced off this thread (see `wal-sync.ts`). */
  fsyncOffThread: boolean;
}

/**
 * Opens (creating and migrating as needed) a SQLite database as a {@link FlowStore}.
 * Throws `FlowError('storage')` naming the file and what to do when it cannot be
 * opened: a damaged or foreign file, a read-only folder, a full disk.
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteFlowStore {
  const requested = options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT;
  if (typeof requested !== 'number' || !Number.isFinite(requested) || requested < 0) {
    throw new FlowError('invalid_input', `busyTimeout must be a number of milliseconds, 0 or more; got ${String(options.busyTimeout)}`);
  }
  const busyTimeout = Math.min(Math.ceil(requested), 2 ** 31 - 1);
  const readonly = options.readonly === true;
  const passive = readonly || options.migrate === false;
  const synchronous = options.synchronous ?? 'full';
  const settings: ConnectionSettings = {
    path: options.path,
    synchronous,
    busyTimeout,
    passive,
    readonly,
    groupCommit: options.groupCommit !== false,
    // Off the main thread (the worker store's own thread) an fsync in COMMIT stalls no one.
    fsyncOffThread: synchronous === 'full' && isMainThread && !passive && options.path !== ':memory:',
  };
  if (options.path !== ':memory:' && !passive) {
    try {
      mkdirSync(dirname(options.path), { recursive: true });
    } catch (error) {
      throw new FlowError(
        'storage',
        `cannot create the folder of ${options.path} (${(error as Error).message}); create it, or point TASKFLOW_DB_PATH (the \`database\` option) at another file.`,
        { cause: error },
      );
    }
  }
  try {
    return new SqliteFlowStore(connect(settings, { migrate: !passive }), settings);
  } catch (error) {
    throw storageError(error, options.path);
  }
}

/**
 * A new connection. Opening may wait synchronously (up to `busyTimeout`) only for
 * another process creating or migrating the file; every later call waits for
 * locks asynchronously, so the connection keeps SQLite's busy timeout at 0.
 * A passive store (`migrate: false` or `readonly`) writes nothing on open: the
 * file must exist and already hold this version's schema.
 */
function connect(settings: ConnectionSettings, options: { migrate: boolean }): Connection {
  const sqlite = new Database(settings.path, settings.passive ? { readonly: settings.readonly, fileMustExist: true } : {});
  try {
    sqlite.pragma(`busy_timeout = ${options.migrate || settings.passive ? settings.busyTimeout : 0}`);
    if (settings.path !== ':memory:' && !settings.passive) {
      sqlite.pragma('journal_mode = WAL');
      // A log that grew while checkpoints lagged shrinks back to this when it rewinds.
      sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
    }
    sqlite.pragma(`synchronous = ${settings.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    sqlite.pragma('foreign_keys = ON');
    // Savepoint journals in memory: a batch's savepoint per item otherwise spills them to a temp file that grows all transaction.
    sqlite.pragma('temp_store = MEMORY');
    const db = drizzle(sqlite);
    if (options.migrate) migrateSafely(db, settings.path);
    else if (settings.passive) assertSchemaCurrent(MIGRATIONS_FOLDER, lastMigration(sqlite), settings.path);
    sqlite.pragma('busy_timeout = 0');
    return {
      sqlite,
      db,
      q: prepareStatements(db),
      inTransaction: sqlite.transaction((work: () => unknown) => work()),
      dataVersion: sqlite.prepare<[], number>('PRAGMA data_version').pluck(),
    };
  } catch (error) {
    sqlite.close();
    throw error;
  }
}

/** The `created_at` of the newest applied migration, or undefined when there is none (or no flows table). */
function lastMigration(sqlite: Database.Database): number | undefined {
  const tables = sqlite
    .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('flows', '__drizzle_migrations')")
    .get() as { n: number };
  if (tables.n < 2) return undefined;
  const row = sqlite.prepare('SELECT max(created_at) AS last FROM __drizzle_migrations').get() as { last: number | null };
  return row.last ?? undefined;
}

/** Two processes may open a new file at once: the loser of the race sees the winner's tables. */
function migrateSafely(db: BetterSQLite3Database, path: string): void {
  for (let attempt = 0; ; attempt++) {
    try {
      migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
      return;
    } catch (error) {
      const code = sqliteCode(error);
      // A file that cannot be read or written says so in its own words (see storageError).
      if (code !== undefined && code !== 'SQLITE_ERROR' && code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw error;
      if (attempt >= 5) {
        throw new FlowError(
          'storage',
          `cannot prepare ${path} for taskflow: its migration failed (${(error as Error).message}). ` +
            'Is it another application\'s database? Point TASKFLOW_DB_PATH (the `database` option) at another file.',
          { cause: error },
        );
      }
    }
  }
}

/**
 * The commits of several callers in one `BEGIN IMMEDIATE` transaction, each item
 * in a SAVEPOINT of its own: a plan that throws, or a write refused (a revision
 * mismatch, a constraint), rolls back only its item. Any other failure (the disk)
 * fails the whole transaction. Takes units in order while the work stays under
 * `budgetMs` (always the first); returns the outcomes of those it took.
 */
function commitUnitsOnSqlite(
  c: Connection,
  units: readonly QueuedUnit[],
  budgetMs: number,
  load: (q: SqliteStatements, request: LoadRequest) => Loaded,
  apply: (q: SqliteStatements, decision: Decision<unknown>, claim: Claim | undefined, load: LoadRequest) => void,
): BatchOutcome<unknown>[][] {
  const sql = transactionStatements(c);
  return c.inTransaction.immediate(() => {
    const started = performance.now();
    const taken: BatchOutcome<unknown>[][] = [];
    for (const unit of units) {
      if (taken.length > 0 && performance.now() - started >= budgetMs) break;
      const claiming = freshClaim(unit.claim);
      const outcomes: BatchOutcome<unknown>[] = [];
      for (const item of unit.items) {
        const before = claiming?.claimed.length ?? 0;
        sql.savepoint.run();
        let decision: Decision<unknown>;
        try {
          decision = item.plan(load(c.q, item.load));
          apply(c.q, decision, claiming, item.load);
        } catch (error) {
          if (!refusesOnlyItsItem(error)) throw error;
          sql.rollbackToSavepoint.run();
          sql.release.run();
          if (claiming) claiming.claimed.length = before;
          outcomes.push({ ok: false, error });
          continue;
        }
        sql.release.run();
        outcomes.push({ ok: true, result: decision.result, claimed: claiming ? claiming.claimed.slice(before) : [] });
      }
      taken.push(outcomes);
    }
    return taken;
  }) as BatchOutcome<unknown>[][];
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const NONE_BORN_AND_WRITTEN: ReadonlyMap<string, FlowWrite> = new Map();

/**
 * The writes of a decision that move on a flow the same decision inserts (the
 * only write of that flow, from the revision it is inserted at), by flow id.
 */
function bornAndWritten(decision: Decision<unknown>): ReadonlyMap<string, FlowWrite> {
  if (!decision.inserts?.length || !decision.writes?.length) return NONE_BORN_AND_WRITTEN;
  const found = new Map<string, FlowWrite>();
  // null: the flow has more than one write
  const onlyWrite = new Map<string, FlowWrite | null>();
  for (const write of decision.writes) onlyWrite.set(write.flow.id, onlyWrite.has(write.flow.id) ? null : write);
  for (const insert of decision.inserts) {
    const write = onlyWrite.get(insert.flow.id);
    if (write && write.fromRevision === insert.flow.revision) found.set(insert.flow.id, write);
  }
  return found;
}

/**
 * The SQLite {@link FlowStore}: drizzle prepared statements over one better-sqlite3
 * connection. Statements run synchronously and briefly; a lock held by another
 * process is waited for asynchronously (retries with a growing pause, up to
 * `busyTimeout`), so the host's event loop never stalls on it. A storage failure
 * (full disk, read-only file, damaged file) is a `FlowError('storage')` on every
 * call while it lasts, and the same store works again once it is fixed.
 */
export class SqliteFlowStore implements FlowStore {
  readonly dialect = 'sqlite' as const;
  private connection: Connection;
  /** The connection was opened read-only (the file was): reopen it before a write once the file is writable. */
  private readOnlyConnection = false;
  private readonly watch: SqliteChangeWatch;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Set while a group commit's transaction is open: every other call waits for it. */
  private exclusive: Promise<void> | undefined;
  private readonly queue = new CommitQueue(
    (units) => this.commitUnits(units),
    () => this.durable(),
  );
  /** Write transactions committed so far: what {@link WalSync} counts durability in. */
  private written = 0;
  private readonly walSync: WalSync | undefined;
  /** The checkpoint thread has this file (see `checkpointer.ts`); undefined while SQLite checkpoints inside commits. */
  private checkpoints: CheckpointRegistration | undefined;
  /** Checkpoints are SQLite's own again (the thread failed, or the store is off the main thread). */
  private inlineCheckpoints: boolean;

  /** @internal Use {@link openSqliteStore}. */
  constructor(
    connection: Connection,
    private readonly settings: ConnectionSettings,
  ) {
    this.connection = connection;
    this.walSync = settings.fsyncOffThread ? new WalSync(settings.path, () => this.written) : undefined;
    // Off the main thread (the worker store's own thread) a checkpoint stalls no one.
    this.inlineCheckpoints = !isMainThread || settings.passive || settings.path === ':memory:';
    this.watch = new SqliteChangeWatch(() => this.readDataVersion(), CHANGE_CHECK_MS);
  }

  /** The raw connection, for diagnostics such as `EXPLAIN QUERY PLAN`. */
  get sqlite(): Database.Database {
    return this.connection.sqlite;
  }

  /** The drizzle database over {@link SqliteFlowStore.sqlite}. */
  get db(): BetterSQLite3Database {
    return this.connection.db;
  }

  async commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    const outcome = (await this.enqueue([{ load, plan }], undefined, true))[0]!;
    if (!outcome.ok) throw storageError(outcome.error, this.settings.path);
    return outcome.result as T;
  }

  async commitClaiming<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit = Infinity): Promise<Committed<T>> {
    const outcome = (await this.enqueue([{ load, plan }], { leaseUntil, limit }, true))[0]!;
    if (!outcome.ok) throw storageError(outcome.error, this.settings.path);
    return { result: outcome.result as T, claimed: outcome.claimed };
  }

  async commitBatch<T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> {
    if (items.length === 0) return [];
    return (await this.enqueue(items, claim, false)) as BatchOutcome<T>[];
  }

  /** Queues commits for the next group transaction (see {@link CommitQueue}). */
  private enqueue<T>(
    items: readonly BatchCommit<T>[],
    claim: { leaseUntil: number; limit?: number } | undefined,
    /** A `commit` or `commitClaiming`: its failure is the call's (a batch's items fail in its outcomes). */
    single: boolean,
  ): Promise<BatchOutcome<unknown>[]> {
    this.assertOpen();
    return new Promise((settle, fail) => {
      const unit: QueuedUnit = { items: items as readonly BatchCommit<unknown>[], ...(claim ? { claim } : {}), single, settle, fail };
      if (this.settings.groupCommit) this.queue.push(unit);
      else this.commitUnits([unit]).then(([outcomes]) => settle(outcomes!), fail);
    });
  }

  /**
   * The queue's committer: a lone commit is one plain transaction, as it always
   * was; several share one, each in a savepoint, up to the slice's worth of work.
   */
  private async commitUnits(units: readonly QueuedUnit[]): Promise<BatchOutcome<unknown>[][]> {
    const first = units[0]!;
    if (units.length === 1 && first.single) {
      const item = first.items[0]!;
      const committed = await this.write((c) => {
        const claim = freshClaim(first.claim);
        return { result: this.commitOn(c, item.load, item.plan, claim), claimed: claim?.claimed ?? [] };
      });
      return [[{ ok: true, ...committed }]];
    }
    const work = (c: Connection) => commitUnitsOnSqlite(c, units, SLICE_MS, (q, request) => this.load(q, request), (q, decision, on, request) => this.apply(q, decision, on, request));
    // One item alone is as latency-bound as a lone commit: SQLite's own fsync; several, off the thread.
    return units.length > 1 || first.items.length > 1 ? this.writeSyncingLater(work) : this.write(work);
  }

  /**
   * One transaction. `BEGIN IMMEDIATE` takes the write lock before reading, so
   * another process cannot slip a write between read and write.
   */
  private commitOn<T>(c: Connection, load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, claim?: Claim): T {
    return c.inTransaction.immediate(() => {
      const decision = plan(this.load(c.q, load));
      this.apply(c.q, decision, claim, load);
      return decision.result;
    }) as T;
  }

  /**
   * @internal The worker thread's group commit (see `worker.ts`): the commits of
   * `units` in one transaction, a savepoint per item, each plan made elsewhere (on
   * the main thread) and awaited; the connection serves nothing else meanwhile.
   * The same load and apply as {@link commit}. Outcomes per unit, per item.
   */
  async commitGroup(units: readonly GroupUnit[], plan: GroupPlan): Promise<ItemOutcome[][]> {
    return this.write(async (c) => {
      let release!: () => void;
      this.exclusive = new Promise<void>((resolve) => (release = resolve));
      try {
        return await commitGroupOn(c, units, plan, (q, request) => this.load(q, request), (q, decision, claim, request) => this.apply(q, decision, claim, request));
      } finally {
        this.exclusive = undefined;
        release();
      }
    });
  }

  /**
   * @internal What `request` loads now, in one read transaction (a snapshot; no
   * lock taken, nothing waited for): the worker store's guess of what its thread
   * will load, so a commit usually needs no round trip for its plan. Throws when
   * the file is busy or failing (the caller then does without).
   */
  loadSnapshot(request: LoadRequest): Loaded {
    this.assertOpen();
    const c = this.connection;
    return c.inTransaction(() => this.load(c.q, request)) as Loaded;
  }

  /**
   * Runs `work`, which writes, with the lock waits and fault handling of
   * {@link SqliteFlowStore.run}. Its COMMIT is durable when it returns
   * (`synchronous` as configured), as is every commit before it.
   */
  private write<T>(work: (c: Connection) => T | Promise<T>): Promise<T> {
    return this.run(work, 'write');
  }

  /**
   * {@link write} for a crowded group commit: at `synchronous: 'full'` its COMMIT
   * is made at NORMAL and resolves once written; {@link durable} tells when the
   * log is on disk (see `wal-sync.ts`), while the next transaction goes ahead.
   */
  private writeSyncingLater<T>(work: (c: Connection) => T): Promise<T> {
    if (!this.walSync || !this.settings.groupCommit) return this.write(work);
    // Not prepared statements: SQLite applies `PRAGMA synchronous` when it compiles it.
    return this.run((c) => {
      c.sqlite.exec('PRAGMA synchronous = NORMAL');
      try {
        return work(c);
      } finally {
        try {
          c.sqlite.exec('PRAGMA synchronous = FULL');
        } catch {
          // A connection that fails here failed the work too: its error is the one to report.
        }
      }
    }, 'write-unsynced');
  }

  /** Resolves once every write transaction committed so far is on disk (undefined: it already is). */
  private durable(): Promise<void> | undefined {
    return this.walSync?.covering(this.written);
  }

  /** Hands this file's checkpoints to the checkpoint thread, from the first write on. */
  private checkpointElsewhere(): void {
    this.checkpoints = checkpointInThread(this.settings, {
      onLost: () => {
        this.checkpoints = undefined;
        this.inlineCheckpoints = true;
        this.setAutoCheckpoint(this.connection);
      },
      pauseWrites: () => this.queue.pause(),
    });
    this.setAutoCheckpoint(this.connection);
  }

  /** SQLite's own checkpoints every 1,000 pages of log (its default), or only as a safety net while the thread has the file. */
  private setAutoCheckpoint(c: Connection): void {
    try {
      c.sqlite.pragma(`wal_autocheckpoint = ${this.checkpoints ? INLINE_SAFETY_FRAMES : INLINE_DEFAULT_FRAMES}`);
    } catch {
      // A closed or failing connection: the next connection gets it set.
    }
  }

  private read<T>(work: (c: Connection) => T): Promise<T> {
    return this.run(work, 'read');
  }

  /**
   * Runs `work` on the connection. When another process holds the lock it needs,
   * SQLite answers at once (busy timeout 0) and the call tries again after a
   * pause, without blocking the event loop, until `busyTimeout` has passed.
   */
  private async run<T>(work: (c: Connection) => T | Promise<T>, mode: 'read' | 'write' | 'write-unsynced'): Promise<T> {
    const writes = mode !== 'read';
    const started = performance.now();
    let delay = 1;
    // Calls that never wait for I/O would otherwise keep the loop from its timers (see event-loop-slice.ts).
    const turn = yieldIfSliceSpent();
    if (turn) await turn;
    for (;;) {
      this.assertOpen();
      // From the first write on, this file's checkpoints are the checkpoint thread's.
      if (writes && !this.inlineCheckpoints && !this.checkpoints) this.checkpointElsewhere();
      // A group commit holds the connection inside its transaction while its plans are made elsewhere.
      while (this.exclusive) await this.exclusive;
      try {
        if (writes && this.readOnlyConnection && this.fileLooksWritable()) this.reconnect();
        const done = work(this.connection);
        // Counted as soon as it returns: another transaction may run before an await resumes.
        const result = done instanceof Promise ? await done : done;
        if (writes) this.written++;
        if (mode === 'write') this.walSync?.syncedThrough(this.written);
        return result;
      } catch (error) {
        if (!isSqliteBusy(error)) {
          if (needsNewConnection(error)) this.readOnlyConnection = true;
          throw storageError(error, this.settings.path);
        }
        const waited = performance.now() - started;
        if (waited >= this.settings.busyTimeout) throw lockedError(error, this.settings.path, this.settings.busyTimeout);
        await pause(Math.min(delay, this.settings.busyTimeout - waited));
        delay = Math.min(delay * 2, MAX_LOCK_PAUSE_MS);
      }
    }
  }

  private fileLooksWritable(): boolean {
    if (this.settings.path === ':memory:') return false; // a new connection would be a new, empty database
    try {
      accessSync(this.settings.path, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }

  /** Replaces a connection SQLite opened read-only by a new one (the file has become writable). */
  private reconnect(): void {
    const next = connect(this.settings, { migrate: false });
    this.setAutoCheckpoint(next);
    const previous = this.connection;
    this.connection = next;
    this.readOnlyConnection = false;
    previous.sqlite.close();
    this.watch.connectionChanged();
  }

  private readDataVersion(): number | undefined {
    if (this.closed) return undefined;
    try {
      return this.connection.dataVersion.get();
    } catch {
      return undefined; // locked or failing right now: the next check will tell
    }
  }

  private load(q: SqliteStatements, request: LoadRequest): Loaded {
    const flows: Flow[] = [];
    for (const id of request.flowIds ?? []) {
      const row = q.flowById.get({ id });
      if (row) flows.push(flowFromRow(row));
    }
    if (request.due) {
      for (const row of q.dueFlows.all({ now: request.due.now, limit: request.due.limit })) flows.push(flowFromRow(row));
    }
    let inbox: Loaded['inbox'];
    if (request.waitingOn) {
      const waiting = q.flowsWaitingOn.all({ ...request.waitingOn });
      for (const row of waiting) flows.push(flowFromRow(row));
      const waitingAny = q.flowsWaitingOnAnyOf.all({ ...request.waitingOn });
      for (const row of waitingAny) flows.push(flowFromRow(row));
      if (request.inboxFill && waiting.length === 0 && waitingAny.length === 0) {
        inbox = { forKey: q.countKeptForKey.get({ ...request.waitingOn })?.n ?? 0, total: q.countKept.get()?.n ?? 0 };
      }
    }
    const loaded: Loaded = inbox ? { flows, inbox, eventSeen: false } : { flows, eventSeen: false };
    if (request.keptEventFor) {
      const row = q.keptEventFor.get({ ...request.keptEventFor });
      if (row) loaded.keptEvent = keptEventFromRow(row);
    }
    if (request.keptEventForAny) {
      // The first received among the keys' oldest kept events (ids grow with arrival).
      const { keys, now } = request.keptEventForAny;
      for (const key of keys) {
        const row = q.keptEventFor.get({ ...key, now });
        if (row && (loaded.keptEvent === undefined || row.id < loaded.keptEvent.id)) loaded.keptEvent = keptEventFromRow(row);
      }
    }
    if (request.eventId) loaded.eventSeen = q.seenEvent.get({ topic: seenTopicOf(request), ...request.eventId }) !== undefined;
    if (request.idempotency) {
      const row = q.flowByIdempotencyKey.get(request.idempotency);
      if (row) loaded.idempotent = flowFromRow(row);
    }
    if (request.step) {
      const row = q.stepByRun.get(request.step);
      if (row) loaded.step = stepFromRow(row);
    }
    return loaded;
  }

  private apply<T>(q: SqliteStatements, decision: Decision<T>, claim: Claim | undefined, load: LoadRequest): void {
    const bornWritten = bornAndWritten(decision);
    for (const insert of decision.inserts ?? []) {
      // A flow created and moved on in the same decision (start and park) is
      // inserted as it ends: one row written, not a row and then its update.
      const last = bornWritten.get(insert.flow.id);
      const flow = last?.flow ?? insert.flow;
      q.insertFlow.run({ ...flowToRow(flow, last ? last.stateJson : insert.stateJson), idempotencyKey: insert.idempotencyKey ?? null });
      if (flow.status === 'waiting') for (const key of anyOfKeysOf(flow.wait)) q.insertWaitKey.run({ flowId: flow.id, ...key });
      appendEvent(q, insert.flow.id, insert.event.kind, insert.event.payload, insert.flow.updatedAt.getTime());
    }
    for (const write of decision.writes ?? []) {
      const { flow } = write;
      if (bornWritten.get(flow.id) !== write) {
        const result = q.updateFlow.run({ ...flowToRow(flow, write.stateJson), fromRevision: write.fromRevision });
        if (result.changes !== 1) {
          throw new FlowError('revision_mismatch', `flow ${flow.id} changed while it was being written; retry`);
        }
        if (write.rekeys) {
          q.clearWaitKeys.run({ flowId: flow.id });
          if (flow.status === 'waiting') for (const key of anyOfKeysOf(flow.wait)) q.insertWaitKey.run({ flowId: flow.id, ...key });
        }
      }
      const at = flow.updatedAt.getTime();
      for (const event of write.events) appendEvent(q, flow.id, event.kind, event.payload, at);
      if (write.wake) {
        const wakeJson = JSON.stringify(wakeToJson(write.wake));
        const claiming = claim !== undefined && claim.claimed.length < claim.limit;
        const queued = q.queueNotification.run({
          flowId: flow.id,
          wakeJson,
          dueAt: claiming ? claim.leaseUntil : at,
          attempts: claiming ? 1 : 0,
          createdAt: at,
        });
        if (claiming) claim.claimed.push({ id: Number(queued.lastInsertRowid), flowId: flow.id, flow, wake: write.wake, attempts: 1 });
      }
    }
    if (decision.upsertStep) q.upsertStep.run(stepToRow(decision.upsertStep));
    for (const id of decision.completeNotifications ?? []) q.completeNotification.run({ id });
    if (decision.keepEvent) {
      q.keepEvent.run(keptEventToRow(decision.keepEvent));
    }
    if (decision.consumeKeptEvent !== undefined) q.consumeKeptEvent.run({ id: decision.consumeKeptEvent });
    if (decision.rememberEventId) {
      q.rememberEventId.run({ topic: seenTopicOf(load), id: decision.rememberEventId.id, expiresAt: decision.rememberEventId.expiresAt.getTime() });
    }
  }

  async getFlow(id: string): Promise<Flow | undefined> {
    return this.read(({ q }) => {
      const row = q.flowById.get({ id });
      return row ? flowFromRow(row) : undefined;
    });
  }

  async listByOwner(owner: string, options: ListOptions = {}): Promise<Flow[]> {
    const page = { owner, limit: options.limit ?? DEFAULT_PAGE, offset: options.offset ?? 0 };
    return this.read(({ q }) =>
      (options.status === undefined ? q.flowsByOwner.all(page) : q.flowsByOwnerAndStatus.all({ ...page, status: options.status })).map(
        flowFromRow,
      ),
    );
  }

  async listByStatus(status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
    const page = { status, limit: options.limit ?? DEFAULT_PAGE, offset: options.offset ?? 0 };
    return this.read(({ q }) => q.flowsByStatus.all(page).map(flowFromRow));
  }

  async listSteps(flowId: string): Promise<FlowStep[]> {
    return this.read(({ q }) => q.stepsOfFlow.all({ flowId }).map(stepFromRow));
  }

  async listEvents(flowId: string): Promise<FlowEvent[]> {
    return this.read(({ q }) => q.eventsOfFlow.all({ flowId }).map(eventFromRow));
  }

  async lastEvents(flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
    // In-process, a prepared seek per flow (on flow_events_flow_kind) is cheaper than building an IN list.
    return this.read(({ q }) => {
      const found = new Map<string, FlowEvent>();
      for (const flowId of flowIds) {
        const row = q.lastEventOfKind.get({ flowId, kind });
        if (row) found.set(flowId, eventFromRow(row));
      }
      return found;
    });
  }

  /** Deletes in transactions of {@link PRUNE_BATCH} flows, letting the event loop run between them. */
  async pruneTerminal(cutoff: number): Promise<number> {
    let pruned = 0;
    for (;;) {
      const removed = await this.write((c) => c.inTransaction.immediate(() => c.q.pruneTerminal.run({ cutoff, limit: PRUNE_BATCH }).changes) as number);
      pruned += removed;
      if (removed < PRUNE_BATCH) return pruned;
      await nextTurn();
    }
  }

  async countByStatus(): Promise<Partial<Record<FlowStatus, number>>> {
    return this.read(({ q }) => Object.fromEntries(q.countByStatus.all().map((row) => [row.status, Number(row.count)])));
  }

  async pageFlows(request: FlowPageRequest): Promise<Flow[]> {
    return this.read(({ q }) =>
      (request.after === undefined
        ? q.flowsPageFirst.all({ status: request.status, limit: request.limit })
        : q.flowsPageAfter.all({ status: request.status, limit: request.limit, ...request.after })
      ).map(flowFromRow),
    );
  }

  async listWaking(limit: number): Promise<Flow[]> {
    return this.read(({ q }) => q.wakingFlows.all({ limit }).map(flowFromRow));
  }

  async nextWakeAt(): Promise<number | undefined> {
    return this.read(({ q }) => q.nextWakeAt.get()?.wakeAt ?? undefined);
  }

  async waitingTopics(): Promise<string[]> {
    return this.read(({ sqlite }) => (cachedStatement(sqlite, WAITING_TOPICS_SQL).all() as { topic: string }[]).map((row) => row.topic));
  }

  async claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
    return this.write(
      ({ q, inTransaction }) =>
        inTransaction.immediate(() =>
          q.dueNotifications.all({ now, limit }).map((row) => {
            q.leaseNotification.run({ id: row.id, dueAt: now + leaseMs });
            const flow = q.flowById.get({ id: row.flowId });
            return {
              id: row.id,
              flowId: row.flowId,
              flow: flow ? flowFromRow(flow) : undefined,
              wake: wakeFromJson(JSON.parse(row.wakeJson) as JsonObject),
              attempts: row.attempts + 1,
            };
          }),
        ) as ClaimedNotification[],
    );
  }

  async completeNotifications(ids: readonly number[]): Promise<void> {
    this.assertOpen();
    if (ids.length === 0) return;
    await this.write(({ q, inTransaction }) =>
      inTransaction.immediate(() => {
        for (const id of ids) q.completeNotification.run({ id });
      }),
    );
  }

  async retryNotification(id: number, dueAt: number, error: string): Promise<void> {
    await this.write(({ q }) => q.retryNotification.run({ id, dueAt, error: error.slice(0, MAX_ERROR_LENGTH) }));
  }

  async parkNotification(id: number, at: number, error: string): Promise<void> {
    await this.write(({ q }) => q.parkNotification.run({ id, at, error: error.slice(0, MAX_ERROR_LENGTH) }));
  }

  async requeueDead(flowId: string, now: number, notificationId?: number): Promise<number> {
    return this.write(({ q }) =>
      notificationId === undefined
        ? q.requeueDeadOfFlow.run({ flowId, now }).changes
        : q.requeueDeadById.run({ id: notificationId, flowId, now }).changes,
    );
  }

  async listNotifications(flowIds: readonly string[]): Promise<ResumeNotification[]> {
    return this.read(({ q }) => flowIds.flatMap((flowId) => q.notificationsOfFlow.all({ flowId }).map(notificationFromRow)));
  }

  async listDeadNotifications(limit: number): Promise<ResumeNotification[]> {
    return this.read(({ q }) => q.deadNotifications.all({ limit }).map(notificationFromRow));
  }

  async nextNotificationAt(): Promise<number | undefined> {
    return this.read(({ q }) => q.nextNotificationAt.get()?.dueAt);
  }

  async recordHeartbeat(beat: Heartbeat, forgetBefore: number): Promise<void> {
    await this.write(({ sqlite, inTransaction }) =>
      inTransaction.immediate(() => {
        cachedStatement(sqlite, HEARTBEATS_SQL.upsert).run(beat.id, beat.host, beat.startedAt.getTime(), beat.beatAt.getTime(), bridgeToJson(beat.bridge));
        cachedStatement(sqlite, HEARTBEATS_SQL.forget).run(forgetBefore);
      }),
    );
  }

  async listHeartbeats(limit: number): Promise<Heartbeat[]> {
    return this.read(({ sqlite }) =>
      (cachedStatement(sqlite, HEARTBEATS_SQL.list).all(limit) as { id: string; host: string; startedAt: number; beatAt: number; bridgeJson: string | null }[]).map(heartbeatFromRow),
    );
  }

  async waitingKeys(topic: string, limit: number): Promise<WaitingKey[]> {
    return this.read(({ sqlite }) => cachedStatement(sqlite, WAITING_KEYS_SQL).all(topic, limit) as WaitingKey[]);
  }

  async listInbox(): Promise<InboxKeySummary[]> {
    return this.read(({ q }) => q.inboxByKey.all().map(inboxSummaryFromRow));
  }

  async purgeExpiredEvents(now: number): Promise<number> {
    return this.write(
      ({ q, inTransaction }) =>
        inTransaction.immediate(() => q.purgeKeptEvents.run({ now }).changes + q.purgeSeenEvents.run({ now }).changes) as number,
    );
  }

  /** Polls `PRAGMA data_version` every few ms while someone listens (one unref'd timer; microseconds a check). */
  watchForeignCommits(listener: () => void): () => void {
    this.assertOpen();
    return this.watch.subscribe(listener);
  }

  inspect(): InspectQueries {
    return inspectQueries('sqlite', (text, params) => this.read(({ sqlite }) => cachedStatement(sqlite, text).all(...params) as Record<string, unknown>[]));
  }

  /** Writes what was asked for, then closes; every call resolves once the file is closed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.drain(); // commits asked for before the close are written
      this.closed = true;
      await this.checkpoints?.release();
      await this.walSync?.close();
      this.watch.stop();
      this.connection.sqlite.close();
    })();
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closed) throw new FlowError('storage', 'the store is closed');
  }
}

function appendEvent(q: SqliteStatements, flowId: string, kind: string, payload: JsonObject, at: number): void {
  q.appendEvent.run({ flowId, kind, payloadJson: JSON.stringify(payload), at });
}

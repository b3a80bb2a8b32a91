import { accessSync, constants } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { FlowError } from '../../errors.js';
import { assertSchemaCurrent } from '../schema-version.js';
import type { BatchOutcome } from '../contract.js';
import { yieldIfSliceSpent } from '../../event-loop-slice.js';
import { SqliteChangeWatch } from './change-watch.js';
import { checkpointInThread, INLINE_DEFAULT_FRAMES, INLINE_SAFETY_FRAMES, type CheckpointRegistration } from './checkpointer.js';
import { CommitQueue, type QueuedUnit } from './commit-queue.js';
import { isSqliteBusy, lockedError, needsNewConnection, storageError } from './errors.js';
import { lastMigration, migrateSafely, MIGRATIONS_FOLDER } from './migrate.js';
import { prepareStatements, type SqliteStatements } from './statements.js';
import { WalSync } from './wal-sync.js';

/** One better-sqlite3 connection with everything prepared on it. */
export interface Connection {
  readonly sqlite: Database.Database;
  readonly db: BetterSQLite3Database;
  readonly q: SqliteStatements;
  /** One wrapped transaction runner, reused: `db.transaction()` per call costs measurable time. */
  readonly inTransaction: Database.Transaction<(work: () => unknown) => unknown>;
  readonly dataVersion: Database.Statement<[], number>;
}

/** The longest pause between two tries for a lock: the delay a call sees after the lock is released. */
const MAX_LOCK_PAUSE_MS = 16;
/** How often `watchForeignCommits` reads `PRAGMA data_version` while someone listens. */
const CHANGE_CHECK_MS = 10;
/** Bytes of write-ahead log kept on disk once it rewinds (SQLite's default keeps its largest size). */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** Terminal flows deleted per transaction by `pruneTerminal`, so no transaction holds the lock for long. */

export interface ConnectionSettings {
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
 * A new connection. Opening may wait synchronously (up to `busyTimeout`) only for
 * another process creating or migrating the file; every later call waits for
 * locks asynchronously, so the connection keeps SQLite's busy timeout at 0.
 * A passive store (`migrate: false` or `readonly`) writes nothing on open: the
 * file must exist and already hold this version's schema.
 */
export function connect(settings: ConnectionSettings, options: { migrate: boolean }): Connection {
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

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The queue's committer: writes the units it is given (see `commit.ts`). */
export type CommitUnits = (c: SqliteConnection, units: readonly QueuedUnit[]) => Promise<BatchOutcome<unknown>[][]>;

/**
 * The SQLite store's connection and its lifecycle: the better-sqlite3 connection
 * (reopened once a read-only file becomes writable), lock waits, the group-commit
 * queue, durability off the thread (`wal-sync.ts`), checkpoints in their thread
 * (`checkpointer.ts`), the change watch, and the close.
 *
 * States: open (reads and writes run; a group commit's transaction makes every
 * other call wait for it) → closing (commits asked for are written) → closed
 * (every call fails with `storage`).
 */
export class SqliteConnection {
  connection: Connection;
  /** The connection was opened read-only (the file was): reopen it before a write once the file is writable. */
  private readOnlyConnection = false;
  private readonly watch: SqliteChangeWatch;
  closed = false;
  private closing: Promise<void> | undefined;
  /** Set while a group commit's transaction is open: every other call waits for it. */
  exclusive: Promise<void> | undefined;
  readonly queue: CommitQueue;
  /** Write transactions committed so far: what {@link WalSync} counts durability in. */
  private written = 0;
  private readonly walSync: WalSync | undefined;
  /** The checkpoint thread has this file (see `checkpointer.ts`); undefined while SQLite checkpoints inside commits. */
  private checkpoints: CheckpointRegistration | undefined;
  /** Checkpoints are SQLite's own again (the thread failed, or the store is off the main thread). */
  private inlineCheckpoints: boolean;

  constructor(
    connection: Connection,
    readonly settings: ConnectionSettings,
    commitUnits: CommitUnits,
  ) {
    this.connection = connection;
    this.queue = new CommitQueue(
      (units) => commitUnits(this, units),
      () => this.durable(),
    );
    this.walSync = settings.fsyncOffThread ? new WalSync(settings.path, () => this.written) : undefined;
    // Off the main thread (the worker store's own thread) a checkpoint stalls no one.
    this.inlineCheckpoints = !isMainThread || settings.passive || settings.path === ':memory:';
    this.watch = new SqliteChangeWatch(() => this.readDataVersion(), CHANGE_CHECK_MS);
  }

  /** The raw connection, for diagnostics such as `EXPLAIN QUERY PLAN`. */
  get sqlite(): Database.Database {
    return this.connection.sqlite;
  }

  /** The drizzle database over {@link SqliteConnection.sqlite}. */
  get db(): BetterSQLite3Database {
    return this.connection.db;
  }

  /**
   * Runs `work`, which writes, with the lock waits and fault handling of
   * {@link SqliteConnection.run}. Its COMMIT is durable when it returns
   * (`synchronous` as configured), as is every commit before it.
   */
  write<T>(work: (c: Connection) => T | Promise<T>): Promise<T> {
    return this.run(work, 'write');
  }

  /**
   * {@link write} for a crowded group commit: at `synchronous: 'full'` its COMMIT
   * is made at NORMAL and resolves once written; {@link durable} tells when the
   * log is on disk (see `wal-sync.ts`), while the next transaction goes ahead.
   */
  writeSyncingLater<T>(work: (c: Connection) => T): Promise<T> {
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

  read<T>(work: (c: Connection) => T): Promise<T> {
    return this.run(work, 'read');
  }

  /**
   * Runs `work` on the connection. When another process holds the lock it needs,
   * SQLite answers at once (busy timeout 0) and the call tries again after a
   * pause, without blocking the event loop, until `busyTimeout` has passed.
   */
  async run<T>(work: (c: Connection) => T | Promise<T>, mode: 'read' | 'write' | 'write-unsynced'): Promise<T> {
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

  /** Polls `PRAGMA data_version` every few ms while someone listens (one unref'd timer; microseconds a check). */
  watchForeignCommits(listener: () => void): () => void {
    this.assertOpen();
    return this.watch.subscribe(listener);
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

  assertOpen(): void {
    if (this.closed) throw new FlowError('storage', 'the store is closed');
  }
}

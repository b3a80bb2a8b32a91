import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { FlowError } from '../../../errors.js';
import type { Heartbeat, WaitingKey } from '../../diagnostics.js';
import type { Flow, FlowEvent, FlowStatus, FlowStep } from '../../../flow.js';
import type {
  BatchCommit,
  BatchOutcome,
  ClaimedNotification,
  Committed,
  Decision,
  FlowPageRequest,
  FlowStore,
  InboxKeySummary,
  ListOptions,
  Loaded,
  LoadRequest,
  NotificationClaim,
  ResumeNotification,
} from '../../contract.js';
import type { SqliteStoreOptions } from '../options.js';
import { openSqliteStore } from '../open.js';
import type { SqliteFlowStore } from '../store.js';
import { fromWire, type ForwardedCall, type FromWorker, type PlanGuess, type ToWorker, type WireDecision, type WorkerSettings } from './protocol.js';

/** A claim as it crosses to the thread: a {@link ClaimedNotification} passed as one would carry its flow along. */
const claimOnly = ({ id, leaseUntil }: NotificationClaim): NotificationClaim => ({ id, leaseUntil });

/** How long `close()` waits for the thread to finish what is queued and close the file. */
const CLOSE_WAIT_MS = 10_000;

interface PendingCall {
  kind: 'call';
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface PendingCommit {
  kind: 'commit';
  plans: readonly ((loaded: Loaded) => Decision<unknown>)[];
  /** The last decision of each item's plan (a retried transaction plans again). */
  decisions: (Decision<unknown> | undefined)[];
  /** The error of each item's plan that threw. */
  planErrors: unknown[];
  resolve: (outcomes: BatchOutcome<unknown>[]) => void;
  reject: (error: unknown) => void;
}

type Pending = PendingCall | PendingCommit;

/**
 * Opens a SQLite database as a {@link FlowStore} whose connection lives in a worker
 * thread: statements, fsyncs, lock waits and migrations run there, never on the
 * host's event loop. Plans (the pure decisions) still run on the calling thread.
 * Commits made while a transaction is open share the next one and its fsync
 * (group commit); a lone commit starts at once. Fails with `FlowError('storage')`
 * naming the file when it cannot be opened, as {@link openSqliteStore} does.
 */
export async function openSqliteWorkerStore(options: SqliteStoreOptions): Promise<SqliteWorkerStore> {
  if (options.path === ':memory:') {
    // Another connection would be another database: wait for the thread.
    const store = new SqliteWorkerStore(options, undefined);
    await store.connected();
    return store;
  }
  // Opened (created, migrated, checked) here first: the same errors as the main-thread store, at once; this
  // connection serves the calls made while the thread starts, then retires.
  const warm = openSqliteStore(options);
  const store = new SqliteWorkerStore({ ...options, migrate: false }, warm);
  store.connected().catch(() => undefined); // a thread that cannot start leaves the store on this thread
  return store;
}

/**
 * The SQLite {@link FlowStore} off the main thread (see {@link openSqliteWorkerStore}).
 * If the thread dies, the calls in flight fail with `storage` (their outcome is
 * unknown: a commit may have been made) and the next call starts a new thread on
 * the same file.
 */
export class SqliteWorkerStore implements FlowStore {
  readonly dialect = 'sqlite' as const;
  private thread: Promise<Worker> | undefined;
  private live: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<() => void>();
  private closed = false;
  /** An in-memory database dies with its thread: it cannot be reopened. */
  private lost: FlowError | undefined;

  /** Calls in flight on the warm connection; it closes once the thread is up and they are done. */
  private warmCalls = 0;
  private warmUnwatch: (() => void) | undefined;
  /** The last thread started, up or not. */
  private starting: Worker | undefined;

  /** @internal Use {@link openSqliteWorkerStore}. */
  constructor(
    private readonly options: SqliteStoreOptions,
    /** A main-thread store on the same file serving calls until the thread is up (`undefined` for `:memory:`). */
    private warm: SqliteFlowStore | undefined,
  ) {}

  /** @internal Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** The database file (or `:memory:`). */
  get path(): string {
    return this.options.path;
  }

  /** The warm store while the thread is not up yet (or could not start). */
  private warmRoute(): SqliteFlowStore | undefined {
    return this.live ? undefined : this.warm;
  }

  private async onWarm<R>(warm: SqliteFlowStore, work: (store: SqliteFlowStore) => Promise<R>): Promise<R> {
    this.warmCalls++;
    try {
      return await work(warm);
    } finally {
      this.warmCalls--;
      if (this.live) this.retireWarm();
    }
  }

  /** The thread is up: the warm connection closes once its calls are done. */
  private retireWarm(): void {
    const warm = this.warm;
    if (!warm || this.warmCalls > 0) return;
    this.warm = undefined;
    this.warmUnwatch?.();
    this.warmUnwatch = undefined;
    this.reader = warm; // from now on it only reads snapshots to plan ahead
  }

  /** The warm connection once retired: snapshots for plans made ahead (see {@link guess}). */
  private reader: SqliteFlowStore | undefined;

  /** @internal The worker thread once it has opened the file (started when there is none). */
  connected(): Promise<Worker> {
    this.assertOpen();
    if (this.lost) return Promise.reject(this.lost);
    this.thread ??= this.spawn();
    return this.thread;
  }

  async commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    const warm = this.warmRoute();
    if (warm) return this.onWarm(warm, (store) => store.commit(load, plan));
    const [outcome] = await this.commitUnit<T>([load], [plan], undefined);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!.result;
  }

  async commitClaiming<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit?: number): Promise<Committed<T>> {
    const warm = this.warmRoute();
    if (warm) return this.onWarm(warm, (store) => store.commitClaiming(load, plan, leaseUntil, limit));
    const claim = limit === undefined || limit === Infinity ? { leaseUntil } : { leaseUntil, limit };
    const [outcome] = await this.commitUnit<T>([load], [plan], claim);
    if (!outcome!.ok) throw outcome!.error;
    return { result: outcome!.result, claimed: outcome!.claimed };
  }

  async commitBatch<T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> {
    if (items.length === 0) return [];
    const warm = this.warmRoute();
    if (warm) return this.onWarm(warm, (store) => store.commitBatch(items, claim));
    return this.commitUnit(
      items.map((item) => item.load),
      items.map((item) => item.plan),
      claim,
    );
  }

  private async commitUnit<T>(
    loads: LoadRequest[],
    plans: readonly ((loaded: Loaded) => Decision<T>)[],
    claim: { leaseUntil: number; limit?: number } | undefined,
  ): Promise<BatchOutcome<T>[]> {
    const worker = await this.connected();
    return new Promise<BatchOutcome<T>[]>((resolve, reject) => {
      const id = this.nextId++;
      const pending: PendingCommit = { kind: 'commit', plans, decisions: [], planErrors: [], resolve: resolve as PendingCommit['resolve'], reject };
      this.track(id, pending);
      const guesses = this.guess(loads, pending);
      const message: ToWorker = { t: 'commit', id, loads, ...(claim ? { claim } : {}), ...(guesses ? { guesses } : {}) };
      this.post(worker, id, message);
    });
  }

  /**
   * Plans ahead from a snapshot read on this thread (point lookups, microseconds;
   * never a due-list load): when the thread loads the same under its lock, the
   * commit takes one round trip instead of two. Undefined when it cannot guess.
   */
  private guess(loads: readonly LoadRequest[], pending: PendingCommit): PlanGuess[] | undefined {
    const reader = this.reader;
    if (!reader || loads.some((load) => load.due !== undefined)) return undefined;
    const guesses: PlanGuess[] = [];
    for (const [item, load] of loads.entries()) {
      let loaded: Loaded;
      try {
        loaded = reader.loadSnapshot(load);
      } catch {
        return undefined; // busy or failing here: the thread loads and asks
      }
      const bytes = serialize(loaded);
      try {
        const decision = pending.plans[item]!(loaded);
        const wire: WireDecision & { result?: unknown } = { ...decision };
        delete wire.result;
        pending.decisions[item] = decision;
        guesses.push({ loaded: bytes, decision: wire });
      } catch (error) {
        pending.planErrors[item] = error;
        guesses.push({ loaded: bytes });
      }
    }
    return guesses;
  }

  getFlow(id: string): Promise<Flow | undefined> {
    return this.call('getFlow', id);
  }
  listByOwner(owner: string, options?: ListOptions): Promise<Flow[]> {
    return this.call('listByOwner', owner, options);
  }
  listByStatus(status: FlowStatus, options?: ListOptions): Promise<Flow[]> {
    return this.call('listByStatus', status, options);
  }
  listSteps(flowId: string): Promise<FlowStep[]> {
    return this.call('listSteps', flowId);
  }
  listEvents(flowId: string): Promise<FlowEvent[]> {
    return this.call('listEvents', flowId);
  }
  lastEvents(flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
    return this.call('lastEvents', flowIds, kind);
  }
  pruneTerminal(cutoff: number): Promise<number> {
    return this.call('pruneTerminal', cutoff);
  }
  countByStatus(): Promise<Partial<Record<FlowStatus, number>>> {
    return this.call('countByStatus');
  }
  pageFlows(request: FlowPageRequest): Promise<Flow[]> {
    return this.call('pageFlows', request);
  }
  listWaking(limit: number): Promise<Flow[]> {
    return this.call('listWaking', limit);
  }
  nextWakeAt(): Promise<number | undefined> {
    return this.call('nextWakeAt');
  }
  waitingTopics(): Promise<string[]> {
    return this.call('waitingTopics');
  }
  claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
    return this.call('claimNotifications', now, leaseMs, limit);
  }
  async completeNotifications(claims: readonly NotificationClaim[]): Promise<void> {
    this.assertOpen();
    if (claims.length > 0) await this.call('completeNotifications', claims.map(claimOnly));
  }
  retryNotification(claim: NotificationClaim, dueAt: number, error: string): Promise<boolean> {
    return this.call('retryNotification', claimOnly(claim), dueAt, error);
  }
  parkNotification(claim: NotificationClaim, at: number, error: string): Promise<boolean> {
    return this.call('parkNotification', claimOnly(claim), at, error);
  }
  async releaseNotifications(claims: readonly NotificationClaim[], now: number): Promise<void> {
    this.assertOpen();
    if (claims.length > 0) await this.call('releaseNotifications', claims.map(claimOnly), now);
  }
  requeueDead(flowId: string, now: number, notificationId?: number): Promise<number> {
    return this.call('requeueDead', flowId, now, notificationId);
  }
  listNotifications(flowIds: readonly string[]): Promise<ResumeNotification[]> {
    return this.call('listNotifications', flowIds);
  }
  listDeadNotifications(limit: number): Promise<ResumeNotification[]> {
    return this.call('listDeadNotifications', limit);
  }
  nextNotificationAt(): Promise<number | undefined> {
    return this.call('nextNotificationAt');
  }
  listInbox(): Promise<InboxKeySummary[]> {
    return this.call('listInbox');
  }
  purgeExpiredEvents(now: number): Promise<number> {
    return this.call('purgeExpiredEvents', now);
  }
  recordHeartbeat(beat: Heartbeat, forgetBefore: number): Promise<void> {
    return this.call('recordHeartbeat', beat, forgetBefore);
  }
  listHeartbeats(limit: number): Promise<Heartbeat[]> {
    return this.call('listHeartbeats', limit);
  }
  waitingKeys(topic: string, limit: number): Promise<WaitingKey[]> {
    return this.call('waitingKeys', topic, limit);
  }

  /**
   * Diagnostics: runs a PRAGMA on the thread's connection (`page_count`,
   * `synchronous`, `query_only = ON`...), as better-sqlite3's `pragma()` does.
   */
  async pragma(source: string, options: { simple?: boolean } = {}): Promise<unknown> {
    const worker = await this.connected();
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.track(id, { kind: 'call', resolve, reject });
      this.post(worker, id, { t: 'pragma', id, source, simple: options.simple === true });
    });
  }

  /** The thread checks `PRAGMA data_version` every few ms while someone listens, and reports foreign commits. */
  watchForeignCommits(listener: () => void): () => void {
    this.assertOpen();
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.live?.postMessage({ t: 'watch', on: true } satisfies ToWorker);
    const warm = this.warmRoute();
    if (warm && !this.warmUnwatch) this.warmUnwatch = warm.watchForeignCommits(() => this.foreignCommit());
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
      this.live?.postMessage({ t: 'watch', on: false } satisfies ToWorker);
      this.warmUnwatch?.();
      this.warmUnwatch = undefined;
    };
  }

  /** Lets the thread finish what is queued, close the file and exit (bounded: it is terminated after a while). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    const warm = this.warm;
    const reader = this.reader;
    this.warm = undefined;
    this.reader = undefined;
    this.warmUnwatch?.();
    await warm?.close();
    await reader?.close();
    const worker = this.live;
    if (!worker) {
      // Still starting: it has served nothing (the warm connection did), so it need not finish anything.
      // Not awaited: a thread still loading its modules may take long to stop, and must not hold the process.
      const starting = this.starting;
      starting?.unref();
      void starting?.terminate().catch(() => undefined);
      return;
    }
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const id = this.nextId++;
    const closing = new Promise<unknown>((resolve, reject) => this.track(id, { kind: 'call', resolve, reject })).catch(() => undefined);
    worker.postMessage({ t: 'close', id } satisfies ToWorker);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLOSE_WAIT_MS)));
    if ((await Promise.race([closing.then(() => exited), late])) === 'late') await worker.terminate();
    clearTimeout(timer);
  }

  private call<R>(method: ForwardedCall, ...args: unknown[]): Promise<R> {
    const warm = this.warmRoute();
    if (warm) return this.onWarm(warm, (store) => (store[method] as (...a: unknown[]) => Promise<R>)(...args));
    return this.connected().then(
      (worker) =>
        new Promise<R>((resolve, reject) => {
          const id = this.nextId++;
          this.track(id, { kind: 'call', resolve: resolve as (value: unknown) => void, reject });
          // Trailing undefined arguments stay off the wire: a default parameter applies.
          while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
          this.post(worker, id, { t: 'call', id, method, args });
        }),
    );
  }

  private post(worker: Worker, id: number, message: ToWorker): void {
    try {
      worker.postMessage(message);
    } catch (error) {
      this.settle(id)?.reject(new FlowError('invalid_input', `cannot pass this call to the SQLite thread: ${(error as Error).message}`, { cause: error }));
    }
  }

  /** While calls are in flight the thread keeps the process alive, so an awaited call always settles. */
  private track(id: number, pending: Pending): void {
    this.pending.set(id, pending);
    if (this.pending.size === 1) this.live?.ref();
  }

  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    if (this.pending.size === 0) this.live?.unref();
    return pending;
  }

  private spawn(): Promise<Worker> {
    const script = workerScript();
    const settings: WorkerSettings = { options: this.options };
    const worker = 'url' in script ? new Worker(script.url, { workerData: settings }) : new Worker(script.source, { eval: true, workerData: settings });
    this.starting = worker;
    const file = this.options.path === ':memory:' ? 'the in-memory database' : this.options.path;
    return new Promise<Worker>((resolve, reject) => {
      let opened = false;
      worker.on('message', (message: FromWorker) => {
        if (opened) return this.arrived(worker, message);
        if (message.t === 'ready') {
          opened = true;
          this.live = worker;
          this.retireWarm();
          if (this.pending.size === 0) worker.unref();
          if (this.listeners.size > 0) {
            worker.postMessage({ t: 'watch', on: true } satisfies ToWorker);
            this.foreignCommit(); // a new thread after a crash: commits may have happened meanwhile
          }
          resolve(worker);
        } else if (message.t === 'failed') {
          // With a warm store the calls stay on it, on this thread; without one each call tries again.
          if (!this.warm) this.thread = undefined;
          reject(fromWire(message.error));
        }
      });
      worker.on('error', (error) => this.stopped(worker, new FlowError('storage', `the SQLite thread of ${file} failed: ${error.message}`, { cause: error })));
      worker.on('exit', (code) => {
        const error = new FlowError(
          'storage',
          this.closed ? 'the store is closed' : `the SQLite thread of ${file} stopped (exit code ${code}); a call in flight may or may not have been committed`,
        );
        if (!opened) {
          if (!this.warm) this.thread = undefined;
          reject(error);
        }
        this.stopped(worker, error);
      });
    });
  }

  /** The thread is gone: every call in flight fails; the next call starts a new one (a file survives, memory does not). */
  private stopped(worker: Worker, error: FlowError): void {
    if (this.live === worker) this.live = undefined;
    this.thread = undefined;
    if (this.options.path === ':memory:' && !this.closed) {
      this.lost = new FlowError('storage', `the in-memory database was lost with its thread: ${error.message}`, { cause: error });
    }
    for (const [id, pending] of [...this.pending]) {
      this.settle(id);
      pending.reject(error);
    }
  }

  /**
   * The thread's messages arrive in bursts (a group commit answers all its callers
   * at once), and Node hands a burst over in one macrotask: each message resumes
   * a caller, who runs on to its next call. Handled one per event-loop turn, so
   * the host's timers and I/O run between them; a lone message is handled at once.
   */
  private arrived(worker: Worker, message: FromWorker): void {
    if (this.handledThisTurn || this.inbox.length > 0) {
      this.inbox.push({ worker, message });
      return;
    }
    this.handledThisTurn = true;
    setImmediate(this.nextTurn);
    this.receive(worker, message);
  }

  /** Messages waiting for a turn of their own. */
  private readonly inbox: { worker: Worker; message: FromWorker }[] = [];
  private handledThisTurn = false;

  private readonly nextTurn = (): void => {
    const next = this.inbox.shift();
    if (!next) {
      this.handledThisTurn = false;
      return;
    }
    setImmediate(this.nextTurn);
    this.receive(next.worker, next.message);
  };

  private receive(worker: Worker, message: FromWorker): void {
    switch (message.t) {
      case 'loaded':
        return this.plan(worker, message.id, message.item, message.loaded);
      case 'committed': {
        const pending = this.settle(message.id);
        if (pending?.kind !== 'commit') return;
        pending.resolve(
          message.outcomes.map((outcome, item) =>
            outcome.ok
              ? { ok: true, result: pending.decisions[item]!.result, claimed: outcome.claimed }
              : { ok: false, error: outcome.error === undefined ? pending.planErrors[item] : fromWire(outcome.error) },
          ),
        );
        return;
      }
      case 'reply': {
        const pending = this.settle(message.id);
        if (!pending) return;
        if (message.error) pending.reject(fromWire(message.error));
        else if (pending.kind === 'call') pending.resolve(message.value);
        return;
      }
      case 'foreign':
        return this.foreignCommit();
      default:
        return;
    }
  }

  /** Makes one item's plan here, from what the thread loaded, and sends its decision (or that it threw). */
  private plan(worker: Worker, id: number, item: number, loaded: Loaded): void {
    const pending = this.pending.get(id);
    if (pending?.kind !== 'commit') return;
    pending.decisions[item] = undefined;
    pending.planErrors[item] = undefined;
    let decision: Decision<unknown>;
    try {
      decision = pending.plans[item]!(loaded);
    } catch (error) {
      pending.planErrors[item] = error;
      worker.postMessage({ t: 'decision', id, item } satisfies ToWorker);
      return;
    }
    const wire: WireDecision & { result?: unknown } = { ...decision };
    delete wire.result;
    try {
      worker.postMessage({ t: 'decision', id, item, decision: wire } satisfies ToWorker);
      pending.decisions[item] = decision;
    } catch (error) {
      pending.planErrors[item] = new FlowError('invalid_input', `a decision could not be passed to the SQLite thread: ${(error as Error).message}`, { cause: error });
      worker.postMessage({ t: 'decision', id, item } satisfies ToWorker);
    }
  }

  private foreignCommit(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the others still hear of the commit.
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new FlowError('storage', 'the store is closed');
  }
}

/**
 * The worker's script: the compiled `thread.js` beside this file (the package), or,
 * when running from the TypeScript sources (tests, `tsx`), `thread.ts` loaded
 * through tsx (a dev dependency).
 */
function workerScript(): { url: URL } | { source: string } {
  const compiled = new URL('./thread.js', import.meta.url);
  if (existsSync(compiled)) return { url: compiled };
  // On Node 20 a worker's entry point ignores loaders given by `--import`: register tsx first, then import.
  const tsx = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./thread.ts', import.meta.url).href;
  return { source: `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });` };
}

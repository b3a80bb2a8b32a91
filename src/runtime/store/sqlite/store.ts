import type Database from 'better-sqlite3';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { Flow, FlowEvent, FlowStatus, FlowStep } from '../../flow.js';
import type { BatchCommit, BatchOutcome, ClaimedNotification, Committed, Decision, FlowPageRequest, FlowStore, InboxKeySummary, ListOptions, Loaded, LoadRequest, NotificationClaim, ResumeNotification } from '../contract.js';
import type { InspectQueries } from '../inspect.js';
import type { Heartbeat, WaitingKey } from '../diagnostics.js';
import type { SqliteStoreOptions } from './options.js';
import type { GroupPlan, GroupUnit, ItemOutcome } from './group-transaction.js';
import { SqliteConnection, type Connection, type ConnectionSettings } from './connection.js';
import * as commits from './commit.js';
import * as notifications from './notifications.js';
import * as reads from './reads.js';
import * as upkeep from './upkeep.js';

export type { SqliteStoreOptions };

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
  private readonly s: SqliteConnection;

  /** @internal Use `openSqliteStore` (`open.ts`). */
  constructor(connection: Connection, settings: ConnectionSettings) {
    this.s = new SqliteConnection(connection, settings, commits.commitUnits);
  }

  /** The raw connection, for diagnostics such as `EXPLAIN QUERY PLAN`. */
  get sqlite(): Database.Database {
    return this.s.sqlite;
  }

  /** The drizzle database over {@link SqliteFlowStore.sqlite}. */
  get db(): BetterSQLite3Database {
    return this.s.db;
  }

  commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    return commits.commit(this.s, load, plan);
  }

  commitClaiming<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit = Infinity): Promise<Committed<T>> {
    return commits.commitClaiming(this.s, load, plan, leaseUntil, limit);
  }

  commitBatch<T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> {
    return commits.commitBatch(this.s, items, claim);
  }

  /** @internal The worker thread's group commit (see `worker/thread.ts` and `commit.ts`). */
  commitGroup(units: readonly GroupUnit[], plan: GroupPlan): Promise<ItemOutcome[][]> {
    return commits.commitGroup(this.s, units, plan);
  }

  /** @internal What `request` loads now, in one read transaction: the worker store's guess (see `commit.ts`). */
  loadSnapshot(request: LoadRequest): Loaded {
    return commits.loadSnapshot(this.s, request);
  }

  getFlow(id: string): Promise<Flow | undefined> {
    return reads.getFlow(this.s, id);
  }

  listByOwner(owner: string, options: ListOptions = {}): Promise<Flow[]> {
    return reads.listByOwner(this.s, owner, options);
  }

  listByStatus(status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
    return reads.listByStatus(this.s, status, options);
  }

  listSteps(flowId: string): Promise<FlowStep[]> {
    return reads.listSteps(this.s, flowId);
  }

  listEvents(flowId: string): Promise<FlowEvent[]> {
    return reads.listEvents(this.s, flowId);
  }

  lastEvents(flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
    return reads.lastEvents(this.s, flowIds, kind);
  }

  pruneTerminal(cutoff: number): Promise<number> {
    return upkeep.pruneTerminal(this.s, cutoff);
  }

  countByStatus(): Promise<Partial<Record<FlowStatus, number>>> {
    return reads.countByStatus(this.s);
  }

  pageFlows(request: FlowPageRequest): Promise<Flow[]> {
    return reads.pageFlows(this.s, request);
  }

  listWaking(limit: number): Promise<Flow[]> {
    return reads.listWaking(this.s, limit);
  }

  nextWakeAt(): Promise<number | undefined> {
    return reads.nextWakeAt(this.s);
  }

  waitingTopics(): Promise<string[]> {
    return reads.waitingTopics(this.s);
  }

  claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
    return notifications.claimNotifications(this.s, now, leaseMs, limit);
  }

  completeNotifications(claims: readonly NotificationClaim[]): Promise<void> {
    return notifications.completeNotifications(this.s, claims);
  }

  retryNotification(claim: NotificationClaim, dueAt: number, error: string): Promise<boolean> {
    return notifications.retryNotification(this.s, claim, dueAt, error);
  }

  parkNotification(claim: NotificationClaim, at: number, error: string): Promise<boolean> {
    return notifications.parkNotification(this.s, claim, at, error);
  }

  releaseNotifications(claims: readonly NotificationClaim[], now: number): Promise<void> {
    return notifications.releaseNotifications(this.s, claims, now);
  }

  requeueDead(flowId: string, now: number, notificationId?: number): Promise<number> {
    return notifications.requeueDead(this.s, flowId, now, notificationId);
  }

  listNotifications(flowIds: readonly string[]): Promise<ResumeNotification[]> {
    return notifications.listNotifications(this.s, flowIds);
  }

  listDeadNotifications(limit: number): Promise<ResumeNotification[]> {
    return notifications.listDeadNotifications(this.s, limit);
  }

  nextNotificationAt(): Promise<number | undefined> {
    return notifications.nextNotificationAt(this.s);
  }

  recordHeartbeat(beat: Heartbeat, forgetBefore: number): Promise<void> {
    return upkeep.recordHeartbeat(this.s, beat, forgetBefore);
  }

  listHeartbeats(limit: number): Promise<Heartbeat[]> {
    return reads.listHeartbeats(this.s, limit);
  }

  waitingKeys(topic: string, limit: number): Promise<WaitingKey[]> {
    return reads.waitingKeys(this.s, topic, limit);
  }

  listInbox(): Promise<InboxKeySummary[]> {
    return reads.listInbox(this.s);
  }

  purgeExpiredEvents(now: number): Promise<number> {
    return upkeep.purgeExpiredEvents(this.s, now);
  }

  /** Polls `PRAGMA data_version` every few ms while someone listens (one unref'd timer; microseconds a check). */
  watchForeignCommits(listener: () => void): () => void {
    return this.s.watchForeignCommits(listener);
  }

  inspect(): InspectQueries {
    return reads.inspect(this.s);
  }

  /** Writes what was asked for, then closes; every call resolves once the file is closed. */
  close(): Promise<void> {
    return this.s.close();
  }
}

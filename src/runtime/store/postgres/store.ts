import type pg from 'pg';
import type { Flow, FlowEvent, FlowStatus, FlowStep } from '../../flow.js';
import type { BatchCommit, BatchOutcome, ClaimedNotification, Committed, Decision, FlowPageRequest, FlowStore, InboxKeySummary, ListOptions, Loaded, LoadRequest, NotificationClaim, ResumeNotification } from '../contract.js';
import type { InspectQueries } from '../inspect.js';
import type { Heartbeat, WaitingKey } from '../diagnostics.js';
import type { GroupCommitter } from './commit-queue.js';
import { PgConnection, type Db, type PostgresStoreTimeouts } from './connection.js';
import * as commits from './commit.js';
import * as migrations from './migrate.js';
import * as notifications from './notifications.js';
import * as reads from './reads.js';
import * as upkeep from './upkeep.js';

export type { PostgresStoreOptions } from './options.js';
export type { PostgresStoreTimeouts } from './connection.js';

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
  private readonly c: PgConnection;
  /** Commits beyond a few at once share a transaction (see `commit-queue.ts`). */
  private readonly group: GroupCommitter;

  constructor(pool: pg.Pool, ownPool: boolean, timeouts: Partial<PostgresStoreTimeouts> = {}) {
    this.c = new PgConnection(pool, ownPool, timeouts);
    this.group = commits.groupCommitterOf(this.c);
  }

  /** Drizzle over the pool, for queries of your own; the store's calls do not go through it. */
  get db(): Db {
    return this.c.db;
  }

  get pool(): pg.Pool {
    return this.c.pool;
  }

  /** Applies the migrations this version needs; several processes starting at once take turns. */
  migrate(): Promise<void> {
    return migrations.migrate(this.c);
  }

  /** Checks, writing nothing, that the database already holds this version's schema (`migrate: false`). */
  assertMigrated(): Promise<void> {
    return migrations.assertMigrated(this.c);
  }

  commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    return commits.commit(this.c, this.group, load, plan);
  }

  commitClaiming<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit = Infinity): Promise<Committed<T>> {
    return commits.commitClaiming(this.c, this.group, load, plan, leaseUntil, limit);
  }

  /** Several commits in one transaction, a savepoint each (see `commit.ts`). */
  commitBatch<T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> {
    return commits.commitBatch(this.c, items, claim);
  }

  getFlow(id: string): Promise<Flow | undefined> {
    return reads.getFlow(this.c, id);
  }

  listByOwner(owner: string, options: ListOptions = {}): Promise<Flow[]> {
    return reads.listByOwner(this.c, owner, options);
  }

  listByStatus(status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
    return reads.listByStatus(this.c, status, options);
  }

  listSteps(flowId: string): Promise<FlowStep[]> {
    return reads.listSteps(this.c, flowId);
  }

  listEvents(flowId: string): Promise<FlowEvent[]> {
    return reads.listEvents(this.c, flowId);
  }

  lastEvents(flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
    return reads.lastEvents(this.c, flowIds, kind);
  }

  pruneTerminal(cutoff: number): Promise<number> {
    return upkeep.pruneTerminal(this.c, cutoff);
  }

  countByStatus(): Promise<Partial<Record<FlowStatus, number>>> {
    return reads.countByStatus(this.c);
  }

  pageFlows(request: FlowPageRequest): Promise<Flow[]> {
    return reads.pageFlows(this.c, request);
  }

  listWaking(limit: number): Promise<Flow[]> {
    return reads.listWaking(this.c, limit);
  }

  nextWakeAt(): Promise<number | undefined> {
    return reads.nextWakeAt(this.c);
  }

  recordHeartbeat(beat: Heartbeat, forgetBefore: number): Promise<void> {
    return upkeep.recordHeartbeat(this.c, beat, forgetBefore);
  }

  listHeartbeats(limit: number): Promise<Heartbeat[]> {
    return reads.listHeartbeats(this.c, limit);
  }

  waitingKeys(topic: string, limit: number): Promise<WaitingKey[]> {
    return reads.waitingKeys(this.c, topic, limit);
  }

  waitingTopics(): Promise<string[]> {
    return reads.waitingTopics(this.c);
  }

  claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
    return notifications.claimNotifications(this.c, now, leaseMs, limit);
  }

  completeNotifications(claims: readonly NotificationClaim[]): Promise<void> {
    return notifications.completeNotifications(this.c, claims);
  }

  retryNotification(claim: NotificationClaim, dueAt: number, error: string): Promise<boolean> {
    return notifications.retryNotification(this.c, claim, dueAt, error);
  }

  parkNotification(claim: NotificationClaim, at: number, error: string): Promise<boolean> {
    return notifications.parkNotification(this.c, claim, at, error);
  }

  releaseNotifications(claims: readonly NotificationClaim[], now: number): Promise<void> {
    return notifications.releaseNotifications(this.c, claims, now);
  }

  requeueDead(flowId: string, now: number, notificationId?: number): Promise<number> {
    return notifications.requeueDead(this.c, flowId, now, notificationId);
  }

  listNotifications(flowIds: readonly string[]): Promise<ResumeNotification[]> {
    return notifications.listNotifications(this.c, flowIds);
  }

  listDeadNotifications(limit: number): Promise<ResumeNotification[]> {
    return notifications.listDeadNotifications(this.c, limit);
  }

  nextNotificationAt(): Promise<number | undefined> {
    return notifications.nextNotificationAt(this.c);
  }

  listInbox(): Promise<InboxKeySummary[]> {
    return reads.listInbox(this.c);
  }

  purgeExpiredEvents(now: number): Promise<number> {
    return upkeep.purgeExpiredEvents(this.c, now);
  }

  /** `LISTEN`s on one dedicated connection while anyone watches (see {@link PgConnection.watchForeignCommits}). */
  watchForeignCommits(listener: () => void): () => void {
    return this.c.watchForeignCommits(listener);
  }

  inspect(): InspectQueries {
    return reads.inspect(this.c);
  }

  /** Closes within a bounded time whatever the server does (see {@link PgConnection.close}). */
  close(): Promise<void> {
    return this.c.close();
  }
}

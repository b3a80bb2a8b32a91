import type { Decision, Loaded, LoadRequest, NotificationClaim } from '../commit-plan.js';
import type { Flow, FlowEvent, FlowStatus, FlowStep } from '../flow.js';
import type { InboxKeySummary } from '../inbox.js';
import type { DiagnosticStore } from './diagnostics.js';
import type { Wake } from '../wake.js';
import type { InspectQueries } from './inspect.js';
import type { ResumeNotification } from './notification.js';

// The words a store shares with the pure decisions (what a commit loads, what a
// plan writes) are the model's; they are re-exported here, with the contract.
export type { AuditEntry, Decision, FlowWrite, Loaded, LoadRequest, NotificationClaim } from '../commit-plan.js';
export type { InboxKeySummary, KeptEvent } from '../inbox.js';
export type { EventKey } from '../wait-condition.js';
export type { ResumeNotification } from './notification.js';

/** What {@link FlowStore.commitClaiming} returns: the plan's result and the wakes it queued, already claimed. */
export interface Committed<T> {
  result: T;
  claimed: ClaimedNotification[];
}

/** One commit of a {@link FlowStore.commitBatch}: what it loads and its pure plan. */
export interface BatchCommit<T> {
  load: LoadRequest;
  plan: (loaded: Loaded) => Decision<T>;
}

/** What became of one commit of a {@link FlowStore.commitBatch}, in input order. */
export type BatchOutcome<T> = { ok: true; result: T; claimed: ClaimedNotification[] } | { ok: false; error: unknown };

/** A resume notification claimed for delivery until its lease ends. */
export interface ClaimedNotification extends NotificationClaim {
  flowId: string;
  /** The flow as it is now; undefined when it was pruned meanwhile. */
  flow: Flow | undefined;
  wake: Wake;
  attempts: number;
}

/** A keyset page of flows of one status, most recently updated first (the inspector's list). */
export interface FlowPageRequest {
  status: FlowStatus;
  /** The last flow of the previous page: the page starts strictly after it. */
  after?: { updatedAt: number; id: string };
  limit: number;
}

export interface ListOptions {
  status?: FlowStatus;
  limit?: number;
  offset?: number;
}

/**
 * The persistence contract, dialect-neutral and async. Every decision is made by
 * the caller's pure `plan` function inside {@link FlowStore.commit}; the store
 * only loads, locks and writes, so SQLite and PostgreSQL share all the logic.
 */
export interface FlowStore extends DiagnosticStore {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * One transaction: load what `load` names (locking it against other writers,
   * in this process and others), call `plan` once with it, persist its decision.
   * If `plan` throws, nothing is written and the error propagates.
   */
  commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T>;
  /**
   * Like {@link commit}, but the resume notifications the plan queues are claimed
   * by the caller until `leaseUntil`, in the same transaction: the engine hands
   * them to `onResume` at once, with no claim round trip. If the caller dies, the
   * lease expires and any engine delivers them. At most `limit` are claimed (the
   * caller's free handler slots; default all); the others are queued due at once,
   * unclaimed, for whichever engine has room.
   */
  commitClaiming<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit?: number): Promise<Committed<T>>;

  /**
   * Several commits in one transaction (one fsync). Each plan sees what earlier
   * items wrote; a plan that throws or whose write is refused fails only its own
   * item (rolled back to its savepoint). Outcomes in input order. With `claim`,
   * wakes the plans queue are claimed as in {@link commitClaiming} (at most
   * `claim.limit` in all). A storage failure fails the whole batch (the promise
   * rejects): nothing of it was written.
   */
  commitBatch<T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]>;

  getFlow(id: string): Promise<Flow | undefined>;
  listByOwner(owner: string, options?: ListOptions): Promise<Flow[]>;
  listByStatus(status: FlowStatus, options?: ListOptions): Promise<Flow[]>;
  listSteps(flowId: string): Promise<FlowStep[]>;
  listEvents(flowId: string): Promise<FlowEvent[]>;
  /** The most recent audit event of `kind` of each flow that has one, by flow id, in one round trip. */
  lastEvents(flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>>;
  /** Deletes terminal flows (with steps, events, notifications) last updated at or before `cutoff`. */
  pruneTerminal(cutoff: number): Promise<number>;
  /** How many flows each status holds (statuses with none are absent). */
  countByStatus(): Promise<Partial<Record<FlowStatus, number>>>;
  /** A keyset page of flows of one status, most recently updated first, on `flows_status_updated`: as fast at page 10,000 as at page 1 (ties in `updatedAt` keep one store-defined order). */
  pageFlows(request: FlowPageRequest): Promise<Flow[]>;
  /** Waiting flows with a wake time (timers and timeouts), soonest first, at most `limit`. */
  listWaking(limit: number): Promise<Flow[]>;
  /** The earliest wake time among waiting flows. */
  nextWakeAt(): Promise<number | undefined>;
  /**
   * The distinct topics that waiting flows' event waits name (the NATS bridge
   * covers them on start). A loose scan of `flows_status_topic_correlation`:
   * one index seek per distinct topic, never a read of every waiting flow.
   */
  waitingTopics(): Promise<string[]>;

  /**
   * Claims up to `limit` due notifications that are not dead, pushing their due
   * time to `now + lease` (the claim's `leaseUntil`) and counting an attempt.
   */
  claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]>;
  /** Removes delivered notifications still held by these claims, in one transaction. */
  completeNotifications(claims: readonly NotificationClaim[]): Promise<void>;
  /** Reschedules a failed delivery at `dueAt`, recording its error, if the claim still holds it; false when it does not. */
  retryNotification(claim: NotificationClaim, dueAt: number, error: string): Promise<boolean>;
  /** Parks a notification as dead at `at` with its last error, if the claim still holds it: it is no longer claimed until requeued. */
  parkNotification(claim: NotificationClaim, at: number, error: string): Promise<boolean>;
  /**
   * Gives back claims whose handler never started (claimed ahead, then the engine
   * stopped or the lease ran short): each still held is due again at `now`, and
   * the attempt its claim counted is taken back. One transaction.
   */
  releaseNotifications(claims: readonly NotificationClaim[], now: number): Promise<void>;
  /**
   * Puts a flow's dead notifications (or only the one with `notificationId`) back
   * in the queue, due at `now`, with their attempts reset; returns how many.
   */
  requeueDead(flowId: string, now: number, notificationId?: number): Promise<number>;
  /** The queued notifications (live and dead) of these flows, oldest first. */
  listNotifications(flowIds: readonly string[]): Promise<ResumeNotification[]>;
  /** Dead notifications, most recently parked first, at most `limit`. */
  listDeadNotifications(limit: number): Promise<ResumeNotification[]>;
  /** The earliest due time among notifications that are not dead. */
  nextNotificationAt(): Promise<number | undefined>;
  /** Kept events grouped by key, oldest first (bounded by the inbox cap; operators only). */
  listInbox(): Promise<InboxKeySummary[]>;
  /** Drops expired kept events and remembered event ids; returns how many rows went. */
  purgeExpiredEvents(now: number): Promise<number>;

  /**
   * Calls `listener` soon after a write committed by another connection or
   * process (another handle on the same SQLite file, another engine on the same
   * PostgreSQL database, the CLI), so the engine re-arms and delivers within
   * milliseconds instead of at its next sweep. Writes through this store object
   * need not be reported (`observeCommits` sees those). Returns an unsubscribe.
   * SQLite: a cheap `PRAGMA data_version` check; PostgreSQL: `LISTEN/NOTIFY`.
   */
  watchForeignCommits(listener: () => void): () => void;

  /** The web inspector's bounded read queries (`store/inspect.ts`); absent on a store that has none. */
  inspect?(): InspectQueries;

  close(): Promise<void>;
}

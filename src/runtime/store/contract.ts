import type { Flow, FlowEvent, FlowEventKind, FlowStatus, FlowStep, JsonObject } from '../flow.js';
import type { InboxFill } from '../inbox.js';
import type { DiagnosticStore } from './diagnostics.js';
import type { Wake } from '../wake.js';
import type { InspectQueries } from './inspect.js';

/** An audit event about to be appended; it takes the flow's `updatedAt` as its time. */
export interface AuditEntry {
  kind: FlowEventKind;
  payload: JsonObject;
}

/** A new version of a flow, written only if the stored revision is still `fromRevision`. */
export interface FlowWrite {
  flow: Flow;
  fromRevision: number;
  /** Appended in order; the flow's revision grows by exactly their number. */
  events: AuditEntry[];
  /** Queues a resume notification for the `onResume` handler. */
  wake?: Wake;
  /** `flow.state` as JSON, when the caller already serialised it (to check its size). */
  stateJson?: string;
  /**
   * The write sets or clears an any-of wait: the store replaces the flow's rows
   * in `flow_wait_keys` (its event keys while it waits) in the same transaction.
   */
  rekeys?: boolean;
}

/** An event kept because no flow waited on its key when it arrived. */
export interface KeptEvent {
  id: number;
  topic: string;
  correlationId: string;
  eventId: string | null;
  payload: unknown;
  receivedAt: Date;
}

export interface EventKey {
  topic: string;
  correlationId: string;
}

/** The kept events of one key, for operators (`taskflow inbox`). */
export interface InboxKeySummary extends EventKey {
  /** How many events are kept for this key. */
  events: number;
  oldestAt: Date;
  newestAt: Date;
  /** When the oldest of them expires. */
  expiresAt: Date;
}

/**
 * What a commit reads, under the same lock as its writes. Each part is answered by an index.
 */
export interface LoadRequest {
  /** Flows by id (unknown ids are simply absent). */
  flowIds?: readonly string[];
  /** Waiting flows whose wake time is at or before `now`, oldest first, at most `limit`. */
  due?: { now: number; limit: number };
  /** Waiting flows on this event key: single event waits (`flows_status_topic_correlation`) and any-of waits (`flow_wait_keys_key`). */
  waitingOn?: EventKey;
  /**
   * With `waitingOn`: how many events the inbox keeps for that key and in all,
   * counted by index. Answered only when no flow waits on the key, the only case
   * in which a plan may keep the event.
   */
  inboxFill?: boolean;
  /** The oldest unexpired kept event for this key. */
  keptEventFor?: EventKey & { now: number };
  /** The oldest (first received) unexpired kept event for any of these keys (an any-of wait parking). */
  keptEventForAny?: { keys: readonly EventKey[]; now: number };
  /**
   * Whether this event id was seen on the topic of `waitingOn` (the event this
   * commit delivers) and has not expired. An event id is unique per topic: the
   * same id on another topic is another event (`seen-events.ts`).
   */
  eventId?: { id: string; now: number };
  /** The flow an owner created with this idempotency key. */
  idempotency?: { owner: string; key: string };
  /** The step recorded for this run of a flow. */
  step?: { flowId: string; runId: string };
}

export interface Loaded {
  flows: Flow[];
  keptEvent?: KeptEvent;
  /** See {@link LoadRequest.inboxFill}. */
  inbox?: InboxFill;
  eventSeen: boolean;
  idempotent?: Flow;
  step?: FlowStep;
}

/** What a commit writes, decided purely from what it loaded. */
export interface Decision<T> {
  result: T;
  inserts?: { flow: Flow; idempotencyKey?: string; event: AuditEntry; stateJson?: string }[];
  writes?: FlowWrite[];
  upsertStep?: FlowStep;
  keepEvent?: { key: EventKey; eventId?: string; payload: unknown; receivedAt: Date; expiresAt: Date };
  consumeKeptEvent?: number;
  /** Remembers the id of the event this commit delivers, on its topic: the topic of the load's `waitingOn` (`seen-events.ts`). */
  rememberEventId?: { id: string; expiresAt: Date };
  /** Delivered notifications to remove in the same transaction (saves a commit of their own). */
  completeNotifications?: readonly number[];
}

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
export interface ClaimedNotification {
  id: number;
  flowId: string;
  /** The flow as it is now; undefined when it was pruned meanwhile. */
  flow: Flow | undefined;
  wake: Wake;
  attempts: number;
}

/** A queued resume notification as operators see it (`taskflow show`, `taskflow list --dead`). */
export interface ResumeNotification {
  id: number;
  flowId: string;
  wake: Wake;
  /** Next delivery time: when queued, the lease end while claimed, the retry time after a failure. */
  dueAt: Date;
  /** Deliveries started so far (claims). */
  attempts: number;
  /** The handler's last failure, if any. */
  lastError: string | null;
  /** When it was parked as dead (after `maxResumeAttempts`); a dead notification is never claimed. */
  deadAt: Date | null;
  createdAt: Date;
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

  /** Claims up to `limit` due notifications that are not dead, pushing their due time to `now + lease`. */
  claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]>;
  /** Removes delivered notifications, in one transaction. */
  completeNotifications(ids: readonly number[]): Promise<void>;
  /** Reschedules a failed delivery at `dueAt`, recording its error. */
  retryNotification(id: number, dueAt: number, error: string): Promise<void>;
  /** Parks a notification as dead at `at` with its last error: it is no longer claimed until requeued. */
  parkNotification(id: number, at: number, error: string): Promise<void>;
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

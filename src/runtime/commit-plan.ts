import type { Flow, FlowEventKind, FlowStep } from './flow.js';
import type { InboxFill, KeptEvent } from './inbox.js';
import type { JsonObject } from './json.js';
import type { EventKey } from './wait-condition.js';
import type { Wake } from './wake.js';

// What a commit loads, and what a pure plan decides to write from it: the words
// between the decisions (moves, any-of, recurring, start-or-deliver) and the
// stores, which only load, lock and write (`commit(load, plan)`).

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
   * Whether this event id was seen on this topic and has not expired. An event id
   * is unique per topic: the same id on another topic is another event.
   */
  eventId?: { topic: string; id: string; now: number };
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
  /** Remembers the id of the event this commit delivers, on its topic (ids are unique per topic). */
  rememberEventId?: { topic: string; id: string; expiresAt: Date };
  /** Delivered notifications to remove in the same transaction (saves a commit of their own); only those still held by their claim go. */
  completeNotifications?: readonly NotificationClaim[];
}

/**
 * The claim an engine holds on a notification: its id and the lease end it was
 * claimed until. A later claim (after the lease ended) always has a later lease
 * end, so the pair names one claim: completing, retrying, parking or releasing
 * it acts only while the notification is still held by that claim, never on a
 * claim another engine took since.
 */
export interface NotificationClaim {
  id: number;
  leaseUntil: number;
}


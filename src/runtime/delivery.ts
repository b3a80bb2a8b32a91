import type { InboxDrop } from './inbox.js';
import type { Flow } from './flow.js';
import type { Wake } from './wake.js';

/** Called once per resume, at least once, until it resolves. Throw to have it retried with backoff. */
export type ResumeHandler = (flow: Flow, wake: Wake) => Promise<void> | void;

/** Counters of one {@link WaitEngine.tick}. */
export interface TickResult {
  /** Flows resumed because their timer was due. */
  resumed: number;
  /** Waiting flows with a cancel request that were cancelled. */
  cancelled: number;
  /** Flows resumed because their event or manual wait timed out. */
  timedOut: number;
  errors: number;
}

/** An external event for {@link WaitEngine.deliver}. */
export interface EventDelivery {
  topic: string;
  correlationId: string;
  payload?: unknown;
  /**
   * A stable id, unique per topic: a second delivery with the same id on the
   * same topic (within the retention) does nothing. The same id on another
   * topic is another event and is delivered (producers need not coordinate
   * ids across topics). The NATS bridge passes a message's `Nats-Msg-Id` here
   * (from JetStream, without one: its stream and sequence).
   */
  eventId?: string;
  /**
   * When set, only this flow may resume, and only if it waits on (topic,
   * correlationId); otherwise nothing resumes and the event is not kept.
   */
  flowId?: string;
}

/** What became of a delivered event. */
export interface DeliveryResult {
  /** Ids of the flows the event resumed. */
  resumed: string[];
  /** True when no flow waited: the event is kept in the inbox for a later wait. */
  kept: boolean;
  /** True when the event id was seen before: nothing happened. */
  duplicate: boolean;
  /** Set when no flow waited and the inbox was full for the key or in all: the event was dropped (its id not remembered). */
  dropped?: InboxDrop;
}

/** What became of one event of {@link WaitEngine.deliverBatch}: its result, or why it alone was refused. */
export type DeliveryOutcome = { ok: true; result: DeliveryResult } | { ok: false; error: unknown };

/** A manual signal for {@link WaitEngine.signal}. */
export interface SignalInput {
  /** Must match the wait's signal name when the wait names one. */
  signal?: string;
  payload?: unknown;
}

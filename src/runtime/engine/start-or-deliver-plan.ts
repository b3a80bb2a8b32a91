import { FlowError } from '../errors.js';
import type { Flow } from '../flow.js';
import { inboxDrop, type InboxLimits, type KeptEvent } from '../inbox.js';
import { chain, resumeMove, startMove, waitMove } from '../moves.js';
import { createInsert, type PreparedFlow } from '../prepared-flow.js';
import type { Decision, FlowWrite, Loaded, LoadRequest } from '../commit-plan.js';
import { sizedWrite } from '../validate.js';
import type { EventKey, WaitCondition } from '../wait-condition.js';
import type { Wake } from '../wake.js';
import { eventKeysOf, eventWakeFor, waitsOnKey } from '../any-of.js';
import type { DeliveryResult } from '../delivery.js';

/** A checked event, as {@link planStartOrDeliver} takes it. */
export interface CheckedEvent extends EventKey {
  payload?: unknown;
  eventId?: string;
}

/** Everything `tf.startOrDeliver` checked before its one commit. */
export interface PreparedStartOrDeliver {
  /** The flow to insert when the owner has none with its idempotency key (which it must carry). */
  prepared: PreparedFlow & { idempotencyKey: string };
  /** The wait the new flow starts in: by default, its event's own key. */
  wait: WaitCondition;
  event: CheckedEvent;
}

/** What {@link WaitEngine.startOrDeliver} did. */
export interface StartOrDeliverResult {
  /** The flow of the idempotency key, as this call left it (resumed at once when it took the event). */
  flow: Flow;
  /** True when this call created the flow; false when it existed already (open or not). */
  started: boolean;
  /** What became of the event, as `engine.deliver` reports it; `resumed` includes the new flow when it took it. */
  delivery: DeliveryResult;
}

/**
 * The one load of a start-or-deliver: the key's flow, the flows waiting on the
 * event's key, its inbox fill, and the oldest event kept for a key of the first
 * wait (the event's own key, or any key of an any-of wait). On PostgreSQL the
 * load locks every one of these keys.
 */
export function startOrDeliverLoad(input: PreparedStartOrDeliver, now: number): LoadRequest {
  const { event, prepared, wait } = input;
  const key = { topic: event.topic, correlationId: event.correlationId };
  const keys = eventKeysOf(wait);
  return {
    idempotency: { owner: prepared.flow.ownerSessionKey, key: prepared.idempotencyKey },
    waitingOn: key,
    inboxFill: true,
    ...(wait.kind === 'any' ? (keys.length > 0 ? { keptEventForAny: { keys, now } } : {}) : keys.length > 0 ? { keptEventFor: { ...keys[0]!, now } } : {}),
    ...(event.eventId === undefined ? {} : { eventId: { topic: event.topic, id: event.eventId, now } }),
  };
}

/**
 * Refuses a first wait the one commit cannot serve: a single event wait on
 * another key than the event's. An any-of wait may name any keys: the commit
 * loads and locks them all.
 */
export function checkFirstWait(wait: WaitCondition, key: EventKey): void {
  if (wait.kind === 'external_event' && !waitsOnKey(wait, key)) {
    throw new FlowError(
      'invalid_input',
      `a flow started by startOrDeliver may wait on its event's own key (${key.topic}/${key.correlationId}), a timer, a signal or the first of several, not on ${wait.topic}/${wait.correlationId} alone: set that wait once the flow runs, or list it in an any-of wait`,
    );
  }
}

function eventWake(now: Date, key: EventKey, payload: unknown): Wake {
  const wake: Wake = { reason: 'event', at: now, topic: key.topic, correlationId: key.correlationId };
  if (payload !== undefined) wake.payload = payload;
  return wake;
}

/**
 * The decision of one start-or-deliver, from what its commit loaded. In order:
 *
 * 1. No flow has the owner's idempotency key: the prepared flow is inserted
 *    (`created`), started and parked on its first wait, as `setWaiting` would: a
 *    wait on event keys (the event's own, or those of an any-of wait) first takes
 *    the oldest event the inbox keeps for one of them.
 * 2. The event is delivered by its key as `engine.deliver` does: it resumes every
 *    flow waiting on the key (the new one among them, when it still waits there;
 *    an any-of wait's wake says which condition won); when none waits it is kept
 *    in the inbox (or dropped when the inbox is full); a seen `eventId` does nothing.
 */
export function planStartOrDeliver(
  input: PreparedStartOrDeliver,
  loaded: Loaded,
  nowMs: number,
  rules: { retention: number; inbox: InboxLimits; stateLimit: number },
): Decision<StartOrDeliverResult> {
  const { event, prepared, wait } = input;
  const now = new Date(nowMs);
  const key: EventKey = { topic: event.topic, correlationId: event.correlationId };
  const decision: Decision<StartOrDeliverResult> = { result: undefined as unknown as StartOrDeliverResult };
  let newWrite: FlowWrite | undefined;
  const kept: KeptEvent | undefined = loaded.keptEvent;
  /** The new flow took an event kept for the event's own key (one fewer kept for it). */
  let consumedForKey = false;
  if (!loaded.idempotent) {
    const born = { ...prepared.flow, createdAt: now, updatedAt: now };
    decision.inserts = [createInsert(born, prepared.idempotencyKey, prepared.stateJson)];
    newWrite = chain(startMove(born, now), (running) => waitMove(running, now, wait));
    if (kept && waitsOnKey(wait, kept)) {
      const wake = eventWakeFor(wait, eventWake(now, kept, kept.payload));
      newWrite = sizedWrite(chain(newWrite, (waiting) => resumeMove(waiting, now, wake)), born.state, rules.stateLimit, 'the kept event waiting on this key');
      decision.consumeKeptEvent = kept.id;
      consumedForKey = kept.topic === key.topic && kept.correlationId === key.correlationId;
    }
  }
  const delivery: DeliveryResult = { resumed: [], kept: false, duplicate: false };
  const writes: FlowWrite[] = [];
  if (loaded.eventSeen) {
    delivery.duplicate = true;
  } else {
    const newWaits = newWrite !== undefined && newWrite.flow.status === 'waiting' && waitsOnKey(wait, key);
    const waiting = loaded.flows;
    if (waiting.length === 0 && !newWaits) {
      // Nobody waits: kept for a later wait, unless the key or the inbox is full.
      const consumed = decision.consumeKeptEvent === undefined ? 0 : 1;
      const fill = loaded.inbox ?? { forKey: 0, total: 0 };
      const dropped = inboxDrop({ forKey: fill.forKey - (consumedForKey ? 1 : 0), total: fill.total - consumed }, rules.inbox);
      if (dropped) delivery.dropped = dropped;
      else {
        const expiresAt = new Date(nowMs + rules.retention);
        decision.keepEvent = { key, payload: event.payload, receivedAt: now, expiresAt, ...(event.eventId ? { eventId: event.eventId } : {}) };
        delivery.kept = true;
        if (event.eventId) decision.rememberEventId = { topic: event.topic, id: event.eventId, expiresAt };
      }
    } else {
      const wake = eventWake(now, key, event.payload);
      for (const flow of waiting) {
        writes.push(sizedWrite(resumeMove(flow, now, eventWakeFor(flow.wait, wake)), flow.state, rules.stateLimit, 'the event payload'));
        delivery.resumed.push(flow.id);
      }
      if (newWaits && newWrite) {
        newWrite = sizedWrite(chain(newWrite, (waitingFlow) => resumeMove(waitingFlow, now, eventWakeFor(wait, wake))), prepared.flow.state, rules.stateLimit, 'the event payload');
        delivery.resumed.push(newWrite.flow.id);
      }
      if (event.eventId) decision.rememberEventId = { topic: event.topic, id: event.eventId, expiresAt: new Date(nowMs + rules.retention) };
    }
  }
  if (newWrite) writes.unshift(newWrite);
  if (writes.length > 0) decision.writes = writes;
  const existing = loaded.idempotent;
  const flow = newWrite?.flow ?? writes.find((w) => w.flow.id === existing?.id)?.flow ?? existing!;
  decision.result = { flow, started: newWrite !== undefined, delivery };
  return decision;
}

import { FlowError } from '../errors.js';
import type { Flow } from '../flow.js';
import { inboxDrop, type InboxLimits, type KeptEvent } from '../inbox.js';
import { chain, resumeMove, startMove, waitMove } from '../moves.js';
import { createInsert, type PreparedFlow } from '../prepared-flow.js';
import type { Decision, FlowWrite, Loaded, LoadRequest } from '../commit-plan.js';
import { sizedWrite } from '../validate.js';
import type { EventKey, WaitCondition } from '../wait-condition.js';
import type { Wake } from '../wake.js';
import { eventWakeFor } from '../any-of.js';
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

/** The one load of a start-or-deliver: the key's flow, the flows waiting on the event's key, its inbox. */
export function startOrDeliverLoad(input: PreparedStartOrDeliver, now: number): LoadRequest {
  const { event, prepared } = input;
  const key = { topic: event.topic, correlationId: event.correlationId };
  return {
    idempotency: { owner: prepared.flow.ownerSessionKey, key: prepared.idempotencyKey },
    waitingOn: key,
    inboxFill: true,
    keptEventFor: { ...key, now },
    ...(event.eventId === undefined ? {} : { eventId: { id: event.eventId, now } }),
  };
}

/** Whether a wait is on this event key (the only event wait a new flow may start in). */
export function waitsOn(wait: WaitCondition, key: EventKey): boolean {
  return wait.kind === 'external_event' && wait.topic === key.topic && wait.correlationId === key.correlationId;
}

/** Refuses a first wait the one commit cannot serve: an event wait on another key than the event's. */
export function checkFirstWait(wait: WaitCondition, key: EventKey): void {
  if (wait.kind === 'external_event' && !waitsOn(wait, key)) {
    throw new FlowError(
      'invalid_input',
      `a flow started by startOrDeliver may wait on its event's own key (${key.topic}/${key.correlationId}), a timer or a signal, not on ${wait.topic}/${wait.correlationId}: set that wait once the flow runs`,
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
 *    wait on the event's key first takes the oldest event the inbox keeps for it.
 * 2. The event is delivered by its key as `engine.deliver` does: it resumes every
 *    flow waiting on the key (the new one among them, when it still waits there);
 *    when none waits it is kept in the inbox (or dropped when the inbox is full); a
 *    seen `eventId` does nothing.
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
  let kept: KeptEvent | undefined = loaded.keptEvent;
  if (!loaded.idempotent) {
    const born = { ...prepared.flow, createdAt: now, updatedAt: now };
    decision.inserts = [createInsert(born, prepared.idempotencyKey, prepared.stateJson)];
    newWrite = chain(startMove(born, now), (running) => waitMove(running, now, wait));
    if (kept && waitsOn(wait, key)) {
      const early = kept;
      newWrite = sizedWrite(chain(newWrite, (waiting) => resumeMove(waiting, now, eventWake(now, key, early.payload))), born.state, rules.stateLimit, 'the kept event waiting on this key');
      decision.consumeKeptEvent = early.id;
      kept = undefined;
    }
  }
  const delivery: DeliveryResult = { resumed: [], kept: false, duplicate: false };
  const writes: FlowWrite[] = [];
  if (loaded.eventSeen) {
    delivery.duplicate = true;
  } else {
    const newWaits = newWrite !== undefined && newWrite.flow.status === 'waiting' && waitsOn(wait, key);
    const waiting = loaded.flows;
    if (waiting.length === 0 && !newWaits) {
      // Nobody waits: kept for a later wait, unless the key or the inbox is full.
      const consumed = decision.consumeKeptEvent === undefined ? 0 : 1;
      const fill = loaded.inbox ?? { forKey: 0, total: 0 };
      const dropped = inboxDrop({ forKey: fill.forKey - consumed, total: fill.total - consumed }, rules.inbox);
      if (dropped) delivery.dropped = dropped;
      else {
        const expiresAt = new Date(nowMs + rules.retention);
        decision.keepEvent = { key, payload: event.payload, receivedAt: now, expiresAt, ...(event.eventId ? { eventId: event.eventId } : {}) };
        delivery.kept = true;
        if (event.eventId) decision.rememberEventId = { id: event.eventId, expiresAt };
      }
    } else {
      const wake = eventWake(now, key, event.payload);
      for (const flow of waiting) {
        writes.push(sizedWrite(resumeMove(flow, now, eventWakeFor(flow.wait, wake)), flow.state, rules.stateLimit, 'the event payload'));
        delivery.resumed.push(flow.id);
      }
      if (newWaits && newWrite) {
        newWrite = sizedWrite(chain(newWrite, (waitingFlow) => resumeMove(waitingFlow, now, wake)), prepared.flow.state, rules.stateLimit, 'the event payload');
        delivery.resumed.push(newWrite.flow.id);
      }
      if (event.eventId) decision.rememberEventId = { id: event.eventId, expiresAt: new Date(nowMs + rules.retention) };
    }
  }
  if (newWrite) writes.unshift(newWrite);
  if (writes.length > 0) decision.writes = writes;
  const existing = loaded.idempotent;
  const flow = newWrite?.flow ?? writes.find((w) => w.flow.id === existing?.id)?.flow ?? existing!;
  decision.result = { flow, started: newWrite !== undefined, delivery };
  return decision;
}

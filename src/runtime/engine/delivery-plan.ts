import { eventWakeFor, signalConditionFor } from '../any-of.js';
import { FlowError } from '../errors.js';
import type { Flow } from '../flow.js';
import { inboxDrop, type InboxLimits } from '../inbox.js';
import { resumeMove } from '../moves.js';
import type { Decision, Loaded, LoadRequest } from '../commit-plan.js';
import type { EventKey } from '../wait-condition.js';
import { normaliseKey, optionalKey, readInput } from '../text.js';
import { checkFlowId, checkJsonValue, inputObject, optionsObject, sizedWrite } from '../validate.js';
import type { Wake } from '../wake.js';
import type { DeliveryResult, EventDelivery, SignalInput } from '../delivery.js';

/** The rules a delivery is planned under. */
export interface DeliveryRules {
  stateLimit: number;
  /** How long a kept event and a remembered event id live, in ms. */
  retention: number;
  inbox: InboxLimits;
}

/** A checked event's one commit: what it loads and its pure plan. */
export interface PlannedDelivery {
  key: EventKey;
  load: LoadRequest;
  plan: (loaded: Loaded) => Decision<DeliveryResult>;
}

/**
 * Checks an event (throws `invalid_input` for a malformed one) and plans its
 * delivery: every flow waiting on its key resumes (only `flowId` when named);
 * with none, it is kept in the inbox unless the inbox is full; a seen event id
 * does nothing.
 */
export function planDelivery(event: EventDelivery, rules: DeliveryRules, nowMs: number): PlannedDelivery {
  const { topic, correlationId, eventId, onlyFlow, payload } = readInput('event', () => {
    const e = inputObject(event, 'event');
    return {
      topic: normaliseKey(e.topic, 'topic'),
      correlationId: normaliseKey(e.correlationId, 'correlationId'),
      eventId: optionalKey(e.eventId, 'eventId'),
      onlyFlow: optionalKey(e.flowId, 'flowId')?.toLowerCase(),
      payload: checkJsonValue(e.payload, rules.stateLimit, 'the event payload')?.value,
    };
  });
  const now = new Date(nowMs);
  const expiresAt = new Date(nowMs + rules.retention);
  const key = { topic, correlationId };
  const load: LoadRequest = { waitingOn: key, inboxFill: true, ...(eventId ? { eventId: { topic, id: eventId, now: nowMs } } : {}) };
  const plan = (loaded: Loaded): Decision<DeliveryResult> => {
    if (loaded.eventSeen) return { result: { resumed: [], kept: false, duplicate: true } };
    const dropped = loaded.flows.length === 0 && loaded.inbox ? inboxDrop(loaded.inbox, rules.inbox) : undefined;
    if (dropped) return { result: { resumed: [], kept: false, duplicate: false, dropped } };
    const decision: Decision<DeliveryResult> = { result: { resumed: [], kept: false, duplicate: false } };
    if (eventId) decision.rememberEventId = { topic, id: eventId, expiresAt };
    // An event naming its flow is for that flow alone: never kept for another waiter.
    const flows = onlyFlow === undefined ? loaded.flows : loaded.flows.filter((flow) => flow.id === onlyFlow);
    if (onlyFlow !== undefined && flows.length === 0) return decision;
    if (flows.length === 0) {
      decision.keepEvent = { key, payload, receivedAt: now, expiresAt, ...(eventId ? { eventId } : {}) };
      decision.result.kept = true;
      return decision;
    }
    const wake: Wake = { reason: 'event', at: now, topic, correlationId };
    if (payload !== undefined) wake.payload = payload;
    // One flow whose state the payload would take over the limit refuses the whole delivery (invalid_input).
    decision.writes = flows.map((flow) => sizedWrite(resumeMove(flow, now, eventWakeFor(flow.wait, wake)), flow.state, rules.stateLimit, 'the event payload'));
    decision.result.resumed = flows.map((flow) => flow.id);
    return decision;
  };
  return { key, load, plan };
}

/** A checked signal's one commit. */
export interface PlannedSignal {
  load: LoadRequest;
  plan: (loaded: Loaded) => Decision<Flow>;
}

/**
 * Checks a signal and plans it: it resumes a flow on a manual wait (only by the
 * wait's name, when it names one) or on an any-of wait with that signal among its
 * conditions; anything else is refused.
 */
export function planSignal(flowId: string, input: SignalInput, stateLimit: number, nowMs: number): PlannedSignal {
  const id = checkFlowId(flowId);
  const { name, payload } = readInput('signal input', () => {
    const i = optionsObject(input, 'signal input');
    return { name: optionalKey(i.signal, 'signal'), payload: checkJsonValue(i.payload, stateLimit, 'the signal payload')?.value };
  });
  const now = new Date(nowMs);
  const plan = (loaded: Loaded): Decision<Flow> => {
    const current = loaded.flows[0];
    if (!current) throw new FlowError('not_found', `no flow with id ${id}`);
    if (current.status !== 'waiting' || !current.wait) {
      throw new FlowError('illegal_transition', `flow ${id} is ${current.status}, not waiting: a signal cannot resume it`);
    }
    const wait = current.wait;
    // An any-of wait: the signal must be one of its conditions, which then wins.
    const condition = wait.kind === 'any' ? signalConditionFor(id, wait, name) : undefined;
    if (wait.kind !== 'manual' && wait.kind !== 'any') {
      throw new FlowError('invalid_input', `flow ${id} waits for ${wait.kind === 'timer' ? 'a timer' : wait.kind === 'recurring' ? 'an occurrence of its schedule' : 'an external event'}, not a signal`);
    }
    if (wait.kind === 'manual' && wait.signal !== undefined && wait.signal !== name) {
      throw new FlowError('invalid_input', `flow ${id} waits for the signal "${wait.signal}", not ${name === undefined ? 'an unnamed one' : `"${name}"`}`);
    }
    const wake: Wake = { reason: 'signal', at: now };
    if (name !== undefined) wake.signal = name;
    if (payload !== undefined) wake.payload = payload;
    if (condition !== undefined) wake.condition = condition;
    const write = sizedWrite(resumeMove(current, now, wake), current.state, stateLimit, 'the signal payload');
    return { result: write.flow, writes: [write] };
  };
  return { load: { flowIds: [id] }, plan };
}

import type { EventDelivery, WaitEngine } from './engine/engine.js';
import type { PreparedStartOrDeliver, StartOrDeliverResult } from './engine/start-or-deliver-plan.js';
import { FlowError } from './errors.js';
import type { CreateFlowInput, FlowManager } from './manager.js';
import { normaliseKey, optionalKey, readInput } from './text.js';
import { checkJsonValue, inputObject } from './validate.js';
import type { WaitCondition, WaitInput } from './wait.js';

export type { StartOrDeliverResult } from './engine/start-or-deliver-plan.js';

/** Input of `tf.startOrDeliver`. */
export interface StartOrDeliverInput {
  /** The owner (session key) of the flow to start. */
  owner: string;
  /** Names the flow: unique per owner, as for `createManaged`. */
  idempotencyKey: string;
  /** The flow to start when the owner has none with this key: `createManaged`'s input without owner and key. */
  flow: Omit<CreateFlowInput, 'ownerSessionKey' | 'idempotencyKey'>;
  /**
   * The wait a new flow starts in. Default: the event's own key, so a new flow
   * resumes at once with the event (and `onResume` runs it). A timer or a manual
   * wait parks the new flow there, and the event is kept in the inbox until it
   * waits on the event's key. An any-of wait that names the event's key resumes
   * at once too (its wake says which condition won); any key of it with an event
   * in the inbox resumes it with the oldest such event, as `setWaiting` does. A
   * single event wait on another key is refused.
   */
  wait?: WaitInput;
  /** The event, delivered by its (topic, correlation id) as `engine.deliver` does. */
  event: Omit<EventDelivery, 'flowId'>;
}

/** Checks the input of `tf.startOrDeliver`; refuses bad input with `invalid_input`, writing nothing. */
export function prepareStartOrDeliver(manager: FlowManager, input: StartOrDeliverInput, stateLimit: number): PreparedStartOrDeliver {
  const raw = readInput('startOrDeliver input', () => {
    const i = inputObject(input, 'startOrDeliver input');
    const e = inputObject(i.event, 'event');
    const f = inputObject(i.flow, 'flow');
    const eventId = optionalKey(e.eventId, 'eventId');
    const payload = checkJsonValue(e.payload, stateLimit, 'the event payload')?.value;
    return {
      owner: normaliseKey(i.owner, 'ownerSessionKey'),
      idempotencyKey: normaliseKey(i.idempotencyKey, 'idempotencyKey'),
      flow: f,
      wait: i.wait as WaitInput | undefined,
      event: {
        topic: normaliseKey(e.topic, 'topic'),
        correlationId: normaliseKey(e.correlationId, 'correlationId'),
        ...(eventId === undefined ? {} : { eventId }),
        ...(payload === undefined ? {} : { payload }),
      },
    };
  });
  if (raw.flow.ownerSessionKey !== undefined || raw.flow.idempotencyKey !== undefined) {
    throw new FlowError('invalid_input', 'invalid startOrDeliver input: flow takes no ownerSessionKey or idempotencyKey; give owner and idempotencyKey beside it');
  }
  const prepared = manager.prepareCreate({ ...(raw.flow as unknown as CreateFlowInput), ownerSessionKey: raw.owner, idempotencyKey: raw.idempotencyKey }, 'created');
  const wait: WaitCondition =
    raw.wait === undefined ? { kind: 'external_event', topic: raw.event.topic, correlationId: raw.event.correlationId } : manager.prepareWait(raw.wait);
  return { prepared: { ...prepared, idempotencyKey: raw.idempotencyKey }, wait, event: raw.event };
}

/**
 * Starts the flow of an idempotency key if its owner has none, and delivers an
 * event, in ONE store commit (see `tf.startOrDeliver`).
 */
export async function startOrDeliver(manager: FlowManager, engine: WaitEngine, input: StartOrDeliverInput, stateLimit: number): Promise<StartOrDeliverResult> {
  return engine.startOrDeliver(prepareStartOrDeliver(manager, input, stateLimit));
}

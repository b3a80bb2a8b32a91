import { FlowError } from './errors.js';
import { parseInstant } from './instant.js';
import { describeValue, normaliseKey } from './text.js';
import type { AnyOfCondition, AnyOfWait, EventKey, WaitCondition } from './wait-condition.js';
import type { Wake, WakeCondition } from './wake.js';

/** The most conditions one any-of wait may hold. */
export const MAX_ANY_OF = 16;

/**
 * Reads the conditions of an any-of wait (`{ kind: 'any', of: [...] }`): 1 to
 * {@link MAX_ANY_OF} of them, each a timer (`at`), an event (`topic`,
 * `correlationId`) or a named signal (`signal`); no timeouts inside (a timer
 * condition is the deadline), no nesting, at most one timer, no condition twice.
 * Throws `invalid_input` naming the condition at fault.
 */
export function readAnyOf(of: unknown): AnyOfWait {
  if (!Array.isArray(of) || of.length === 0) {
    throw new FlowError('invalid_input', `an any-of wait needs "of", a list of 1 to ${MAX_ANY_OF} conditions, got ${describeValue(of)}`);
  }
  if (of.length > MAX_ANY_OF) throw new FlowError('invalid_input', `an any-of wait holds at most ${MAX_ANY_OF} conditions, got ${of.length}`);
  const conditions = of.map((item: unknown, index) => readCondition(item, index));
  assertDistinct(conditions);
  return { kind: 'any', of: conditions };
}

function readCondition(input: unknown, index: number): AnyOfCondition {
  const where = `of[${index}]`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new FlowError('invalid_input', `${where} must be a condition object such as {"kind":"manual","signal":"cancel_order"}, got ${describeValue(input)}`);
  }
  const c = input as Record<string, unknown>;
  if (c.kind === 'any') throw new FlowError('invalid_input', `${where}: an any-of wait cannot hold another any-of wait; list its conditions directly`);
  if (c.timeoutAt !== undefined) {
    throw new FlowError('invalid_input', `${where}: a condition of an any-of wait takes no timeoutAt; add a timer condition as the deadline`);
  }
  if (c.kind === 'timer') return { kind: 'timer', at: parseInstant(c.at, `${where}.at`) };
  if (c.kind === 'external_event') {
    return { kind: 'external_event', topic: at(where, () => normaliseKey(c.topic, 'topic')), correlationId: at(where, () => normaliseKey(c.correlationId, 'correlationId')) };
  }
  if (c.kind === 'manual') {
    if (c.signal === undefined || c.signal === null) {
      throw new FlowError('invalid_input', `${where}: a manual condition of an any-of wait must name its signal, such as "cancel_order"`);
    }
    return { kind: 'manual', signal: at(where, () => normaliseKey(c.signal, 'signal')) };
  }
  throw new FlowError('invalid_input', `${where}.kind must be one of timer, external_event, manual, got ${describeValue(c.kind)}`);
}

/** Runs `read`, prefixing the place of the condition to an `invalid_input` it throws. */
function at<T>(where: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (FlowError.isInstance(error) && error.code === 'invalid_input') throw new FlowError('invalid_input', `${where}: ${error.message}`);
    throw error;
  }
}

/** Refuses a condition given twice, and a second timer (the earlier would always win). */
export function assertDistinct(conditions: readonly AnyOfCondition[]): void {
  const seen = new Map<string, number>();
  conditions.forEach((condition, index) => {
    const key =
      condition.kind === 'timer'
        ? 'timer'
        : condition.kind === 'external_event'
          ? `event\u0000${condition.topic}\u0000${condition.correlationId}`
          : `signal\u0000${condition.signal}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      const what = condition.kind === 'timer' ? 'a second timer (only the earliest could ever win; keep one)' : `the same condition as of[${earlier}]`;
      throw new FlowError('invalid_input', `of[${index}] is ${what}`);
    }
    seen.set(key, index);
  });
}

/** The event keys a wait is found by: one for an event wait, every event condition's for an any-of wait. */
export function eventKeysOf(wait: WaitCondition | null | undefined): EventKey[] {
  if (!wait) return [];
  if (wait.kind === 'external_event') return [{ topic: wait.topic, correlationId: wait.correlationId }];
  if (wait.kind !== 'any') return [];
  const keys: EventKey[] = [];
  for (const c of wait.of) if (c.kind === 'external_event') keys.push({ topic: c.topic, correlationId: c.correlationId });
  return keys;
}

/** Whether an event on `key` can resume a flow with this wait: an event wait on it, or an any-of wait with a condition on it. */
export function waitsOnKey(wait: WaitCondition | null | undefined, key: EventKey): boolean {
  return eventKeysOf(wait).some((k) => k.topic === key.topic && k.correlationId === key.correlationId);
}

/** The distinct topics of a wait's event keys (what the NATS bridge must cover). */
export function waitTopicsOf(wait: WaitCondition | null | undefined): string[] {
  const keys = eventKeysOf(wait);
  return keys.length <= 1 ? keys.map((k) => k.topic) : [...new Set(keys.map((k) => k.topic))];
}

/** The event keys kept in `flow_wait_keys`: those of an any-of wait (a single event wait uses the flows row's own columns). */
export function anyOfKeysOf(wait: WaitCondition | null | undefined): EventKey[] {
  return wait?.kind === 'any' ? eventKeysOf(wait) : [];
}

function conditionOf(index: number, kind: AnyOfCondition['kind']): WakeCondition {
  return { index, kind };
}

/** The wake of an event on (topic, correlationId) for a flow with this wait: an any-of wait's says which condition won. */
export function eventWakeFor(wait: WaitCondition | null, wake: Wake): Wake {
  if (wait?.kind !== 'any') return wake;
  const index = wait.of.findIndex((c) => c.kind === 'external_event' && c.topic === wake.topic && c.correlationId === wake.correlationId);
  return index < 0 ? wake : { ...wake, condition: conditionOf(index, 'external_event') };
}

/** The wake of a due flow: its timer, the timer condition of an any-of wait, or the timeout of an event or manual wait. */
export function dueWakeFor(wait: WaitCondition | null, at: Date): Wake {
  if (wait?.kind === 'timer') return { reason: 'timer', at };
  if (wait?.kind === 'any') {
    const index = wait.of.findIndex((c) => c.kind === 'timer');
    return index < 0 ? { reason: 'timer', at } : { reason: 'timer', at, condition: conditionOf(index, 'timer') };
  }
  return { reason: 'timeout', at };
}

/**
 * The condition of an any-of wait a signal named `name` meets, or the
 * `invalid_input` that refuses it, listing the signals the flow waits for.
 */
export function signalConditionFor(flowId: string, wait: AnyOfWait, name: string | undefined): WakeCondition {
  const index = wait.of.findIndex((c) => c.kind === 'manual' && c.signal === name);
  if (index >= 0) return conditionOf(index, 'manual');
  const names = wait.of.flatMap((c) => (c.kind === 'manual' ? [`"${c.signal}"`] : []));
  if (names.length === 0) throw new FlowError('invalid_input', `flow ${flowId} waits for none of its conditions to be a signal`);
  throw new FlowError(
    'invalid_input',
    `flow ${flowId} waits for the signal ${names.join(' or ')}, not ${name === undefined ? 'an unnamed one' : `"${name}"`}`,
  );
}

/** The JSON form of an any-of wait's conditions (instants as RFC 3339). */
export function anyOfToJson(wait: AnyOfWait): Record<string, string>[] {
  return wait.of.map((c) =>
    c.kind === 'timer'
      ? { kind: 'timer', at: c.at.toISOString() }
      : c.kind === 'external_event'
        ? { kind: 'external_event', topic: c.topic, correlationId: c.correlationId }
        : { kind: 'manual', signal: c.signal },
  );
}

/** Reads an any-of wait's stored conditions (written by {@link anyOfToJson}, so trusted). */
export function anyOfFromJson(of: readonly Record<string, string>[]): AnyOfWait {
  return {
    kind: 'any',
    of: of.map((c): AnyOfCondition =>
      c.kind === 'timer'
        ? { kind: 'timer', at: new Date(c.at!) }
        : c.kind === 'external_event'
          ? { kind: 'external_event', topic: c.topic!, correlationId: c.correlationId! }
          : { kind: 'manual', signal: c.signal! },
    ),
  };
}

/** One short phrase per condition, joined by "or": `event payments.received/INV-42 or signal cancel_order or timer 2026-…`. */
export function describeAnyOf(wait: AnyOfWait, time: (at: Date) => string): string {
  return wait.of
    .map((c) => (c.kind === 'timer' ? `timer ${time(c.at)}` : c.kind === 'external_event' ? `event ${c.topic}/${c.correlationId}` : `signal ${c.signal}`))
    .join(' or ');
}

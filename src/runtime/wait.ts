import { FlowError } from './errors.js';
import { parseInstant } from './instant.js';
import { describeValue, normaliseKey, optionalKey, readInput } from './text.js';
import { anyOfFromJson, anyOfToJson, readAnyOf } from './any-of.js';
import type { WaitCondition, WaitInput } from './wait-condition.js';

export type {
  AnyOfCondition,
  AnyOfConditionInput,
  AnyOfWait,
  ExternalEventWait,
  ManualWait,
  TimerWait,
  WaitCondition,
  WaitInput,
} from './wait-condition.js';
export type { Instant } from './instant.js';
export type { RecurringWait, RecurringWaitInput } from './recurring/schedule.js';

/**
 * Validates a wait and normalises it: instants become `Date`s (RFC 3339 only for
 * strings), keys (topic, correlation id, signal) follow the one key rule of
 * {@link normaliseKey}. Throws `invalid_input`, never anything else.
 */
export function parseWait(input: WaitInput | unknown): WaitCondition {
  try {
    return readInput('wait', () => readWait(input));
  } catch (error) {
    if (FlowError.isInstance(error) && error.code === 'invalid_input') throw new FlowError('invalid_input', `invalid wait: ${error.message}`);
    throw error;
  }
}

function readWait(input: unknown): WaitCondition {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new FlowError('invalid_input', `a wait must be an object such as {"kind":"manual"}, got ${describeValue(input)}`);
  }
  const wait = input as Record<string, unknown>;
  const kind = wait.kind;
  if (kind === 'timer') return { kind: 'timer', at: parseInstant(wait.at, 'at') };
  if (kind === 'any') return readAnyOf(wait.of);
  if (kind === 'recurring') throw new FlowError('invalid_input', 'a recurring wait is set with manager.setWaiting, which fixes its first occurrence');
  if (kind !== 'external_event' && kind !== 'manual') throw new FlowError('invalid_input', 'wait kind must be one of timer, external_event, manual, any, recurring');
  const timeoutAt = wait.timeoutAt === undefined ? undefined : parseInstant(wait.timeoutAt, 'timeoutAt');
  const timeout = timeoutAt === undefined ? {} : { timeoutAt };
  if (kind === 'external_event') {
    const topic = normaliseKey(wait.topic, 'topic');
    const correlationId = normaliseKey(wait.correlationId, 'correlationId');
    return { kind: 'external_event', topic, correlationId, ...timeout };
  }
  const signal = optionalKey(wait.signal, 'signal');
  return { kind: 'manual', ...(signal === undefined ? {} : { signal }), ...timeout };
}

/** When the engine must wake the flow on its own: the timer, or the wait's timeout. */
export function wakeAtOf(wait: WaitCondition): Date | undefined {
  if (wait.kind === 'any') return wait.of.find((c) => c.kind === 'timer')?.at;
  return wait.kind === 'timer' || wait.kind === 'recurring' ? wait.at : wait.timeoutAt;
}

/** Refuses a wait whose wake time lies beyond `now + horizonMs`. */
export function assertWithinHorizon(wait: WaitCondition, nowMs: number, horizonMs: number): void {
  const wakeAt = wakeAtOf(wait);
  if (wakeAt !== undefined && wakeAt.getTime() > nowMs + horizonMs) {
    const what = wait.kind === 'timer' || wait.kind === 'any' ? 'timer' : wait.kind === 'recurring' ? `occurrence ${wait.occurrence}` : 'timeout';
    throw new FlowError(
      'invalid_input',
      `${what} ${wakeAt.toISOString()} is beyond the horizon of ${formatSpan(horizonMs)} from now; choose an earlier time`,
    );
  }
}

/** `90000` → `1m30s`; used in messages people and models read. */
export function formatSpan(ms: number): string {
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}ms`);
  return parts.join('');
}

/** The stored JSON form of a wait (instants as RFC 3339 strings). */
export function waitToJson(wait: WaitCondition): Record<string, unknown> {
  if (wait.kind === 'any') return { kind: 'any', of: anyOfToJson(wait) };
  const json: Record<string, string> = { kind: wait.kind };
  if (wait.kind === 'timer') json.at = wait.at.toISOString();
  if (wait.kind === 'recurring') {
    json.occurrence = String(wait.occurrence);
    json.at = wait.at.toISOString();
    return json;
  }
  if (wait.kind === 'external_event') {
    json.topic = wait.topic;
    json.correlationId = wait.correlationId;
  }
  if (wait.kind === 'manual' && wait.signal !== undefined) json.signal = wait.signal;
  if (wait.kind !== 'timer' && wait.timeoutAt !== undefined) json.timeoutAt = wait.timeoutAt.toISOString();
  return json;
}

/** Reads a wait back from its stored JSON form (written by {@link waitToJson}, so trusted). */
export function waitFromJson(stored: Record<string, unknown>): WaitCondition {
  if (stored.kind === 'any') return anyOfFromJson(stored.of as Record<string, string>[]);
  const json = stored as Record<string, string>;
  if (json.kind === 'timer') return { kind: 'timer', at: new Date(json.at!) };
  if (json.kind === 'recurring') return { kind: 'recurring', occurrence: Number(json.occurrence), at: new Date(json.at!) };
  const timeout = json.timeoutAt === undefined ? {} : { timeoutAt: new Date(json.timeoutAt) };
  if (json.kind === 'external_event') return { kind: 'external_event', topic: json.topic!, correlationId: json.correlationId!, ...timeout };
  if (json.kind === 'manual') return { kind: 'manual', ...(json.signal === undefined ? {} : { signal: json.signal }), ...timeout };
  throw new Error(`unknown stored wait kind ${json.kind}`);
}

import { parseDuration } from '../runtime/duration.js';
import { FlowError } from '../runtime/errors.js';
import { parseRfc3339 } from '../runtime/instant.js';
import { assertWithinHorizon, formatSpan, type AnyOfCondition, type AnyOfWait, type WaitCondition } from '../runtime/wait.js';
import { assertDistinct, MAX_ANY_OF } from '../runtime/any-of.js';
import { describeValue, isRecord, optionalText, requiredText, type Fields } from './fields.js';
import { ToolRefusal } from './refusal.js';
import { concreteTopicProblem } from './topic-pattern.js';
import { fill, RESERVED_TOPICS, reservedTopicProblem, topicInPolicy, type FilledTopicPolicy } from './topic-scope.js';

/** What a wait is checked against. */
export interface WaitRules {
  nowMs: number;
  horizonMs: number;
  /** Where event waits may go, with this call's placeholder values filled in. */
  topics: FilledTopicPolicy;
  /** Runtime subjects beyond `taskflow.…` that no wait may use. */
  reservedTopics?: readonly string[];
}

const WHERE = 'wait_condition.';
const FIELDS_OF: Record<Exclude<WaitCondition['kind'], 'recurring'>, readonly string[]> = {
  timer: ['kind', 'at', 'in'],
  external_event: ['kind', 'topic', 'correlation_id', 'timeout_at', 'timeout_in'],
  manual: ['kind', 'signal', 'timeout_at', 'timeout_in'],
  any: ['kind', 'of'],
};
/** The fields of one condition of an any-of wait: no timeouts (a timer condition is the deadline). */
const CONDITION_FIELDS_OF: Record<AnyOfCondition['kind'], readonly string[]> = {
  timer: ['kind', 'at', 'in'],
  external_event: ['kind', 'topic', 'correlation_id'],
  manual: ['kind', 'signal'],
};
const ALL_FIELDS = new Set(Object.values(FIELDS_OF).flat());

/**
 * Turns the model's snake_case `wait_condition` into a runtime wait: resolves
 * `in` / `timeout_in` against now, and refuses a time in the past, beyond the
 * horizon, or a topic outside the allow-list. Throws {@link ToolRefusal}.
 */
export function parseWireWait(value: unknown, rules: WaitRules): WaitCondition {
  if (!isRecord(value)) {
    throw new ToolRefusal(
      'invalid_input',
      `wait needs wait_condition, an object such as {"kind":"timer","in":"90m"}, got ${value === undefined ? 'nothing' : describeValue(value)}`,
    );
  }
  const kind = value.kind;
  if (kind !== 'timer' && kind !== 'external_event' && kind !== 'manual' && kind !== 'any') {
    throw new ToolRefusal('invalid_input', `${WHERE}kind must be one of timer, external_event, manual, any, recurring, next_occurrence, got ${kind === undefined ? 'nothing' : describeValue(kind)}`);
  }
  checkFields(value, kind);
  const wait = kind === 'any' ? buildAnyOf(value.of, rules) : buildWait(value, kind, rules);
  try {
    assertWithinHorizon(wait, rules.nowMs, rules.horizonMs);
  } catch (error) {
    if (FlowError.isInstance(error)) throw new ToolRefusal('invalid_input', error.message);
    throw error;
  }
  return wait;
}

function checkFields(value: Fields, kind: WaitCondition['kind'], fieldsOf: Record<string, readonly string[]> = FIELDS_OF, where = WHERE): void {
  for (const [field, fieldValue] of Object.entries(value)) {
    if (fieldValue === undefined || fieldValue === null || fieldsOf[kind]!.includes(field)) continue;
    const what = where === WHERE ? 'wait' : 'condition of an any-of wait';
    const message = ALL_FIELDS.has(field)
      ? `${where}${field} does not apply to a ${kind} ${what} (its fields: ${fieldsOf[kind]!.join(', ')})`
      : `${where}${field} is not a field of a ${what}; a ${kind} ${what} takes ${fieldsOf[kind]!.join(', ')}`;
    throw new ToolRefusal('invalid_input', message);
  }
}

/**
 * An any-of wait: `of` lists 1 to 16 conditions (timer, external_event, manual
 * with a signal name), each checked as a wait of its kind would be (an event's
 * topic against the binding's topics), then together (no duplicates, one timer).
 */
function buildAnyOf(of: unknown, rules: WaitRules): AnyOfWait {
  if (!Array.isArray(of) || of.length === 0 || of.length > MAX_ANY_OF) {
    throw new ToolRefusal(
      'invalid_input',
      `an any wait needs ${WHERE}of, a list of 1 to ${MAX_ANY_OF} conditions such as ` +
        `[{"kind":"external_event","topic":"payments.received","correlation_id":"INV-42"},{"kind":"manual","signal":"cancel_order"},{"kind":"timer","in":"3d"}], got ${describeValue(of)}`,
    );
  }
  const conditions = of.map((item: unknown, index): AnyOfCondition => {
    const where = `${WHERE}of[${index}].`;
    if (!isRecord(item)) throw new ToolRefusal('invalid_input', `${WHERE}of[${index}] must be a condition object, got ${describeValue(item)}`);
    const kind = item.kind;
    if (kind === 'any') throw new ToolRefusal('invalid_input', `${WHERE}of[${index}] cannot be another any wait; list its conditions directly`);
    if (kind !== 'timer' && kind !== 'external_event' && kind !== 'manual') {
      throw new ToolRefusal('invalid_input', `${where}kind must be one of timer, external_event, manual, got ${kind === undefined ? 'nothing' : describeValue(kind)}`);
    }
    checkFields(item, kind, CONDITION_FIELDS_OF, where);
    if (kind === 'timer') {
      const at = instant(item, 'at', 'in', rules, where);
      if (at === undefined) throw new ToolRefusal('invalid_input', `a timer condition needs ${where}at (RFC 3339) or ${where}in (such as "3d")`);
      return { kind: 'timer', at };
    }
    if (kind === 'manual') return { kind: 'manual', signal: requiredText(item, 'signal', 'a manual condition of an any wait', '"cancel_order"', where) };
    const topic = checkTopic(requiredText(item, 'topic', 'an event condition', '"payments.received"', where), rules, where);
    return { kind: 'external_event', topic, correlationId: requiredText(item, 'correlation_id', 'an event condition', '"INV-42"', where) };
  });
  try {
    assertDistinct(conditions);
  } catch (error) {
    if (FlowError.isInstance(error)) throw new ToolRefusal('invalid_input', `${WHERE}${error.message}`);
    throw error;
  }
  return { kind: 'any', of: conditions };
}

function buildWait(value: Fields, kind: Exclude<WaitCondition['kind'], 'any' | 'recurring'>, rules: WaitRules): WaitCondition {
  if (kind === 'timer') {
    const at = instant(value, 'at', 'in', rules);
    if (at === undefined) {
      throw new ToolRefusal('invalid_input', `a timer wait needs ${WHERE}at (RFC 3339, such as 2026-12-01T09:00:00Z) or ${WHERE}in (such as "90m" or "3d")`);
    }
    return { kind: 'timer', at };
  }
  const timeoutAt = instant(value, 'timeout_at', 'timeout_in', rules);
  const timeout = timeoutAt === undefined ? {} : { timeoutAt };
  if (kind === 'manual') {
    const signal = optionalText(value, 'signal', WHERE);
    return { kind: 'manual', ...(signal === undefined ? {} : { signal }), ...timeout };
  }
  const topic = checkTopic(requiredText(value, 'topic', 'an event wait', '"payments.invoice.paid"', WHERE), rules);
  const correlationId = requiredText(value, 'correlation_id', 'an event wait', '"INV-42"', WHERE);
  return { kind: 'external_event', topic, correlationId, ...timeout };
}

/**
 * The topic an event wait may use: placeholders the model wrote (`{tenant}`) are
 * filled with this call's values; then it must be concrete, not reserved, and
 * inside the binding's topics. Refusals say which topics are allowed.
 */
function checkTopic(written: string, rules: WaitRules, where = WHERE): string {
  const policy = rules.topics;
  if (policy.kind === 'none') {
    throw new ToolRefusal('topic_not_allowed', 'event waits are not available here (the host declared no topics for them); use a timer or a manual wait instead');
  }
  const topic = policy.kind === 'patterns' ? fill(written, (name) => policy.values[name]) : written;
  const problem = concreteTopicProblem(topic);
  if (problem) throw new ToolRefusal('invalid_input', `${where}topic "${topic}" ${problem}`);
  const allowed = policy.kind === 'patterns' ? `allowed topics: ${policy.patterns.join(', ')}` : `any topic but ${RESERVED_TOPICS}`;
  const reserved = reservedTopicProblem(topic, rules.reservedTopics);
  if (reserved) throw new ToolRefusal('topic_not_allowed', `topic "${topic}" ${reserved}; ${allowed}`);
  if (!topicInPolicy(policy, topic)) throw new ToolRefusal('topic_not_allowed', `topic "${topic}" is not allowed here; ${allowed}`);
  return topic;
}

/** Reads an instant given as RFC 3339 (`atField`) or as a duration from now (`inField`); must be in the future. */
function instant(value: Fields, atField: string, inField: string, rules: WaitRules, WHERE = 'wait_condition.'): Date | undefined {
  const at = optionalText(value, atField, WHERE);
  const span = optionalText(value, inField, WHERE);
  if (at !== undefined && span !== undefined) {
    throw new ToolRefusal('invalid_input', `give either ${WHERE}${atField} or ${WHERE}${inField}, not both`);
  }
  const now = new Date(rules.nowMs).toISOString();
  if (span !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(span, `${WHERE}${inField}`);
    } catch (error) {
      throw new ToolRefusal('invalid_input', FlowError.isInstance(error) ? error.message : String(error));
    }
    if (ms <= 0) throw new ToolRefusal('invalid_input', `${WHERE}${inField} must be longer than 0, such as "90m"`);
    return new Date(rules.nowMs + ms);
  }
  if (at === undefined) return undefined;
  const date = parseRfc3339(at);
  if (date === undefined) {
    throw new ToolRefusal('invalid_input', `${WHERE}${atField} "${at}" is not an RFC 3339 time with a time zone, such as 2026-12-01T09:00:00Z`);
  }
  if (date.getTime() <= rules.nowMs) {
    throw new ToolRefusal(
      'invalid_input',
      `${WHERE}${atField} ${date.toISOString()} is in the past (now is ${now}); give a future time, or ${WHERE}${inField} such as "90m" ` +
        `(at most ${formatSpan(rules.horizonMs)} ahead)`,
    );
  }
  return date;
}

import { parseDuration } from '../runtime/duration.js';
import { FlowError } from '../runtime/errors.js';
import { parseRfc3339 } from '../runtime/instant.js';
import type { Flow } from '../runtime/flow.js';
import { assertOccurrenceWithinHorizon } from '../runtime/recurring/moves.js';
import { occurrenceAfter, type Scheduled } from '../runtime/recurring/occurrences.js';
import { parseRecurring } from '../runtime/recurring/parse.js';
import type { RecurringWaitInput } from '../runtime/recurring/schedule.js';
import { formatSpan } from '../runtime/wait.js';
import { describeValue, isRecord, optionalChoice, optionalInteger, optionalText, type Fields } from './fields.js';
import { ToolRefusal } from './refusal.js';

/** The wait kinds of a recurring schedule, as the model writes them. */
export const RECURRING_KINDS = ['recurring', 'next_occurrence'] as const;

const WHERE = 'wait_condition.';
const FIELDS_OF = {
  recurring: ['kind', 'every', 'cron', 'time_zone', 'start_at', 'until', 'count', 'catch_up'],
  next_occurrence: ['kind', 'after'],
} as const;
/** Occurrences checked against the binding's shortest interval, for a cron. */
const CRON_GAPS_CHECKED = 16;

/** What a recurring `wait` asks: start a schedule, or park for the occurrence after `after`. */
export type RecurringCommand = { kind: 'schedule'; wait: RecurringWaitInput } | { kind: 'next'; after: number };

/** Whether the model's wait_condition is one of {@link RECURRING_KINDS}. */
export function isRecurringWire(value: unknown): boolean {
  return isRecord(value) && (RECURRING_KINDS as readonly unknown[]).includes(value.kind);
}

/**
 * Reads a recurring wait_condition (snake_case) and checks it as the runtime
 * would, plus the binding's shortest interval: a schedule that runs more often
 * is refused. Throws {@link ToolRefusal}.
 */
export function parseWireRecurring(value: Fields, nowMs: number, minIntervalMs: number, horizonMs: number): RecurringCommand {
  const kind = value.kind as (typeof RECURRING_KINDS)[number];
  for (const [field, fieldValue] of Object.entries(value)) {
    if (fieldValue === undefined || fieldValue === null || (FIELDS_OF[kind] as readonly string[]).includes(field)) continue;
    throw new ToolRefusal('invalid_input', `${WHERE}${field} does not apply to a ${kind} wait (its fields: ${FIELDS_OF[kind].join(', ')})`);
  }
  if (kind === 'next_occurrence') {
    const after = optionalInteger(value, 'after', 0, Number.MAX_SAFE_INTEGER);
    if (after === undefined) {
      throw new ToolRefusal('invalid_input', `a next_occurrence wait needs ${WHERE}after: the number of the occurrence just handled (last_wake.occurrence.number)`);
    }
    return { kind: 'next', after };
  }
  const wait: RecurringWaitInput = { kind: 'recurring' };
  const every = optionalText(value, 'every', WHERE);
  const cron = optionalText(value, 'cron', WHERE);
  const timeZone = optionalText(value, 'time_zone', WHERE);
  const catchUp = optionalChoice(value, 'catch_up', ['latest', 'each'] as const);
  const count = value.count === undefined || value.count === null ? undefined : value.count;
  if (every !== undefined) wait.every = every;
  if (cron !== undefined) wait.cron = cron;
  if (timeZone !== undefined) wait.timeZone = timeZone;
  if (catchUp !== undefined) wait.catchUp = catchUp;
  if (count !== undefined) wait.count = count as number;
  for (const field of ['start_at', 'until'] as const) {
    const text = optionalText(value, field, WHERE);
    if (text === undefined) continue;
    const at = parseRfc3339(text);
    if (at === undefined) throw new ToolRefusal('invalid_input', `${WHERE}${field} "${text}" is not an RFC 3339 time with a time zone, such as 2026-12-01T09:00:00Z`);
    if (field === 'start_at') wait.startAt = at;
    else wait.until = at;
  }
  if (every !== undefined) {
    const ms = checked(() => parseDuration(every, `${WHERE}every`));
    if (ms < minIntervalMs) throw new ToolRefusal('invalid_input', `${WHERE}every must be at least ${formatSpan(minIntervalMs)} here, got ${formatSpan(ms)}`);
  }
  const schedule = checked(() => parseRecurring(wait, nowMs));
  const first = occurrenceAfter(schedule, undefined);
  if (first !== undefined) checked(() => assertOccurrenceWithinHorizon(first, nowMs, horizonMs));
  if (schedule.every !== undefined && schedule.every > horizonMs) {
    throw new ToolRefusal('invalid_input', `${WHERE}every ${formatSpan(schedule.every)} is longer than the horizon of ${formatSpan(horizonMs)}: each period must fit in it`);
  }
  if (schedule.cron !== undefined) {
    let previous: Scheduled | undefined;
    for (let i = 0; i < CRON_GAPS_CHECKED; i++) {
      const next = occurrenceAfter(schedule, previous);
      if (next === undefined) break;
      if (previous !== undefined && next.at.getTime() - previous.at.getTime() < minIntervalMs) {
        throw new ToolRefusal('invalid_input', `${WHERE}cron "${schedule.cron}" runs more often than every ${formatSpan(minIntervalMs)}, the shortest interval allowed here`);
      }
      previous = next;
    }
  }
  return { kind: 'schedule', wait };
}

function checked<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (FlowError.isInstance(error)) throw error;
    throw new ToolRefusal('invalid_input', `${WHERE}could not be read: ${describeValue(error)}`);
  }
}

/**
 * The binding's horizon (which may be narrower than the runtime's) for the
 * occurrence a `next_occurrence` wait would park on; the runtime checks the rest.
 */
export function checkNextWithinHorizon(flow: Flow, after: number, nowMs: number, horizonMs: number): void {
  const schedule = flow.schedule;
  if (schedule === undefined || (schedule.last?.number ?? 0) !== after || flow.status !== 'running') return;
  const next = occurrenceAfter(schedule, schedule.last);
  if (next !== undefined) checked(() => assertOccurrenceWithinHorizon(next, nowMs, horizonMs));
}

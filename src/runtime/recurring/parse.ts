import { parsePositiveDuration } from '../duration.js';
import { FlowError } from '../errors.js';
import { parseInstant } from '../instant.js';
import { describeValue, readInput } from '../text.js';
import { formatSpan } from '../wait.js';
import { cronOf } from './occurrences.js';
import { CATCH_UP_POLICIES, type CatchUp, type RecurringSchedule } from './schedule.js';

/** The shortest interval a recurring wait takes. */
export const MIN_RECURRING_INTERVAL_MS = 1_000;
const MAX_CRON_LENGTH = 200;
const FIELDS = new Set(['kind', 'every', 'cron', 'timeZone', 'startAt', 'until', 'count', 'catchUp']);

/** Whether `input` asks for a recurring wait (`kind: 'recurring'`). */
export function isRecurringInput(input: unknown): boolean {
  try {
    return typeof input === 'object' && input !== null && (input as { kind?: unknown }).kind === 'recurring';
  } catch {
    return false; // a hostile object (a throwing getter or proxy): parseWait refuses it as invalid_input
  }
}

/**
 * Validates a recurring wait and turns it into a schedule whose first
 * occurrence is fixed (at `startAt`, else one interval or the next cron time after
 * `nowMs`). Bad input (no rule or both, a bad cron or zone, an interval under
 * 1 s, a count under 1, an end before the first occurrence) is `invalid_input`.
 */
export function parseRecurring(input: unknown, nowMs: number): RecurringSchedule {
  try {
    return readInput('recurring wait', () => readRecurring(input, nowMs));
  } catch (error) {
    if (FlowError.isInstance(error) && error.code === 'invalid_input') throw new FlowError('invalid_input', `invalid recurring wait: ${error.message}`);
    throw error;
  }
}

function readRecurring(input: unknown, nowMs: number): RecurringSchedule {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new FlowError('invalid_input', `a recurring wait must be an object such as {"kind":"recurring","every":"3d"}, got ${describeValue(input)}`);
  }
  const wait = input as Record<string, unknown>;
  for (const field of Object.keys(wait)) {
    if (!FIELDS.has(field) && wait[field] !== undefined) {
      throw new FlowError('invalid_input', `${field} is not a field of a recurring wait (its fields: ${[...FIELDS].join(', ')})`);
    }
  }
  const hasEvery = wait.every !== undefined;
  const hasCron = wait.cron !== undefined;
  if (hasEvery === hasCron) throw new FlowError('invalid_input', 'give either every (such as "3d") or cron (such as "0 9 * * MON-FRI"), exactly one');
  const catchUp = readCatchUp(wait.catchUp);
  const until = wait.until === undefined ? undefined : parseInstant(wait.until, 'until');
  const count = readCount(wait.count);
  const start = wait.startAt === undefined ? undefined : parseInstant(wait.startAt, 'startAt');
  const schedule: Omit<RecurringSchedule, 'first'> = { catchUp };
  let first: Date | null;
  if (hasEvery) {
    if (wait.timeZone !== undefined) throw new FlowError('invalid_input', 'timeZone applies to a cron schedule only; an interval is the same in every zone');
    const every = parsePositiveDuration(wait.every as string, 'every');
    if (every < MIN_RECURRING_INTERVAL_MS) throw new FlowError('invalid_input', `every must be at least ${formatSpan(MIN_RECURRING_INTERVAL_MS)}, got ${formatSpan(every)}`);
    schedule.every = every;
    first = start ?? new Date(nowMs + every);
  } else {
    const cron = wait.cron;
    if (typeof cron !== 'string' || cron.trim() === '' || cron.length > MAX_CRON_LENGTH) {
      throw new FlowError('invalid_input', `cron must be a cron expression of at most ${MAX_CRON_LENGTH} characters, such as "0 9 * * MON-FRI", got ${describeValue(cron)}`);
    }
    const timeZone = readZone(wait.timeZone);
    let job;
    try {
      job = cronOf(cron.trim(), timeZone);
    } catch (error) {
      throw new FlowError('invalid_input', `cron "${cron}" is not a cron expression (${error instanceof Error ? error.message : String(error)}); use five fields such as "0 9 * * MON-FRI"`);
    }
    schedule.cron = cron.trim();
    if (timeZone !== undefined) schedule.timeZone = timeZone;
    first = job.nextRun(new Date((start?.getTime() ?? nowMs + 1) - 1));
  }
  if (first === null) throw new FlowError('invalid_input', `cron "${schedule.cron}" has no occurrence after ${new Date(nowMs).toISOString()}`);
  if (until !== undefined) {
    if (until.getTime() < first.getTime()) {
      throw new FlowError('invalid_input', `until ${until.toISOString()} is before the first occurrence (${first.toISOString()}): the schedule would never run`);
    }
    schedule.until = until;
  }
  if (count !== undefined) schedule.count = count;
  return { ...schedule, first };
}

function readCatchUp(value: unknown): CatchUp {
  if (value === undefined) return 'latest';
  if (typeof value !== 'string' || !(CATCH_UP_POLICIES as readonly string[]).includes(value)) {
    throw new FlowError('invalid_input', `catchUp must be one of ${CATCH_UP_POLICIES.join(', ')}, got ${describeValue(value)}`);
  }
  return value as CatchUp;
}

function readCount(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new FlowError('invalid_input', `count must be a whole number of occurrences, 1 or more, got ${describeValue(value)}`);
  }
  return value;
}

function readZone(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > 64) throw new FlowError('invalid_input', `timeZone must be an IANA zone such as "Europe/Paris", got ${describeValue(value)}`);
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    throw new FlowError('invalid_input', `timeZone "${value}" is not a known IANA zone; use one such as "Europe/Paris" or "UTC"`);
  }
}

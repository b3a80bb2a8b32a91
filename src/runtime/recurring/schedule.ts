import type { Duration } from '../duration.js';
import type { Instant } from '../instant.js';
import type { JsonObject } from '../json.js';

/**
 * What happens to occurrences that fell due while no engine ran:
 * - `latest` (default): one resume, for the latest due occurrence, whose
 *   {@link Occurrence.missed} says how many before it were skipped;
 * - `each`: every occurrence resumes the flow, in order, one after another.
 */
export type CatchUp = 'latest' | 'each';

/** The catch-up policies, for messages and schemas. */
export const CATCH_UP_POLICIES: readonly CatchUp[] = ['latest', 'each'];

/**
 * A recurring wait as callers write it: `every` (an interval, anchored to the
 * schedule so it never drifts) or `cron` (with `timeZone`, default `UTC`), and
 * an optional end by `until` (no occurrence after it) and/or `count` (at most
 * this many occurrences).
 */
export interface RecurringWaitInput {
  kind: 'recurring';
  /** An interval such as `3d`: occurrence n is at `start + (n − 1) · every`. */
  every?: Duration;
  /** A cron expression such as `0 9 * * MON-FRI` (5 fields; 6 with seconds first). */
  cron?: string;
  /** The IANA zone a cron expression is read in, such as `Europe/Paris`. Default `UTC`. */
  timeZone?: string;
  /** The first occurrence (`every`), or the earliest time one may fall on (`cron`). Default: one interval from now; the next cron time after now. */
  startAt?: Instant;
  /** No occurrence after this instant. */
  until?: Instant;
  /** At most this many occurrences (1 or more). */
  count?: number;
  /** Default `latest`. */
  catchUp?: CatchUp;
}

/**
 * A flow's recurring schedule, kept on the flow (`flow.schedule`) across its
 * resumes: the rule, its end, and the occurrence most recently resumed, from
 * which the next one is computed (never from "now", so it does not drift).
 */
export interface RecurringSchedule {
  /** The interval in ms (interval schedules). */
  every?: number;
  /** The cron expression (cron schedules). */
  cron?: string;
  /** The zone of `cron`. */
  timeZone?: string;
  /** When occurrence 1 falls. */
  first: Date;
  until?: Date;
  count?: number;
  catchUp: CatchUp;
  /** The occurrence most recently resumed; absent before the first. */
  last?: { number: number; at: Date };
}

/** Wait for occurrence `occurrence` of the flow's schedule, due at `at`. */
export interface RecurringWait {
  kind: 'recurring';
  /** The ordinal of the pending occurrence (1 for the first). */
  occurrence: number;
  /** When it is scheduled. */
  at: Date;
}

/** The occurrence a recurring resume is for, in `wake.occurrence`. */
export interface Occurrence {
  /** Its ordinal, stable across redeliveries: a handler seeing a number again knows it is the same occurrence. */
  number: number;
  /** When it was scheduled (the wake's `at` is when it actually resumed). */
  scheduledAt: Date;
  /** Earlier occurrences that fell due while no engine ran and were folded into this one (catch-up `latest`). */
  missed: number;
  /** True when the schedule has no occurrence after this one: park on something else, or finish. */
  last: boolean;
}

/** The stored JSON form of a schedule. */
export function scheduleToJson(schedule: RecurringSchedule): JsonObject {
  const json: JsonObject = { first: schedule.first.toISOString(), catchUp: schedule.catchUp };
  if (schedule.every !== undefined) json.every = schedule.every;
  if (schedule.cron !== undefined) json.cron = schedule.cron;
  if (schedule.timeZone !== undefined) json.timeZone = schedule.timeZone;
  if (schedule.until !== undefined) json.until = schedule.until.toISOString();
  if (schedule.count !== undefined) json.count = schedule.count;
  if (schedule.last !== undefined) json.last = { number: schedule.last.number, at: schedule.last.at.toISOString() };
  return json;
}

/** Reads a schedule back from {@link scheduleToJson} (trusted: the runtime wrote it). */
export function scheduleFromJson(json: JsonObject): RecurringSchedule {
  const schedule: RecurringSchedule = { first: new Date(json.first as string), catchUp: json.catchUp as CatchUp };
  if (typeof json.every === 'number') schedule.every = json.every;
  if (typeof json.cron === 'string') schedule.cron = json.cron;
  if (typeof json.timeZone === 'string') schedule.timeZone = json.timeZone;
  if (typeof json.until === 'string') schedule.until = new Date(json.until);
  if (typeof json.count === 'number') schedule.count = json.count;
  const last = json.last as { number: number; at: string } | undefined;
  if (last !== undefined) schedule.last = { number: last.number, at: new Date(last.at) };
  return schedule;
}

/** The JSON form of an occurrence, inside a stored wake. */
export function occurrenceToJson(occurrence: Occurrence): JsonObject {
  return { number: occurrence.number, scheduledAt: occurrence.scheduledAt.toISOString(), missed: occurrence.missed, last: occurrence.last };
}

export function occurrenceFromJson(json: JsonObject): Occurrence {
  return { number: json.number as number, scheduledAt: new Date(json.scheduledAt as string), missed: json.missed as number, last: json.last === true };
}

/** `every 3d from 2026-01-01T09:00:00.000Z, 5 times at most, catch-up latest; no occurrence yet`: for people (CLI, inspector). */
export function describeSchedule(schedule: RecurringSchedule): string {
  const rule = schedule.cron !== undefined ? `cron "${schedule.cron}" in ${schedule.timeZone ?? 'UTC'}` : `every ${spanText(schedule.every ?? 0)}`;
  const parts = [`${rule} from ${schedule.first.toISOString()}`];
  if (schedule.count !== undefined) parts.push(`${schedule.count} times at most`);
  if (schedule.until !== undefined) parts.push(`until ${schedule.until.toISOString()}`);
  parts.push(`catch-up ${schedule.catchUp}`);
  const last = schedule.last === undefined ? 'no occurrence yet' : `last occurrence ${schedule.last.number} at ${schedule.last.at.toISOString()}`;
  return `${parts.join(', ')}; ${last}`;
}

function spanText(ms: number): string {
  for (const [unit, size] of [['w', 604_800_000], ['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

import { Cron } from 'croner';
import { MAX_INSTANT_MS } from '../instant.js';
import type { RecurringSchedule } from './schedule.js';

/** A scheduled occurrence: its ordinal and time. */
export interface Scheduled {
  number: number;
  at: Date;
}

/**
 * The most missed occurrences a cron catch-up walks in one resume (each step is
 * a croner `nextRun`, tens of µs, inside the resume's transaction). After a
 * longer downtime of a very frequent cron, the flow resumes at the 1,000th and
 * finds the next one due at once: every occurrence is still counted, in a few resumes.
 */
export const MAX_CATCH_UP = 1_000;

const CRON_CACHE_SIZE = 256;
const crons = new Map<string, Cron>();

/** A paused croner job for this expression and zone (never scheduled: we only ask it for times). */
export function cronOf(expression: string, timeZone: string | undefined): Cron {
  const key = `${timeZone ?? 'UTC'}\n${expression}`;
  let cron = crons.get(key);
  if (cron === undefined) {
    cron = new Cron(expression, { paused: true, timezone: timeZone ?? 'UTC' });
    if (crons.size >= CRON_CACHE_SIZE) crons.delete(crons.keys().next().value!);
    crons.set(key, cron);
  }
  return cron;
}

/**
 * The occurrence after `previous` (or the first, when `previous` is undefined),
 * or undefined once the schedule has ended (its count or its `until` reached).
 * An interval counts from the first occurrence, a cron from the previous
 * scheduled time: never from now, so the schedule does not drift.
 */
export function occurrenceAfter(schedule: RecurringSchedule, previous: Scheduled | undefined): Scheduled | undefined {
  const number = (previous?.number ?? 0) + 1;
  if (schedule.count !== undefined && number > schedule.count) return undefined;
  let at: Date | null;
  if (previous === undefined) at = schedule.first;
  else if (schedule.every !== undefined) at = new Date(schedule.first.getTime() + (number - 1) * schedule.every);
  else at = cronOf(schedule.cron!, schedule.timeZone).nextRun(previous.at);
  if (at === null || at.getTime() > MAX_INSTANT_MS) return undefined;
  if (schedule.until !== undefined && at.getTime() > schedule.until.getTime()) return undefined;
  return { number, at };
}

/**
 * The latest occurrence due at `nowMs`, counting from `pending` (due already),
 * within the schedule's end. O(1) for an interval; a cron walks the missed
 * times, at most {@link MAX_CATCH_UP} of them.
 */
export function latestDue(schedule: RecurringSchedule, pending: Scheduled, nowMs: number): Scheduled {
  if (schedule.every !== undefined) {
    const every = schedule.every;
    let number = pending.number + Math.max(0, Math.floor((nowMs - pending.at.getTime()) / every));
    if (schedule.count !== undefined) number = Math.min(number, schedule.count);
    if (schedule.until !== undefined) number = Math.min(number, 1 + Math.floor((schedule.until.getTime() - schedule.first.getTime()) / every));
    number = Math.max(number, pending.number);
    return { number, at: new Date(schedule.first.getTime() + (number - 1) * every) };
  }
  let latest = pending;
  for (let walked = 0; walked < MAX_CATCH_UP; walked++) {
    const next = occurrenceAfter(schedule, latest);
    if (next === undefined || next.at.getTime() > nowMs) break;
    latest = next;
  }
  return latest;
}

import { FlowError } from '../errors.js';
import { isTerminal, mergeState, type Flow, type JsonObject } from '../flow.js';
import { resumeMove, waitMove } from '../moves.js';
import type { FlowWrite } from '../commit-plan.js';
import { formatSpan } from '../wait.js';
import { latestDue, occurrenceAfter, type Scheduled } from './occurrences.js';
import { scheduleToJson, type Occurrence, type RecurringSchedule, type RecurringWait } from './schedule.js';

/**
 * Pure builders of the writes of a recurring schedule, beside those of
 * `moves.ts`: start a schedule, resume an occurrence, park for the next one.
 */

function withSchedule(write: FlowWrite, schedule: RecurringSchedule): FlowWrite {
  return { ...write, flow: { ...write.flow, schedule } };
}

function waitFor(next: Scheduled): RecurringWait {
  return { kind: 'recurring', occurrence: next.number, at: next.at };
}

/** Refuses an occurrence further away than the horizon: it limits one period, not the schedule's life. */
export function assertOccurrenceWithinHorizon(next: Scheduled, nowMs: number, horizonMs: number): void {
  if (next.at.getTime() > nowMs + horizonMs) {
    throw new FlowError(
      'invalid_input',
      `occurrence ${next.number} (${next.at.toISOString()}) is beyond the horizon of ${formatSpan(horizonMs)} from now; ` +
        'each period of a schedule must fit in the horizon: choose a shorter interval or a cron that runs more often',
    );
  }
}

/**
 * running → waiting on the first occurrence of a new schedule (it replaces an
 * earlier schedule of the flow). The `waiting` audit event records the schedule.
 */
export function scheduleMove(flow: Flow, now: Date, schedule: RecurringSchedule, horizonMs: number): FlowWrite {
  const first = occurrenceAfter(schedule, undefined);
  if (first === undefined) throw new FlowError('invalid_input', 'invalid recurring wait: the schedule has no occurrence');
  assertOccurrenceWithinHorizon(first, now.getTime(), horizonMs);
  if (schedule.every !== undefined && schedule.every > horizonMs) {
    throw new FlowError('invalid_input', `invalid recurring wait: every ${formatSpan(schedule.every)} is longer than the horizon of ${formatSpan(horizonMs)}`);
  }
  const write = waitMove(flow, now, waitFor(first));
  write.events[0]!.payload.schedule = scheduleToJson(schedule);
  return withSchedule(write, schedule);
}

/**
 * waiting on an occurrence → running, with `wake.occurrence`. Catch-up `latest`
 * resumes once for the latest due occurrence and counts the ones folded into it
 * as `missed`; `each` resumes for the pending one (the next park finds the
 * following one due already). The schedule remembers the occurrence resumed.
 */
export function recurringResumeMove(flow: Flow, now: Date): FlowWrite {
  const wait = flow.wait as RecurringWait;
  const pending: Scheduled = { number: wait.occurrence, at: wait.at };
  const schedule = flow.schedule;
  if (schedule === undefined) {
    // Not written by this runtime; resume once, as a timer would.
    return resumeMove(flow, now, { reason: 'recurring', at: now, occurrence: { number: pending.number, scheduledAt: pending.at, missed: 0, last: true } });
  }
  const resumed = schedule.catchUp === 'each' ? pending : latestDue(schedule, pending, now.getTime());
  const occurrence: Occurrence = {
    number: resumed.number,
    scheduledAt: resumed.at,
    missed: resumed.number - pending.number,
    last: occurrenceAfter(schedule, resumed) === undefined,
  };
  return withSchedule(resumeMove(flow, now, { reason: 'recurring', at: now, occurrence }), { ...schedule, last: resumed });
}

/**
 * Parks a flow for the occurrence after `after`, merging `patch` into its state
 * in the same write. Idempotent: when the flow already moved past `after`
 * (parked for a later occurrence, or resumed for one) it returns undefined and
 * nothing is written, so a redelivered notification never parks (or patches) twice.
 */
export function nextOccurrenceMove(flow: Flow, now: Date, after: number, horizonMs: number, patch?: JsonObject): FlowWrite | undefined {
  const schedule = flow.schedule;
  if (schedule === undefined) {
    throw new FlowError('invalid_input', `flow ${flow.id} has no recurring schedule: wait on one first, such as {"kind":"recurring","every":"3d"}`);
  }
  const resumed = schedule.last?.number ?? 0;
  if (after < resumed) return undefined;
  if (after === resumed && flow.status === 'waiting' && flow.wait?.kind === 'recurring' && flow.wait.occurrence > after) return undefined;
  if (after > resumed) {
    throw new FlowError('invalid_input', `occurrence ${after} has not happened yet: flow ${flow.id} last resumed for occurrence ${resumed}`);
  }
  const next = occurrenceAfter(schedule, schedule.last);
  if (next === undefined) {
    if (isTerminal(flow.status)) return undefined;
    throw new FlowError(
      'illegal_transition',
      `the schedule of flow ${flow.id} ended with occurrence ${resumed}: finish the flow, or wait on something else`,
    );
  }
  const write = waitMove(flow, now, waitFor(next));
  assertOccurrenceWithinHorizon(next, now.getTime(), horizonMs);
  if (patch === undefined) return write;
  write.events[0]!.payload.keys = Object.keys(patch);
  return { ...write, flow: { ...write.flow, state: mergeState(flow.state, patch) } };
}

/**
 * Whether a flow is done with occurrence `number` of its schedule: it parked for
 * a later one, resumed for a later one, or ended. A handler that sees a wake
 * whose occurrence is done is looking at a redelivery and has nothing to do.
 */
export function occurrenceDone(flow: Flow, number: number): boolean {
  const resumed = flow.schedule?.last?.number ?? 0;
  if (resumed > number) return true;
  if (resumed < number) return false;
  return isTerminal(flow.status) || (flow.status === 'waiting' && flow.wait?.kind === 'recurring' && flow.wait.occurrence > number);
}

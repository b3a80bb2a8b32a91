import type { Flow, FlowEvent, FlowStep } from '../runtime/flow.js';
import type { ResumeNotification } from '../runtime/store/contract.js';
import type { WaitCondition } from '../runtime/wait.js';
import { describeAnyOf } from '../runtime/any-of.js';
import { describeSchedule } from '../runtime/recurring/schedule.js';
import { formatFields, formatTable } from './table.js';

/** A timestamp for people: ISO 8601 in UTC, to the millisecond (what the store keeps). */
export function formatTime(at: Date | null | undefined): string {
  return at ? at.toISOString() : '-';
}

/** Compact JSON on one line, or `-` for undefined. */
export function compactJson(value: unknown): string {
  if (value === undefined) return '-';
  return JSON.stringify(value) ?? '-';
}

/** What a flow waits for, in one short phrase: `timer 2026-…`, `event topic/corr`, `signal name`. */
export function describeWait(wait: WaitCondition | null): string {
  if (!wait) return '-';
  if (wait.kind === 'timer') return `timer ${formatTime(wait.at)}`;
  if (wait.kind === 'any') return `first of: ${describeAnyOf(wait, formatTime)}`;
  if (wait.kind === 'recurring') return `occurrence ${wait.occurrence} at ${formatTime(wait.at)}`;
  const timeout = wait.timeoutAt === undefined ? '' : ` (timeout ${formatTime(wait.timeoutAt)})`;
  if (wait.kind === 'external_event') return `event ${wait.topic}/${wait.correlationId}${timeout}`;
  return `${wait.signal === undefined ? 'signal (any name)' : `signal ${wait.signal}`}${timeout}`;
}

/** The status column: the status, marked when a cancel request is pending. */
export function describeStatus(flow: Pick<Flow, 'status' | 'cancelRequested'>): string {
  return flow.cancelRequested && flow.status !== 'cancelled' ? `${flow.status} (cancel requested)` : flow.status;
}

/**
 * The flows table of `taskflow list`. `note` adds to a flow's status, for example
 * `(1 dead resume)` for a flow whose `onResume` notification was parked.
 */
export function flowsTable(flows: readonly Flow[], note: (flow: Flow) => string | undefined = () => undefined): string {
  return formatTable(flows, [
    { header: 'ID', value: (f) => f.id },
    { header: 'STATUS', value: (f) => [describeStatus(f), note(f)].filter(Boolean).join(' ') },
    { header: 'STEP', value: (f) => f.currentStep, maxWidth: 24 },
    { header: 'WAIT', value: (f) => describeWait(f.wait), maxWidth: 72 },
    { header: 'OWNER', value: (f) => f.ownerSessionKey, maxWidth: 32 },
    { header: 'UPDATED', value: (f) => formatTime(f.updatedAt) },
    { header: 'GOAL', value: (f) => f.goal, maxWidth: 48 },
  ]);
}

/** The header block of `taskflow show`: one field per line. */
export function flowFields(flow: Flow): string {
  return formatFields([
    ['id', flow.id],
    ['status', describeStatus(flow)],
    ['goal', flow.goal],
    ['controller', flow.controllerId],
    ['owner', flow.ownerSessionKey],
    ['origin', flow.requesterOrigin ?? '-'],
    ['step', flow.currentStep],
    ['wait', describeWait(flow.wait)],
    ...(flow.schedule === undefined ? [] : [['schedule', describeSchedule(flow.schedule)] as [string, string]]),
    ['revision', String(flow.revision)],
    ['created', formatTime(flow.createdAt)],
    ['updated', formatTime(flow.updatedAt)],
    ['state', compactJson(flow.state)],
  ]);
}

/** A move of a flow's `current_step`, read from its audit log. */
export interface StepMove {
  /** The audit row, numbered per flow from 1 (as in the timeline). */
  row: number;
  /** The audit event's id (the `id` of the event in `events`). */
  eventId: number;
  at: Date;
  step: string;
}

/** The moves of `current_step` (`advance` / `updateState` with a next step), oldest first. */
export function stepMoves(events: readonly FlowEvent[]): StepMove[] {
  return events.flatMap((e, i) =>
    e.kind === 'state_updated' && typeof e.payload.currentStep === 'string' ? [{ row: i + 1, eventId: e.id, at: e.at, step: e.payload.currentStep }] : [],
  );
}

/** The step-moves table of `taskflow show`. */
export function stepMovesTable(moves: readonly StepMove[]): string {
  return formatTable(moves, [
    { header: '#', value: (m) => String(m.row) },
    { header: 'AT', value: (m) => formatTime(m.at) },
    { header: 'TO STEP', value: (m) => m.step, maxWidth: 48 },
  ]);
}

/** The observed-steps table of `taskflow show`. */
export function stepsTable(steps: readonly FlowStep[]): string {
  return formatTable(steps, [
    { header: 'RUN', value: (s) => s.runId, maxWidth: 36 },
    { header: 'TASK', value: (s) => s.task, maxWidth: 40 },
    { header: 'STATUS', value: (s) => s.status },
    { header: 'RUNTIME', value: (s) => s.runtime, maxWidth: 16 },
    { header: 'CHILD', value: (s) => s.childSessionKey ?? '-', maxWidth: 32 },
    { header: 'UPDATED', value: (s) => formatTime(s.updatedAt) },
    { header: 'RESULT', value: (s) => compactJson(s.result), maxWidth: 48 },
  ]);
}

/**
 * The audit timeline: one line per event, oldest first. `payloadWidth` cuts long
 * payloads (`show`); `events` prints them whole.
 */
export function eventsTable(events: readonly FlowEvent[], payloadWidth?: number): string {
  // Numbered per flow, from 1: row n is the write that took the flow to revision n - 1.
  const number = new Map(events.map((e, i) => [e, String(i + 1)]));
  return formatTable(events, [
    { header: '#', value: (e) => number.get(e)! },
    { header: 'AT', value: (e) => formatTime(e.at) },
    { header: 'KIND', value: (e) => e.kind },
    { header: 'DETAILS', value: (e) => compactJson(e.payload), ...(payloadWidth === undefined ? {} : { maxWidth: payloadWidth }) },
  ]);
}

/** `1 flow`, `3 flows`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/**
 * Where a resume notification stands: `dead` (parked after its last attempt),
 * `retrying` (failed, due again at its due time), `delivering` (claimed, its
 * lease running) or `queued`.
 */
export function notificationState(notification: ResumeNotification, now: number = Date.now()): 'dead' | 'retrying' | 'delivering' | 'queued' {
  if (notification.deadAt) return 'dead';
  if (notification.lastError !== null && notification.dueAt.getTime() > now) return 'retrying';
  if (notification.attempts > 0 && notification.dueAt.getTime() > now) return 'delivering';
  return 'queued';
}

/** The first line of an error as stored, for a table cell. */
export function firstLine(text: string | null): string {
  return text === null ? '-' : (text.split('\n')[0] ?? '');
}

/** The resume notifications table of `taskflow show`: attempts and last error of each. */
export function notificationsTable(notifications: readonly ResumeNotification[]): string {
  return formatTable(notifications, [
    { header: '#', value: (n) => String(n.id) },
    { header: 'STATE', value: (n) => notificationState(n) },
    { header: 'REASON', value: (n) => n.wake.reason },
    { header: 'ATTEMPTS', value: (n) => String(n.attempts) },
    { header: 'DUE', value: (n) => (n.deadAt ? '-' : formatTime(n.dueAt)) },
    { header: 'DEAD SINCE', value: (n) => formatTime(n.deadAt) },
    { header: 'LAST ERROR', value: (n) => firstLine(n.lastError), maxWidth: 72 },
  ]);
}

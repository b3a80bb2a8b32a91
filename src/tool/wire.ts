import type { Flow } from '../runtime/flow.js';
import { formatSpan, type WaitCondition } from '../runtime/wait.js';
import type { Wake } from '../runtime/wake.js';
import type { RecurringSchedule } from '../runtime/recurring/schedule.js';
import type { WireFlow, WireSchedule, WireWait, WireWake } from './types.js';

/** A wait in the tool's snake_case wire format. */
export function waitToWire(wait: WaitCondition): WireWait {
  if (wait.kind === 'timer') return { kind: 'timer', at: wait.at.toISOString() };
  if (wait.kind === 'any') {
    return {
      kind: 'any',
      of: wait.of.map((c) =>
        c.kind === 'timer'
          ? { kind: 'timer', at: c.at.toISOString() }
          : c.kind === 'external_event'
            ? { kind: 'external_event', topic: c.topic, correlation_id: c.correlationId }
            : { kind: 'manual', signal: c.signal },
      ),
    };
  }
  if (wait.kind === 'recurring') return { kind: 'recurring', occurrence: wait.occurrence, at: wait.at.toISOString() };
  const timeout = wait.timeoutAt === undefined ? {} : { timeout_at: wait.timeoutAt.toISOString() };
  if (wait.kind === 'external_event') {
    return { kind: 'external_event', topic: wait.topic, correlation_id: wait.correlationId, ...timeout };
  }
  return { kind: 'manual', ...(wait.signal === undefined ? {} : { signal: wait.signal }), ...timeout };
}

/** Why a flow resumed, in the wire format. */
export function wakeToWire(wake: Wake): WireWake {
  const wire: WireWake = { reason: wake.reason, at: wake.at.toISOString() };
  if (wake.topic !== undefined) wire.topic = wake.topic;
  if (wake.correlationId !== undefined) wire.correlation_id = wake.correlationId;
  if (wake.signal !== undefined) wire.signal = wake.signal;
  if (wake.payload !== undefined) wire.payload = wake.payload;
  if (wake.condition !== undefined) wire.condition = { index: wake.condition.index, kind: wake.condition.kind };
  if (wake.occurrence !== undefined) {
    const { number, scheduledAt, missed, last } = wake.occurrence;
    wire.occurrence = { number, scheduled_at: scheduledAt.toISOString(), missed, last };
  }
  return wire;
}

/** A recurring schedule in the wire format. */
export function scheduleToWire(schedule: RecurringSchedule): WireSchedule {
  const wire: WireSchedule = { first_at: schedule.first.toISOString(), catch_up: schedule.catchUp };
  if (schedule.every !== undefined) wire.every = formatSpan(schedule.every);
  if (schedule.cron !== undefined) wire.cron = schedule.cron;
  if (schedule.timeZone !== undefined) wire.time_zone = schedule.timeZone;
  if (schedule.until !== undefined) wire.until = schedule.until.toISOString();
  if (schedule.count !== undefined) wire.count = schedule.count;
  if (schedule.last !== undefined) wire.last_occurrence = { number: schedule.last.number, at: schedule.last.at.toISOString() };
  return wire;
}

/** A flow in the wire format: snake_case, RFC 3339 instants, no revision. */
export function flowToWire(flow: Flow, lastWake?: Wake): WireFlow {
  const wire: WireFlow = {
    id: flow.id,
    controller_id: flow.controllerId,
    goal: flow.goal,
    current_step: flow.currentStep,
    status: flow.status,
    cancel_requested: flow.cancelRequested,
    state: flow.state,
    wait: flow.wait ? waitToWire(flow.wait) : null,
    created_at: flow.createdAt.toISOString(),
    updated_at: flow.updatedAt.toISOString(),
  };
  if (flow.schedule !== undefined) wire.schedule = scheduleToWire(flow.schedule);
  if (lastWake) wire.last_wake = wakeToWire(lastWake);
  return wire;
}

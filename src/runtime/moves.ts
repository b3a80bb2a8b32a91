import { FlowError } from './errors.js';
import { assertMove, assertWritable, mergeState, type Flow, type JsonObject } from './flow.js';
import type { AuditEntry, FlowWrite } from './commit-plan.js';
import { waitToJson, type WaitCondition } from './wait.js';
import { wakeToJson, type Wake } from './wake.js';

/**
 * Pure builders of {@link FlowWrite}s: each takes the current flow and returns
 * its next version with the one audit event that explains it, or throws the
 * `FlowError` that refuses the move. The manager and the engine share them.
 */
function write(flow: Flow, now: Date, changes: Partial<Flow>, event: AuditEntry, wake?: Wake): FlowWrite {
  const next: Flow = { ...flow, ...changes, revision: flow.revision + 1, updatedAt: now };
  const written: FlowWrite = wake ? { flow: next, fromRevision: flow.revision, events: [event], wake } : { flow: next, fromRevision: flow.revision, events: [event] };
  // An any-of wait set or cleared: its event keys (flow_wait_keys) change with it.
  if ('wait' in changes && (flow.wait?.kind === 'any' || changes.wait?.kind === 'any')) written.rekeys = true;
  return written;
}

/** Chains a second write onto the first, in the same transaction. */
export function chain(first: FlowWrite, next: (flow: Flow) => FlowWrite): FlowWrite {
  const second = next(first.flow);
  return {
    flow: second.flow,
    fromRevision: first.fromRevision,
    events: [...first.events, ...second.events],
    ...(second.wake ?? first.wake ? { wake: second.wake ?? first.wake } : {}),
    ...(first.rekeys || second.rekeys ? { rekeys: true } : {}),
  };
}

export function startMove(flow: Flow, now: Date): FlowWrite {
  if (flow.status === 'waiting') {
    throw new FlowError('illegal_transition', `flow ${flow.id} is waiting: resume it instead of starting it`);
  }
  assertMove(flow, 'running');
  return write(flow, now, { status: 'running' }, { kind: 'started', payload: {} });
}

export function waitMove(flow: Flow, now: Date, wait: WaitCondition): FlowWrite {
  assertMove(flow, 'waiting');
  return write(flow, now, { status: 'waiting', wait }, { kind: 'waiting', payload: { wait: waitToJson(wait) } });
}

/**
 * Resumes a waiting flow. Resume data describes the latest wake only: an event's
 * payload lands in `state.resume_event`, a signal's in `state.resume_signal`, and
 * every resume removes the `resume_*` keys it does not set (a timeout after an
 * earlier event no longer shows that event). A `patch` is merged last.
 */
export function resumeMove(flow: Flow, now: Date, wake: Wake, patch?: JsonObject): FlowWrite {
  if (flow.status === 'running' || flow.status === 'created') {
    throw new FlowError('illegal_transition', `flow ${flow.id} is ${flow.status}, not waiting: there is nothing to resume`);
  }
  assertMove(flow, 'running');
  const sets = wake.reason === 'event' || (wake.reason === 'signal' && wake.payload !== undefined);
  const stale = Object.hasOwn(flow.state, 'resume_event') || Object.hasOwn(flow.state, 'resume_signal');
  let state = flow.state;
  // A wake that neither sets nor clears resume data leaves the state object as it was (no copy, no re-check).
  if (sets || stale) {
    const { resume_event: _event, resume_signal: _signal, ...rest } = flow.state;
    state = rest;
    if (wake.reason === 'event') state.resume_event = wake.payload ?? null;
    if (wake.reason === 'signal' && wake.payload !== undefined) state.resume_signal = wake.payload;
  }
  return write(flow, now, { status: 'running', wait: null, state: mergeState(state, patch) }, { kind: 'resumed', payload: wakeToJson(wake) }, wake);
}

export function finishMove(flow: Flow, now: Date, finalState?: JsonObject): FlowWrite {
  assertMove(flow, 'finished');
  return write(flow, now, { status: 'finished', state: mergeState(flow.state, finalState) }, { kind: 'finished', payload: {} });
}

export function failMove(flow: Flow, now: Date, reason: string): FlowWrite {
  assertMove(flow, 'failed');
  const state = { ...flow.state, failure: { reason, at: now.toISOString() } };
  return write(flow, now, { status: 'failed', wait: null, state }, { kind: 'failed', payload: { reason } });
}

export function cancelMove(flow: Flow, now: Date): FlowWrite {
  assertMove(flow, 'cancelled');
  return write(flow, now, { status: 'cancelled', wait: null }, { kind: 'cancelled', payload: {} });
}

/** Sets the sticky cancel flag; a waiting flow is cancelled at once. Undefined when there is nothing to do. */
export function requestCancelMove(flow: Flow, now: Date): FlowWrite | undefined {
  if (flow.cancelRequested || flow.status === 'finished' || flow.status === 'failed' || flow.status === 'cancelled') {
    return undefined;
  }
  const requested = write(flow, now, { cancelRequested: true }, { kind: 'cancel_requested', payload: {} });
  return flow.status === 'waiting' ? chain(requested, (next) => cancelMove(next, now)) : requested;
}

export function updateStateMove(flow: Flow, now: Date, patch: JsonObject, nextStep?: string): FlowWrite {
  assertWritable(flow);
  const changes: Partial<Flow> = { state: mergeState(flow.state, patch) };
  if (nextStep !== undefined) changes.currentStep = nextStep;
  const payload: JsonObject = { keys: Object.keys(patch) };
  if (nextStep !== undefined) payload.currentStep = nextStep;
  return write(flow, now, changes, { kind: 'state_updated', payload });
}

/** Records a step against a flow: a terminal flow refuses it; a cancel-pending one still learns how its children ended. */
export function observeStepMove(flow: Flow, now: Date, step: { runId: string; task: string; status: string }): FlowWrite {
  if (flow.status === 'finished' || flow.status === 'failed' || flow.status === 'cancelled') {
    throw new FlowError('already_terminal', `flow ${flow.id} is already ${flow.status}; it records no more steps`);
  }
  return write(flow, now, {}, { kind: 'step_observed', payload: { runId: step.runId, task: step.task, status: step.status } });
}

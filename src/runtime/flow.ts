import { FlowError } from './errors.js';
import type { JsonObject } from './json.js';
import type { RecurringSchedule } from './recurring/schedule.js';
import type { WaitCondition } from './wait-condition.js';

export type { JsonObject } from './json.js';

/** Every status a flow can be in. */
export const FLOW_STATUSES = ['created', 'running', 'waiting', 'finished', 'failed', 'cancelled'] as const;
export type FlowStatus = (typeof FLOW_STATUSES)[number];

/** Statuses a flow never leaves. */
export const TERMINAL_STATUSES: readonly FlowStatus[] = ['finished', 'failed', 'cancelled'];

/**
 * A durable unit of agent work, as stored. `S` types `state` for a host that knows
 * its controllers' state (`manager.get<InvoiceState>(id)`); attach a schema per
 * controller (`stateSchemas`) to have the runtime enforce it.
 */
export interface Flow<S extends object = JsonObject> {
  id: string;
  /** Who drives the flow, such as `kate/inbox-triage`. */
  controllerId: string;
  goal: string;
  /** The session that owns the flow (`agent:<agent>:session:<session>`): the tenancy gate. */
  ownerSessionKey: string;
  requesterOrigin: string | null;
  currentStep: string;
  state: S;
  /** What the flow waits for; set only while `status` is `waiting`. */
  wait: WaitCondition | null;
  /**
   * The flow's recurring schedule, once it has waited on one: kept while it runs
   * between occurrences, so the next wait counts from the previous occurrence.
   */
  schedule?: RecurringSchedule;
  status: FlowStatus;
  /** Sticky: once set, only a move to `cancelled` is allowed. */
  cancelRequested: boolean;
  /** 0 at birth, +1 on every write. */
  revision: number;
  createdAt: Date;
  updatedAt: Date;
}

/** Kinds of audit event a flow records, one per write. */
export const FLOW_EVENT_KINDS = [
  'created',
  'started',
  'waiting',
  'resumed',
  'finished',
  'failed',
  'cancelled',
  'cancel_requested',
  'state_updated',
  'step_observed',
] as const;
export type FlowEventKind = (typeof FLOW_EVENT_KINDS)[number];

/** One row of a flow's append-only audit log. */
export interface FlowEvent {
  id: number;
  flowId: string;
  kind: FlowEventKind;
  payload: JsonObject;
  at: Date;
}

export const STEP_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/** Work done elsewhere (a child run) and recorded against a mirrored flow. */
export interface FlowStep {
  id: string;
  flowId: string;
  runtime: string;
  childSessionKey: string | null;
  runId: string;
  task: string;
  status: StepStatus;
  result: unknown;
  createdAt: Date;
  updatedAt: Date;
}

const LEGAL_MOVES: Readonly<Record<FlowStatus, readonly FlowStatus[]>> = {
  created: ['running', 'cancelled'],
  running: ['waiting', 'finished', 'failed', 'cancelled'],
  waiting: ['running', 'failed', 'cancelled'],
  finished: [],
  failed: [],
  cancelled: [],
};

export function isTerminal(status: FlowStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function isFlowStatus(value: unknown): value is FlowStatus {
  return typeof value === 'string' && (FLOW_STATUSES as readonly string[]).includes(value);
}

/** Whether the machine allows `from → to`, ignoring the cancel flag. */
export function canMove(from: FlowStatus, to: FlowStatus): boolean {
  return LEGAL_MOVES[from].includes(to);
}

/**
 * Throws the `FlowError` that refuses `flow → to`, or returns when the move is legal.
 * Order matters: a terminal flow reports `already_terminal` before anything else.
 */
export function assertMove(flow: Pick<Flow, 'id' | 'status' | 'cancelRequested'>, to: FlowStatus): void {
  if (isTerminal(flow.status)) {
    throw new FlowError('already_terminal', `flow ${flow.id} is already ${flow.status} and cannot move to ${to}`);
  }
  if (flow.cancelRequested && to !== 'cancelled') {
    throw new FlowError(
      'cancel_pending',
      `flow ${flow.id} has a pending cancel request: the only allowed move is to cancelled`,
    );
  }
  if (!canMove(flow.status, to)) {
    const allowed = LEGAL_MOVES[flow.status].join(', ');
    throw new FlowError('illegal_transition', `flow ${flow.id} cannot move from ${flow.status} to ${to} (allowed: ${allowed})`);
  }
}

/** Refuses a state update on a terminal or cancel-pending flow. */
export function assertWritable(flow: Pick<Flow, 'id' | 'status' | 'cancelRequested'>): void {
  if (isTerminal(flow.status)) {
    throw new FlowError('already_terminal', `flow ${flow.id} is already ${flow.status}; its state can no longer change`);
  }
  if (flow.cancelRequested) {
    throw new FlowError('cancel_pending', `flow ${flow.id} has a pending cancel request; its state can no longer change`);
  }
}

/** Shallow merge: top-level keys of `patch` overwrite those of `state`. */
export function mergeState(state: JsonObject, patch: JsonObject | undefined): JsonObject {
  return patch === undefined ? state : { ...state, ...patch };
}

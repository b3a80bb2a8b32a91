import type { Flow, FlowEvent, FlowEventKind, FlowStatus, FlowStep, JsonObject, StepStatus } from '../flow.js';
import type { Decision } from '../commit-plan.js';
import type { InboxKeySummary, KeptEvent } from '../inbox.js';
import { waitFromJson, waitToJson, wakeAtOf } from '../wait.js';
import { scheduleFromJson, scheduleToJson } from '../recurring/schedule.js';

// The columns this mapping reads, by the names both dialects' schemas give them
// (`sqlite/schema.ts`, `postgres/schema.ts`): written here, so the shared core
// leans on neither dialect. Type aliases, not interfaces: PostgreSQL's untyped
// rows (`Record<string, unknown>`) are cast to them.
type FlowRow = {
  id: string;
  controllerId: string;
  goal: string;
  ownerSessionKey: string;
  requesterOrigin: string | null;
  currentStep: string;
  stateJson: string;
  waitJson: string | null;
  status: string;
  cancelRequested: number;
  revision: number;
  scheduleJson?: string | null;
  createdAt: number;
  updatedAt: number;
};
type StepRow = {
  id: string;
  flowId: string;
  runtime: string;
  childSessionKey: string | null;
  runId: string;
  task: string;
  status: string;
  resultJson: string | null;
  createdAt: number;
  updatedAt: number;
};
type EventRow = {
  id: number;
  flowId: string;
  kind: string;
  payloadJson: string;
  at: number;
};
type KeptEventRow = {
  id: number;
  topic: string;
  correlationId: string;
  eventId: string | null;
  payloadJson: string | null;
  receivedAt: number;
};

/** Converts between the domain objects and rows; shared by every dialect. */
export function flowFromRow(row: FlowRow): Flow {
  const flow: Flow = {
    id: row.id,
    controllerId: row.controllerId,
    goal: row.goal,
    ownerSessionKey: row.ownerSessionKey,
    requesterOrigin: row.requesterOrigin,
    currentStep: row.currentStep,
    state: JSON.parse(row.stateJson) as JsonObject,
    wait: row.waitJson === null ? null : waitFromJson(JSON.parse(row.waitJson) as Record<string, unknown>),
    status: row.status as FlowStatus,
    cancelRequested: row.cancelRequested !== 0,
    revision: Number(row.revision),
    createdAt: new Date(Number(row.createdAt)),
    updatedAt: new Date(Number(row.updatedAt)),
  };
  if (row.scheduleJson !== null && row.scheduleJson !== undefined) flow.schedule = scheduleFromJson(JSON.parse(row.scheduleJson) as JsonObject);
  return flow;
}

/** The columns written for a flow; `stateJson` is passed in when already serialised. */
export function flowToRow(flow: Flow, stateJson: string = JSON.stringify(flow.state)) {
  const wait = flow.wait;
  return {
    id: flow.id,
    controllerId: flow.controllerId,
    goal: flow.goal,
    ownerSessionKey: flow.ownerSessionKey,
    requesterOrigin: flow.requesterOrigin,
    currentStep: flow.currentStep,
    stateJson,
    waitJson: wait === null ? null : JSON.stringify(waitToJson(wait)),
    status: flow.status,
    cancelRequested: flow.cancelRequested ? 1 : 0,
    revision: flow.revision,
    wakeAt: wait === null ? null : (wakeAtOf(wait)?.getTime() ?? null),
    waitTopic: wait?.kind === 'external_event' ? wait.topic : null,
    waitCorrelationId: wait?.kind === 'external_event' ? wait.correlationId : null,
    scheduleJson: flow.schedule === undefined ? null : JSON.stringify(scheduleToJson(flow.schedule)),
    createdAt: flow.createdAt.getTime(),
    updatedAt: flow.updatedAt.getTime(),
  };
}

export function stepFromRow(row: StepRow): FlowStep {
  return {
    id: row.id,
    flowId: row.flowId,
    runtime: row.runtime,
    childSessionKey: row.childSessionKey,
    runId: row.runId,
    task: row.task,
    status: row.status as StepStatus,
    result: row.resultJson === null ? null : (JSON.parse(row.resultJson) as unknown),
    createdAt: new Date(Number(row.createdAt)),
    updatedAt: new Date(Number(row.updatedAt)),
  };
}

export function stepToRow(step: FlowStep) {
  return {
    id: step.id,
    flowId: step.flowId,
    runtime: step.runtime,
    childSessionKey: step.childSessionKey,
    runId: step.runId,
    task: step.task,
    status: step.status,
    resultJson: step.result === null || step.result === undefined ? null : JSON.stringify(step.result),
    createdAt: step.createdAt.getTime(),
    updatedAt: step.updatedAt.getTime(),
  };
}

export function eventFromRow(row: EventRow): FlowEvent {
  return {
    id: Number(row.id),
    flowId: row.flowId,
    kind: row.kind as FlowEventKind,
    payload: JSON.parse(row.payloadJson) as JsonObject,
    at: new Date(Number(row.at)),
  };
}

export function keptEventFromRow(row: KeptEventRow): KeptEvent {
  return {
    id: Number(row.id),
    topic: row.topic,
    correlationId: row.correlationId,
    eventId: row.eventId,
    payload: row.payloadJson === null ? undefined : (JSON.parse(row.payloadJson) as unknown),
    receivedAt: new Date(Number(row.receivedAt)),
  };
}

export function keptEventToRow(kept: NonNullable<Decision<unknown>['keepEvent']>) {
  return {
    topic: kept.key.topic,
    correlationId: kept.key.correlationId,
    eventId: kept.eventId ?? null,
    payloadJson: kept.payload === undefined ? null : JSON.stringify(kept.payload),
    receivedAt: kept.receivedAt.getTime(),
    expiresAt: kept.expiresAt.getTime(),
  };
}

/** A `GROUP BY topic, correlation_id` row of the inbox (counts and times may come back as strings or bigints). */
export function inboxSummaryFromRow(row: {
  topic: string;
  correlationId: string;
  events: number | string;
  oldestAt: number | string;
  newestAt: number | string;
  expiresAt: number | string;
}): InboxKeySummary {
  return {
    topic: row.topic,
    correlationId: row.correlationId,
    events: Number(row.events),
    oldestAt: new Date(Number(row.oldestAt)),
    newestAt: new Date(Number(row.newestAt)),
    expiresAt: new Date(Number(row.expiresAt)),
  };
}

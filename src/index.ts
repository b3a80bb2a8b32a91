export { FlowError, type FlowErrorCode } from './runtime/errors.js';
export { parseDuration, type Duration } from './runtime/duration.js';
export { ManualClock, systemClock, type Clock } from './runtime/clock.js';
export { defaultLogger, silentLogger, stderrLogger, type Logger, type LogSink } from './runtime/logger.js';
export {
  FLOW_STATUSES,
  FLOW_EVENT_KINDS,
  STEP_STATUSES,
  TERMINAL_STATUSES,
  canMove,
  isTerminal,
  mergeState,
  type Flow,
  type FlowEvent,
  type FlowEventKind,
  type FlowStatus,
  type FlowStep,
  type JsonObject,
  type StepStatus,
} from './runtime/flow.js';
export {
  parseWait,
  wakeAtOf,
  type ExternalEventWait,
  type Instant,
  type ManualWait,
  type TimerWait,
  type WaitCondition,
  type WaitInput,
  type AnyOfWait,
  type AnyOfCondition,
  type AnyOfConditionInput,
} from './runtime/wait.js';
export { MAX_ANY_OF } from './runtime/any-of.js';
export type { ResumeReason, Wake, WakeCondition } from './runtime/wake.js';
export {
  CATCH_UP_POLICIES,
  describeSchedule,
  type CatchUp,
  type Occurrence,
  type RecurringSchedule,
  type RecurringWait,
  type RecurringWaitInput,
} from './runtime/recurring/schedule.js';
export { occurrenceDone } from './runtime/recurring/moves.js';
export { MIN_RECURRING_INTERVAL_MS } from './runtime/recurring/parse.js';
export {
  FlowManager,
  MAX_BULK_CREATE,
  type CreateFlowInput,
  type FlowManagerOptions,
  type StartFlowInput,
  type StepObservation,
  type WriteOptions,
} from './runtime/manager.js';
export {
  WaitEngine,
  DEFAULT_MAX_RESUME_ATTEMPTS,
  DEFAULT_RESUME_CONCURRENCY,
  type DeliveryOutcome,
  type DeliveryResult,
  type EventDelivery,
  type ResumeHandler,
  type SignalInput,
  type TickResult,
  type WaitEngineOptions,
} from './runtime/engine/engine.js';
export type { FlowStore, InboxKeySummary, ListOptions, ResumeNotification } from './runtime/store/contract.js';
export type { BatchCommit, BatchOutcome } from './runtime/store/contract.js';
export { DEFAULT_INBOX_LIMITS, type InboxDrop, type InboxDropCounts, type InboxLimits } from './runtime/inbox.js';
export type { StateSchema, StateSchemas } from './runtime/state-schema.js';
export { openSqliteStore, openSqliteWorkerStore } from './runtime/store/sqlite/public.js';
export type { SqliteStoreOptions } from './runtime/store/sqlite/options.js';
export { openTaskflow, defaultDatabasePath, type Taskflow, type TaskflowOptions } from './runtime/taskflow.js';
export { TELEMETRY_ATTRIBUTES, TRACEPARENT_KEY, type TelemetryMeter, type TelemetryOption, type TelemetryOptions, type TelemetryTracer } from './runtime/telemetry.js';
export {
  createTaskflowTool,
  taskflowInputJsonSchema,
  taskflowInputSchema,
  topicMatches,
  TASKFLOW_ACTIONS,
  type OwnerResolver,
  type TaskflowAction,
  type TaskflowBinding,
  type TaskflowFlowResult,
  type TaskflowListResult,
  type TaskflowRefusal,
  type TaskflowRuntime,
  type TaskflowTool,
  type TaskflowToolErrorCode,
  type TaskflowToolInput,
  type TaskflowToolResult,
  type WireFlow,
  type WireWait,
  type WireSchedule,
  type WireOccurrence,
  type WireWake,
  type WireAnyOfCondition,
} from './tool/index.js';
export type {
  NatsBridgeEvents,
  NatsBridgeMode,
  NatsBridgeState,
  NatsBridgeStatus,
  NatsConnectionOptions,
  NatsOptions,
  TopicRefusal,
} from './runtime/nats/options.js';
export { CORRELATION_HEADER, LIFECYCLE_PREFIX, MSG_ID_HEADER, RESUME_SUBJECT, parseInbound, type InboundMessage, type ParsedInbound } from './runtime/nats/message.js';
export { LIFECYCLE_KINDS, lifecycleMessages, type LifecycleEvent, type LifecycleKind, type LifecycleMessage } from './runtime/nats/lifecycle.js';
export type { StartOrDeliverInput } from './runtime/start-or-deliver-input.js';
export type { StartOrDeliverResult } from './runtime/engine/start-or-deliver-plan.js';
export {
  DOCTOR_CHECKS,
  FINDING_KINDS,
  diagnose,
  type DiagnoseOptions,
  type Diagnosis,
  type DoctorCheck,
  type Finding,
  type FindingKind,
  type NearMiss,
} from './runtime/doctor/diagnose.js';
export { waitFacts, type WaitFacts } from './runtime/doctor/wait-facts.js';
export type { KeyDifference } from './runtime/doctor/similarity.js';
export type { BridgeCover, Heartbeat } from './runtime/store/diagnostics.js';

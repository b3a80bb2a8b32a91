import type { Duration } from '../runtime/duration.js';
import type { FlowStatus, JsonObject } from '../runtime/flow.js';
import type { TaskflowAction } from './actions.js';

/**
 * Who owns the flows a call may see: a fixed session key, or a function that
 * resolves it per call from the SDK's call context (so one tool instance can
 * serve many sessions). Returning `undefined` or an empty string refuses the call.
 */
export type OwnerResolver<Context> = string | ((context: Context) => string | undefined | Promise<string | undefined>);

/** What a tool instance may do, and for whom. */
export interface TaskflowBinding<Context = unknown> {
  /** The session key that owns the flows, such as `agent:kate:session:1`, or its resolver. */
  owner: OwnerResolver<Context>;
  /** Recorded as the flow's `requesterOrigin` on `start`. */
  requesterOrigin?: string;
  /** The actions this binding may use. Default: all eight. */
  allow?: readonly TaskflowAction[];
  /** How far ahead a timer or a wait timeout may be. Default: the runtime's `timerMaxHorizon`. */
  timerMaxHorizon?: Duration;
  /**
   * NATS-style patterns (`payments.>`, `orders.*.paid`) an event wait's topic must
   * match. A whole token may be a placeholder the tool fills in per call:
   * `{owner}` (the resolved owner) or a name given in {@link TaskflowBinding.scope}
   * (`tenants.{tenant}.payments.>`), so a session can never name another
   * session's or tenant's topics. Default: the NATS bridge's `subjects`; when
   * the host declared neither, event waits are refused (see `anyTopic`).
   * Subjects starting with `$` or `_INBOX`, and the runtime's own `taskflow.…`,
   * are always refused.
   */
  topics?: readonly string[];
  /**
   * Values for the placeholders in `topics`, by name: a fixed token or a function
   * resolving it per call from the SDK's call context, like `owner`. Each value
   * must be one subject token (no `.`, `*`, `>` or whitespace).
   */
  scope?: { readonly [name: string]: OwnerResolver<Context> };
  /**
   * Lets event waits use any topic (still never `$…`, `_INBOX…` or `taskflow.…`)
   * when neither `topics` nor the bridge's `subjects` declare any. Default false:
   * a model cannot wait on, and so make the bridge capture, a subject the host
   * did not declare.
   */
  anyTopic?: boolean;
  /**
   * Recurring waits (`{"kind":"recurring","every":"3d"}`, cron schedules) and
   * `next_occurrence`: `false` keeps them from the model (not described,
   * refused); an object sets the shortest interval a schedule may have.
   * Default `{ minInterval: '1m' }`. Each period must also fit the horizon.
   */
  recurring?: boolean | { minInterval?: Duration };
}

/** Why a call was refused. Stable strings: a model or a host can branch on them. */
export type TaskflowToolErrorCode =
  | 'invalid_input'
  | 'unknown_action'
  | 'action_not_allowed'
  | 'topic_not_allowed'
  | 'no_owner'
  | 'not_found'
  | 'illegal_transition'
  | 'already_terminal'
  | 'cancel_pending'
  | 'revision_mismatch'
  | 'storage'
  | 'internal';

/** A wait condition as the tool shows it: snake_case, instants in RFC 3339. */
export type WireWait =
  | { kind: 'timer'; at: string }
  | { kind: 'external_event'; topic: string; correlation_id: string; timeout_at?: string }
  | { kind: 'manual'; signal?: string; timeout_at?: string }
  | { kind: 'any'; of: WireAnyOfCondition[] }
  | { kind: 'recurring'; occurrence: number; at: string };

/** One condition of an any-of wait as the tool shows it. */
export type WireAnyOfCondition =
  | { kind: 'timer'; at: string }
  | { kind: 'external_event'; topic: string; correlation_id: string }
  | { kind: 'manual'; signal: string };

/** A flow's recurring schedule as the tool shows it. */
export interface WireSchedule {
  every?: string;
  cron?: string;
  time_zone?: string;
  first_at: string;
  until?: string;
  count?: number;
  catch_up: 'latest' | 'each';
  /** The occurrence the flow last resumed for (absent before the first). */
  last_occurrence?: { number: number; at: string };
}

/** The occurrence a recurring resume is for. */
export interface WireOccurrence {
  /** Stable: the same number again means the same occurrence, already seen. */
  number: number;
  scheduled_at: string;
  /** Occurrences folded into this one while no engine ran. */
  missed: number;
  /** No occurrence follows: finish the flow or wait on something else. */
  last: boolean;
}

/** Why a flow last resumed, from its latest `resumed` audit event. */
export interface WireWake {
  reason: 'timer' | 'event' | 'signal' | 'timeout' | 'manual' | 'recurring';
  at: string;
  topic?: string;
  correlation_id?: string;
  signal?: string;
  payload?: unknown;
  /** Set when the flow waited on the first of several conditions: which one won (its place in `of` and its kind). */
  condition?: { index: number; kind: 'timer' | 'external_event' | 'manual' };
  occurrence?: WireOccurrence;
}

/** A flow as the tool shows it. The revision stays hidden from the model. */
export interface WireFlow {
  id: string;
  controller_id: string;
  goal: string;
  current_step: string;
  status: FlowStatus;
  cancel_requested: boolean;
  state: JsonObject;
  wait: WireWait | null;
  /** Present once the flow has waited on a recurring schedule. */
  schedule?: WireSchedule;
  created_at: string;
  updated_at: string;
  /** Present once the flow has resumed from a wait at least once. */
  last_wake?: WireWake;
}

/** The answer to an action on one flow. `now` is the current time (RFC 3339). */
export interface TaskflowFlowResult {
  ok: true;
  flow: WireFlow;
  now: string;
  /**
   * `status` only, when the flow's wait looks stuck: what is wrong and what to do,
   * in words (a kept event for a near-miss key, a topic no bridge covers, a due
   * timer with no engine, an old signal wait with no timeout).
   */
  warnings?: string[];
}

/** The answer to `list_mine`: one page, newest first. */
export interface TaskflowListResult {
  ok: true;
  count: number;
  flows: WireFlow[];
  /** True when more flows follow this page: ask again with a larger `offset`. */
  has_more: boolean;
  now: string;
}

/** A refused call. Nothing changed; `message` says how to fix the call. */
export interface TaskflowRefusal {
  ok: false;
  error: TaskflowToolErrorCode;
  message: string;
}

/** Everything {@link TaskflowTool.call} can answer. */
export type TaskflowToolResult = TaskflowFlowResult | TaskflowListResult | TaskflowRefusal;

/** The transport-neutral `taskflow` tool: wrap it in any SDK's tool type. */
export interface TaskflowTool<Context = unknown> {
  readonly name: 'taskflow';
  /** Teaches a model when and how to call the tool, with examples. */
  readonly description: string;
  /** The JSON Schema a model sees: one flat object with a top-level `type: "object"`. */
  readonly inputJsonSchema: TaskflowInputJsonSchema;
  /** Runs one call. Never throws: every problem is a {@link TaskflowRefusal} that changed nothing. */
  call(input: unknown, context?: Context): Promise<TaskflowToolResult>;
}

/** A JSON Schema document (a plain JSON object). */
export interface TaskflowInputJsonSchema {
  type: 'object';
  properties: { [field: string]: JsonObject };
  required: string[];
  additionalProperties: boolean;
  [keyword: string]: unknown;
}

/** The input a model sends, as TypeScript (every field but `action` is optional; the tool checks each action's needs). */
export interface TaskflowToolInput {
  action: TaskflowAction;
  flow_id?: string;
  controller_id?: string;
  goal?: string;
  current_step?: string;
  state?: JsonObject;
  idempotency_key?: string;
  patch?: JsonObject;
  wait_condition?: {
    kind: 'timer' | 'external_event' | 'manual' | 'any' | 'recurring' | 'next_occurrence';
    /** any: the conditions, the first to happen wins. */
    of?: { kind: 'timer' | 'external_event' | 'manual'; at?: string; in?: string; topic?: string; correlation_id?: string; signal?: string }[];
    every?: string;
    cron?: string;
    time_zone?: string;
    start_at?: string;
    until?: string;
    count?: number;
    catch_up?: 'latest' | 'each';
    after?: number;
    at?: string;
    in?: string;
    topic?: string;
    correlation_id?: string;
    signal?: string;
    timeout_at?: string;
    timeout_in?: string;
  };
  final_state?: JsonObject;
  reason?: string;
  status?: FlowStatus;
  limit?: number;
  offset?: number;
}

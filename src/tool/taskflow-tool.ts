import type { Flow } from '../runtime/flow.js';
import type { Taskflow } from '../runtime/taskflow.js';
import { normaliseKey } from '../runtime/text.js';
import { wakeFromJson } from '../runtime/wake.js';
import type { WaitInput } from '../runtime/wait.js';
import { waitWarnings } from '../runtime/doctor/flow-warnings.js';
import { isTaskflowAction, TASKFLOW_ACTIONS } from './actions.js';
import { resolveBinding, type ResolvedBinding } from './binding.js';
import { parseCommand, type Command } from './commands.js';
import { describeTaskflowTool } from './description.js';
import { bridgeDeclaration } from './host-subjects.js';
import { describeValue, isRecord, type Fields } from './fields.js';
import { taskflowInputJsonSchema } from './input-schema.js';
import { refusalOf, ToolRefusal } from './refusal.js';
import { describeTopicPolicy, fillPolicy, OWNER_PLACEHOLDER, tokenValueProblem, type FilledTopicPolicy } from './topic-scope.js';
import type { TaskflowBinding, TaskflowFlowResult, TaskflowListResult, TaskflowTool, TaskflowToolResult } from './types.js';
import { parseWireWait } from './wait-input.js';
import { checkNextWithinHorizon, isRecurringWire, parseWireRecurring } from './recurring-input.js';
import { flowToWire } from './wire.js';

/** The parts of a runtime the tool uses (the bridge, when present, for the subjects its host declared). */
export type TaskflowRuntime = Pick<Taskflow, 'manager' | 'store' | 'clock' | 'timerMaxHorizon'> & Partial<Pick<Taskflow, 'bridge'>>;

/**
 * Creates the transport-neutral `taskflow` tool over a runtime. Wrap it with
 * `taskflowLangChainTool` or `taskflowAiTool`, or call it from any other loop:
 *
 * ```ts
 * const taskflow = createTaskflowTool(tf, { owner: 'agent:kate:session:1', topics: ['payments.>'] });
 * const started = await taskflow.call({ action: 'start', controller_id: 'kate/shipping', goal: 'ship order 42' });
 * ```
 *
 * Throws a `FlowError` (`invalid_input`) only for a malformed binding; `call` never throws.
 */
export function createTaskflowTool<Context = unknown>(tf: TaskflowRuntime, binding: TaskflowBinding<Context>): TaskflowTool<Context> {
  const rules = resolveBinding(binding, tf.timerMaxHorizon, bridgeDeclaration(tf));
  return {
    name: 'taskflow',
    description: describeTaskflowTool(rules.allow, rules.horizonMs, describeTopicPolicy(rules.topicPolicy), rules.recurring),
    inputJsonSchema: taskflowInputJsonSchema,
    async call(input, context) {
      try {
        return await handle(tf, rules, input, context);
      } catch (error) {
        return refusalOf(error);
      }
    },
  };
}

async function handle<Context>(tf: TaskflowRuntime, rules: ResolvedBinding<Context>, input: unknown, context: Context | undefined): Promise<TaskflowToolResult> {
  const fields = readFields(input);
  const action = fields.action;
  if (!isTaskflowAction(action)) {
    throw new ToolRefusal(
      'unknown_action',
      action === undefined || action === null
        ? `the call needs action, one of ${TASKFLOW_ACTIONS.join(', ')}`
        : `unknown action ${describeValue(action)}; use one of ${TASKFLOW_ACTIONS.join(', ')}`,
    );
  }
  if (!rules.allow.includes(action)) {
    throw new ToolRefusal('action_not_allowed', `action "${action}" is not allowed here; allowed actions: ${rules.allow.join(', ')}`);
  }
  const owner = await resolveOwner(rules, context);
  return run(tf, rules, owner, parseCommand(action, fields), context);
}

function readFields(input: unknown): Fields {
  let value = input;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      // refused below
    }
  }
  if (!isRecord(value)) {
    throw new ToolRefusal('invalid_input', `the input must be a JSON object such as {"action":"list_mine"}, got ${value === undefined ? 'nothing' : describeValue(value)}`);
  }
  return value;
}

async function resolveOwner<Context>(rules: ResolvedBinding<Context>, context: Context | undefined): Promise<string> {
  let owner: string | undefined;
  try {
    owner = typeof rules.owner === 'string' ? rules.owner : await rules.owner(context as Context);
  } catch {
    owner = undefined;
  }
  if (typeof owner !== 'string' || owner.trim() === '') {
    throw new ToolRefusal('no_owner', 'this call carries no session to act for; the host must pass one (for example a thread id) to the taskflow tool');
  }
  // The one key rule, as the manager applies it to the flows' owners.
  return normaliseKey(owner, 'ownerSessionKey');
}

async function run<Context>(
  tf: TaskflowRuntime,
  rules: ResolvedBinding<Context>,
  owner: string,
  command: Command,
  context: Context | undefined,
): Promise<TaskflowToolResult> {
  const m = tf.manager;
  switch (command.action) {
    case 'start': {
      const wait = command.waitCondition === undefined ? undefined : await parseWaitFor(tf, rules, owner, command.waitCondition, context, 'start');
      // One transaction: created → running (→ waiting when wait_condition is given).
      const created = await m.createAndStart({
        controllerId: command.controllerId,
        goal: command.goal,
        ownerSessionKey: owner,
        ...(rules.requesterOrigin === undefined ? {} : { requesterOrigin: rules.requesterOrigin }),
        ...(command.currentStep === undefined ? {} : { currentStep: command.currentStep }),
        ...(command.state === undefined ? {} : { state: command.state }),
        ...(command.idempotencyKey === undefined ? {} : { idempotencyKey: command.idempotencyKey }),
        ...(wait === undefined ? {} : { wait }),
      });
      // An idempotent retry returns the first flow, which may have moved on already (or, made by the host, not started).
      return answer(tf, created.status === 'created' ? await m.startRunning(created.id) : created);
    }
    case 'list_mine': {
      const page = await m.listByOwner(owner, {
        limit: command.limit + 1,
        offset: command.offset,
        ...(command.status === undefined ? {} : { status: command.status }),
      });
      const flows = page.slice(0, command.limit);
      const wired = await wireAll(tf, flows);
      const result: TaskflowListResult = { ok: true, count: wired.length, flows: wired, has_more: page.length > command.limit, now: now(tf) };
      return result;
    }
    default:
      break;
  }
  const flow = await owned(tf, owner, command.flowId);
  switch (command.action) {
    case 'status': {
      const result = await answer(tf, flow);
      const warnings = await waitWarnings(tf.store, tf.clock, flow);
      return warnings.length === 0 ? result : { ...result, warnings };
    }
    case 'advance':
      return answer(tf, await m.updateState(flow.id, command.patch ?? {}, command.currentStep));
    case 'wait': {
      if (isRecurringWire(command.waitCondition)) return answer(tf, await waitRecurring(tf, rules, flow, command.waitCondition as Fields));
      const wait = await parseWaitFor(tf, rules, owner, command.waitCondition, context, 'wait');
      return answer(tf, await m.setWaiting(flow.id, wait));
    }
    case 'finish':
      return answer(tf, await m.finish(flow.id, command.finalState));
    case 'fail':
      return answer(tf, await m.fail(flow.id, command.reason));
    case 'cancel':
      return answer(tf, await m.cancel(flow.id));
  }
}

/** The model's wait_condition as a runtime wait, under this binding's horizon and topics; `start` needs the wait capability for it. */
async function parseWaitFor<Context>(
  tf: TaskflowRuntime,
  rules: ResolvedBinding<Context>,
  owner: string,
  condition: unknown,
  context: Context | undefined,
  action: 'start' | 'wait',
): Promise<WaitInput> {
  if (action === 'start' && !rules.allow.includes('wait')) {
    throw new ToolRefusal('action_not_allowed', `start with wait_condition parks the flow, and action "wait" is not allowed here; start without wait_condition (allowed actions: ${rules.allow.join(', ')})`);
  }
  if (action === 'start' && isRecurringWire(condition)) {
    if (rules.recurring === undefined) {
      throw new ToolRefusal('invalid_input', 'recurring waits are not available here; use a timer wait, and wait again when it resumes the flow');
    }
    const parsed = parseWireRecurring(condition as Fields, tf.clock.now(), rules.recurring.minIntervalMs, rules.horizonMs);
    if (parsed.kind !== 'schedule') throw new ToolRefusal('invalid_input', 'a new flow has no occurrence yet: start with {"kind":"recurring",...}, and use next_occurrence once it resumed');
    return parsed.wait;
  }
  return parseWireWait(condition, {
    nowMs: tf.clock.now(),
    horizonMs: rules.horizonMs,
    // Placeholder values are resolved only for an event wait: a timer needs no tenant.
    topics: isEventWait(condition) ? await topicsFor(rules, owner, context) : { kind: 'none' },
    reservedTopics: rules.reservedTopics,
  });
}

/** A recurring wait: start a schedule, or park for the next occurrence (a no-op when already past it). */
async function waitRecurring<Context>(tf: TaskflowRuntime, rules: ResolvedBinding<Context>, flow: Flow, condition: Fields): Promise<Flow> {
  if (rules.recurring === undefined) {
    throw new ToolRefusal('invalid_input', 'recurring waits are not available here; use a timer wait, and wait again when it resumes the flow');
  }
  const nowMs = tf.clock.now();
  const parsed = parseWireRecurring(condition, nowMs, rules.recurring.minIntervalMs, rules.horizonMs);
  if (parsed.kind === 'schedule') return tf.manager.setWaiting(flow.id, parsed.wait);
  checkNextWithinHorizon(flow, parsed.after, nowMs, rules.horizonMs);
  return tf.manager.waitNext(flow.id, parsed.after);
}

function isEventWait(condition: unknown): boolean {
  if (!isRecord(condition)) return false;
  // An any-of wait's event conditions are gated by the topics exactly as an event wait is.
  if (condition.kind === 'any') return Array.isArray(condition.of) && condition.of.some((c) => isRecord(c) && c.kind === 'external_event');
  return condition.kind === 'external_event';
}

/**
 * The binding's topics with this call's placeholder values filled in: `{owner}`
 * is the owner, every other name is resolved from the call context. A value that
 * is missing or not one subject token refuses the call (the host must fix it).
 */
async function topicsFor<Context>(rules: ResolvedBinding<Context>, owner: string, context: Context | undefined): Promise<FilledTopicPolicy> {
  const policy = rules.topicPolicy;
  if (policy.kind !== 'patterns') return policy;
  const values: Record<string, string> = {};
  for (const name of policy.placeholders) {
    let value: string | undefined;
    try {
      const resolver = name === OWNER_PLACEHOLDER ? owner : rules.scope[name]!;
      value = typeof resolver === 'string' ? resolver : await resolver(context as Context);
    } catch {
      value = undefined;
    }
    const problem = tokenValueProblem(value);
    if (problem) {
      throw new ToolRefusal('topic_not_allowed', `event waits are not available in this call: the host's value for {${name}} ${problem}; use a timer or a manual wait`);
    }
    values[name] = value!;
  }
  return fillPolicy(policy, values);
}

/** The caller's flow; another session's flow answers exactly like a missing one. */
async function owned(tf: TaskflowRuntime, owner: string, id: string): Promise<Flow> {
  const flow = await tf.manager.get(id);
  if (!flow || flow.ownerSessionKey !== owner) {
    throw new ToolRefusal('not_found', `no flow with id ${JSON.stringify(id)} in this session; call list_mine to see your flows`);
  }
  return flow;
}

/** Flows as the model sees them, each with why it last resumed (one store call for the page). */
async function wireAll(tf: TaskflowRuntime, flows: Flow[]) {
  const resumes = await tf.store.lastEvents(
    flows.map((flow) => flow.id),
    'resumed',
  );
  return flows.map((flow) => {
    const resumed = resumes.get(flow.id);
    return flowToWire(flow, resumed ? wakeFromJson(resumed.payload) : undefined);
  });
}

async function answer(tf: TaskflowRuntime, flow: Flow): Promise<TaskflowFlowResult> {
  const [wired] = await wireAll(tf, [flow]);
  return { ok: true, flow: wired!, now: now(tf) };
}

function now(tf: TaskflowRuntime): string {
  return new Date(tf.clock.now()).toISOString();
}

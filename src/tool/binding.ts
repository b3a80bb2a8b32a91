import { parsePositiveDuration } from '../runtime/duration.js';
import { FlowError } from '../runtime/errors.js';
import { normaliseKey, optionalText, readInput } from '../runtime/text.js';
import { formatSpan } from '../runtime/wait.js';
import { isTaskflowAction, TASKFLOW_ACTIONS, type TaskflowAction } from './actions.js';
import type { BridgeDeclaration } from './host-subjects.js';
import { isPlaceholderName, OWNER_PLACEHOLDER, placeholdersOf, templateProblem, tokenValueProblem, type TopicPolicy } from './topic-scope.js';
import type { OwnerResolver, TaskflowBinding } from './types.js';

/** A binding checked once, when the tool is created. */
export interface ResolvedBinding<Context> {
  owner: OwnerResolver<Context>;
  requesterOrigin?: string;
  allow: readonly TaskflowAction[];
  horizonMs: number;
  /** Where event waits may go. */
  topicPolicy: TopicPolicy;
  /** Resolvers of the placeholders the topic templates use (besides `owner`). */
  scope: Readonly<Record<string, OwnerResolver<Context>>>;
  /** The host's own runtime subjects beyond `taskflow.…` (a custom resume subject): never waited on. */
  reservedTopics: readonly string[];
  /** Recurring waits: the shortest interval allowed, or undefined when the binding keeps them from the model. */
  recurring?: { minIntervalMs: number };
}

/** The shortest interval of a recurring wait a model may set by default. */
export const DEFAULT_MIN_RECURRING_INTERVAL = '1m';

/**
 * Checks a binding (a host's configuration, so a mistake throws a `FlowError`
 * `invalid_input` at creation rather than refusing every call later). `bridge`
 * is what the host declared on its NATS bridge, if it runs one. Its
 * `timerMaxHorizon` may narrow the runtime's horizon, never widen it: the model
 * must never be told of a limit the runtime would then refuse.
 */
export function resolveBinding<Context>(
  binding: TaskflowBinding<Context>,
  runtimeHorizonMs: number,
  bridge?: BridgeDeclaration,
): ResolvedBinding<Context> {
  return readInput('taskflow binding', () => {
    if (typeof binding !== 'object' || binding === null) throw new FlowError('invalid_input', 'a taskflow binding object is required');
    const { owner } = binding;
    if (typeof owner !== 'function' && typeof owner !== 'string') {
      throw new FlowError('invalid_input', 'binding.owner must be a non-empty session key or a function resolving it per call');
    }
    const allow: unknown = binding.allow ?? TASKFLOW_ACTIONS;
    if (!Array.isArray(allow) || allow.length === 0 || !allow.every(isTaskflowAction)) {
      throw new FlowError('invalid_input', `binding.allow must list actions among ${TASKFLOW_ACTIONS.join(', ')}`);
    }
    const horizonMs = binding.timerMaxHorizon === undefined ? runtimeHorizonMs : parsePositiveDuration(binding.timerMaxHorizon, 'binding.timerMaxHorizon');
    if (horizonMs > runtimeHorizonMs) {
      throw new FlowError(
        'invalid_input',
        `binding.timerMaxHorizon (${formatSpan(horizonMs)}) is wider than the runtime's timerMaxHorizon (${formatSpan(runtimeHorizonMs)}), ` +
          "which would refuse such timers; give at most the runtime's horizon, or raise it in openTaskflow",
      );
    }
    const scope = resolveScope(binding.scope);
    const resolved: ResolvedBinding<Context> = {
      owner: typeof owner === 'string' ? normaliseKey(owner, 'ownerSessionKey') : owner,
      allow: TASKFLOW_ACTIONS.filter((a) => allow.includes(a)),
      horizonMs,
      topicPolicy: resolveTopicPolicy(binding, new Set([OWNER_PLACEHOLDER, ...Object.keys(scope)]), bridge),
      scope,
      reservedTopics: bridge?.resumeSubject === undefined ? [] : [bridge.resumeSubject],
    };
    const recurring = resolveRecurring(binding.recurring);
    if (recurring !== undefined) resolved.recurring = recurring;
    const requesterOrigin = optionalText(binding.requesterOrigin, 'requesterOrigin');
    if (requesterOrigin !== undefined) resolved.requesterOrigin = requesterOrigin;
    return resolved;
  });
}

function resolveRecurring(recurring: TaskflowBinding['recurring']): { minIntervalMs: number } | undefined {
  if (recurring === false) return undefined;
  if (recurring === undefined || recurring === true) return { minIntervalMs: parsePositiveDuration(DEFAULT_MIN_RECURRING_INTERVAL, 'binding.recurring.minInterval') };
  if (typeof recurring !== 'object' || recurring === null || Array.isArray(recurring)) {
    throw new FlowError('invalid_input', 'binding.recurring must be true, false or { minInterval: "1m" }');
  }
  const minInterval = recurring.minInterval ?? DEFAULT_MIN_RECURRING_INTERVAL;
  return { minIntervalMs: parsePositiveDuration(minInterval, 'binding.recurring.minInterval') };
}

function resolveScope<Context>(scope: TaskflowBinding<Context>['scope']): Record<string, OwnerResolver<Context>> {
  if (scope === undefined) return {};
  if (typeof scope !== 'object' || scope === null || Array.isArray(scope)) {
    throw new FlowError('invalid_input', 'binding.scope must be an object of placeholder values, such as { tenant: "acme" }');
  }
  const resolved: Record<string, OwnerResolver<Context>> = {};
  for (const [name, value] of Object.entries(scope)) {
    if (!isPlaceholderName(name) || name === OWNER_PLACEHOLDER) {
      throw new FlowError('invalid_input', `binding.scope: "${name}" cannot name a placeholder (letters, digits and _; "owner" is built in)`);
    }
    if (typeof value === 'string') {
      const problem = tokenValueProblem(value);
      if (problem) throw new FlowError('invalid_input', `binding.scope.${name} ${problem}`);
    } else if (typeof value !== 'function') {
      throw new FlowError('invalid_input', `binding.scope.${name} must be a subject token or a function resolving it per call`);
    }
    resolved[name] = value;
  }
  return resolved;
}

function resolveTopicPolicy<Context>(binding: TaskflowBinding<Context>, known: ReadonlySet<string>, bridge: BridgeDeclaration | undefined): TopicPolicy {
  const { topics, anyTopic } = binding;
  if (anyTopic !== undefined && typeof anyTopic !== 'boolean') throw new FlowError('invalid_input', 'binding.anyTopic must be true or false');
  if (topics !== undefined) {
    if (anyTopic) throw new FlowError('invalid_input', 'binding: give topics or anyTopic, not both');
    if (!Array.isArray(topics)) throw new FlowError('invalid_input', 'binding.topics must be a list of patterns, such as ["payments.>"]');
    // An empty list is a host saying "no event waits here".
    if (topics.length === 0) return { kind: 'none' };
    for (const template of topics) {
      const problem = templateProblem(template, known);
      if (problem) throw new FlowError('invalid_input', `binding.topics: ${problem}`);
    }
    const placeholders = [...new Set(topics.flatMap(placeholdersOf))];
    return { kind: 'patterns', source: 'binding', templates: [...topics], placeholders };
  }
  if (anyTopic) return { kind: 'any' };
  if (bridge && bridge.subjects.length > 0) return { kind: 'patterns', source: 'bridge', templates: [...bridge.subjects], placeholders: [] };
  return { kind: 'none' };
}

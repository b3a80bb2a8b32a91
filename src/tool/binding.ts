import { parseDuration } from '../runtime/duration.js';
import { FlowError } from '../runtime/errors.js';
import { isTaskflowAction, TASKFLOW_ACTIONS, type TaskflowAction } from './actions.js';
import { topicPatternProblem } from './topic-pattern.js';
import type { OwnerResolver, TaskflowBinding } from './types.js';

/** A binding checked once, when the tool is created. */
export interface ResolvedBinding<Context> {
  owner: OwnerResolver<Context>;
  requesterOrigin?: string;
  allow: readonly TaskflowAction[];
  horizonMs: number;
  topics?: readonly string[];
}

/**
 * Checks a binding (a host's configuration, so a mistake throws a `FlowError`
 * `invalid_input` at creation rather than refusing every call later).
 */
export function resolveBinding<Context>(binding: TaskflowBinding<Context>, defaultHorizonMs: number): ResolvedBinding<Context> {
  if (typeof binding !== 'object' || binding === null) throw new FlowError('invalid_input', 'a taskflow binding object is required');
  const { owner } = binding;
  if (typeof owner !== 'function' && (typeof owner !== 'string' || owner.trim() === '')) {
    throw new FlowError('invalid_input', 'binding.owner must be a non-empty session key or a function resolving it per call');
  }
  const allow = binding.allow ?? TASKFLOW_ACTIONS;
  if (!Array.isArray(allow) || allow.length === 0 || !allow.every(isTaskflowAction)) {
    throw new FlowError('invalid_input', `binding.allow must list actions among ${TASKFLOW_ACTIONS.join(', ')}`);
  }
  const horizonMs = binding.timerMaxHorizon === undefined ? defaultHorizonMs : parseDuration(binding.timerMaxHorizon, 'binding.timerMaxHorizon');
  const resolved: ResolvedBinding<Context> = { owner, allow: TASKFLOW_ACTIONS.filter((a) => allow.includes(a)), horizonMs };
  if (binding.requesterOrigin !== undefined) resolved.requesterOrigin = binding.requesterOrigin;
  if (binding.topics !== undefined) {
    for (const pattern of binding.topics) {
      const problem = topicPatternProblem(pattern);
      if (problem) throw new FlowError('invalid_input', `binding.topics: ${problem}`);
    }
    resolved.topics = [...binding.topics];
  }
  return resolved;
}

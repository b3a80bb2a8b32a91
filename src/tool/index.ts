export { TASKFLOW_ACTIONS, type TaskflowAction } from './actions.js';
export { createTaskflowTool, type TaskflowRuntime } from './taskflow-tool.js';
export { taskflowInputJsonSchema, taskflowInputSchema, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT } from './input-schema.js';
export { topicMatches, topicAllowed, topicPatternProblem } from './topic-pattern.js';
export type {
  OwnerResolver,
  TaskflowBinding,
  TaskflowFlowResult,
  TaskflowInputJsonSchema,
  TaskflowListResult,
  TaskflowRefusal,
  TaskflowTool,
  TaskflowToolErrorCode,
  TaskflowToolInput,
  TaskflowToolResult,
  WireFlow,
  WireWait,
  WireSchedule,
  WireOccurrence,
  WireWake,
  WireAnyOfCondition,
} from './types.js';

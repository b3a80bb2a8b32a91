/** The eight things a model can ask of the `taskflow` tool. */
export const TASKFLOW_ACTIONS = ['start', 'status', 'advance', 'wait', 'finish', 'fail', 'cancel', 'list_mine'] as const;

/** One of {@link TASKFLOW_ACTIONS}. */
export type TaskflowAction = (typeof TASKFLOW_ACTIONS)[number];

export function isTaskflowAction(value: unknown): value is TaskflowAction {
  return typeof value === 'string' && (TASKFLOW_ACTIONS as readonly string[]).includes(value);
}

import { FlowError } from '../runtime/errors.js';
import type { TaskflowRefusal, TaskflowToolErrorCode } from './types.js';

/** Thrown inside the tool to refuse a call; turned into a {@link TaskflowRefusal} at the edge. */
export class ToolRefusal extends Error {
  constructor(
    readonly code: TaskflowToolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Runtime field names as the model knows them (snake_case). */
const WIRE_NAMES: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bcontrollerId\b/g, 'controller_id'],
  [/\bcorrelationId\b/g, 'correlation_id'],
  [/\bfinalState\b/g, 'final_state'],
  [/\btimeoutAt\b/g, 'timeout_at'],
  [/\bcurrentStep\b/g, 'current_step'],
  [/\bnextStep\b/g, 'current_step'],
  [/\bidempotencyKey\b/g, 'idempotency_key'],
  [/\btimeZone\b/g, 'time_zone'],
  [/\bcatchUp\b/g, 'catch_up'],
  [/\bstartAt\b/g, 'start_at'],
];

const HINTS: Partial<Record<TaskflowToolErrorCode, string>> = {
  illegal_transition: 'Call status to see where the flow is.',
  already_terminal: 'A finished, failed or cancelled flow never changes; start a new flow if more work is needed.',
  cancel_pending: 'The flow is being cancelled: call cancel to complete it.',
  revision_mismatch: 'The flow changed meanwhile: call status and try again.',
  storage: 'The database failed; try again later.',
};

/** The refusal for any error thrown while handling a call. */
export function refusalOf(error: unknown): TaskflowRefusal {
  if (error instanceof ToolRefusal) return { ok: false, error: error.code, message: error.message };
  // A missing optional package is the host's setup, never the model's to fix: it falls through to `internal`.
  if (FlowError.isInstance(error) && error.code !== 'missing_dependency') {
    let message = error.message;
    for (const [pattern, name] of WIRE_NAMES) message = message.replace(pattern, name);
    const code: TaskflowToolErrorCode = error.code;
    const hint = HINTS[code];
    return { ok: false, error: code, message: hint ? `${message}. ${hint}` : message };
  }
  const detail = error instanceof Error ? error.message : String(error);
  return { ok: false, error: 'internal', message: `the taskflow runtime failed (${detail}); call status or list_mine to see where things stand, then try again` };
}

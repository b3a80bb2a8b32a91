/** Why a flow operation was refused. Stable strings: branch on them. */
export type FlowErrorCode =
  | 'not_found'
  | 'revision_mismatch'
  | 'illegal_transition'
  | 'already_terminal'
  | 'cancel_pending'
  | 'invalid_input'
  | 'storage'
  /** An optional peer package the chosen option needs is not installed (`pg`, the NATS client); the message names the install command. */
  | 'missing_dependency';

const FLOW_ERROR_MARKER = Symbol.for('nexo-taskflow.FlowError');

/**
 * The one error type the runtime throws for a refused or failed operation.
 * A refused operation never changes anything. Use {@link FlowError.isInstance}
 * rather than `instanceof` when several copies of the package may be loaded.
 */
export class FlowError extends Error {
  readonly [FLOW_ERROR_MARKER] = true;
  override readonly name = 'FlowError';

  constructor(
    readonly code: FlowErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** True for any `FlowError`, from this or another copy of the package. */
  static isInstance(error: unknown): error is FlowError {
    return typeof error === 'object' && error !== null && FLOW_ERROR_MARKER in error;
  }
}

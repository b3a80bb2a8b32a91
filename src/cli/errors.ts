import { FlowError, type FlowErrorCode } from '../runtime/errors.js';

/**
 * How the CLI exits. Scripts branch on these:
 * - `0` the command did what was asked;
 * - `1` the runtime refused the operation (`not_found`, `illegal_transition`, ...);
 * - `2` the command line was wrong (unknown command, missing argument, bad JSON, bad option);
 * - `3` the database is missing, the store failed, or the package it needs (`pg`) is not installed.
 */
export const EXIT = {
  ok: 0,
  refused: 1,
  usage: 2,
  storage: 3,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Codes the CLI adds to the runtime's {@link FlowErrorCode}s in its error line and `--json` error object. */
export type CliErrorCode = FlowErrorCode | 'usage' | 'missing_database';

/** A failure the CLI reports itself, with the exit code it maps to. */
export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(
    readonly code: CliErrorCode,
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

/** A wrong command line: exit 2. */
export function usageError(message: string): CliError {
  return new CliError('usage', message, EXIT.usage);
}

/** What an error becomes on the way out: one code, one line, one exit status. */
export interface Failure {
  code: CliErrorCode;
  message: string;
  exitCode: ExitCode;
}

/**
 * Maps anything thrown to a {@link Failure}. Runtime refusals exit 1, `storage`
 * exits 3; an unexpected error (say, a file that is not SQLite) is reported as a
 * storage failure rather than a stack trace.
 */
export function toFailure(error: unknown): Failure {
  if (error instanceof CliError) return { code: error.code, message: oneLine(error.message), exitCode: error.exitCode };
  if (FlowError.isInstance(error)) {
    const exitCode = error.code === 'storage' || error.code === 'missing_dependency' ? EXIT.storage : EXIT.refused;
    return { code: error.code, message: oneLine(error.message), exitCode };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'storage', message: oneLine(message), exitCode: EXIT.storage };
}

/** Collapses whitespace runs (newlines included) so an error is always one line. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

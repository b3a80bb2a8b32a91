/** A pino-style logger: `logger.warn({ flowId }, 'message')`. Any of pino, bunyan or console fits. */
export interface Logger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** Says nothing. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Where {@link stderrLogger} writes: `process.stderr` or anything with `write`. */
export interface LogSink {
  write(text: string): unknown;
}

/**
 * A logger that writes warnings and errors to `sink` (default `process.stderr`),
 * one line each: `taskflow warn: <message> <fields as JSON>`, an `err` field shown
 * by its message. Debug and info lines are dropped. The runtime's default, so a
 * failing `onResume` handler or a failing database is never silent; pass your own
 * `logger` (pino, console, …) to route or silence it.
 */
export function stderrLogger(sink: LogSink = process.stderr): Logger {
  const line = (level: 'warn' | 'error', fields: object, message?: string) => {
    sink.write(`taskflow ${level}: ${(message ?? '').replace(/^taskflow: /, '')}${formatFields(fields)}\n`);
  };
  return {
    debug() {},
    info() {},
    warn: (fields, message) => line('warn', fields, message),
    error: (fields, message) => line('error', fields, message),
  };
}

/** The logger a runtime uses when none is given: {@link stderrLogger}. */
export const defaultLogger: Logger = stderrLogger();

function formatFields(fields: object): string {
  const entries = Object.entries(fields).filter(([, value]) => value !== undefined);
  if (entries.length === 0) return '';
  const shown = Object.fromEntries(entries.map(([key, value]) => [key, key === 'err' ? errorText(value) : value]));
  try {
    return ` ${JSON.stringify(shown)}`;
  } catch {
    return ` ${String(shown)}`;
  }
}

/** An error's message (with its cause's, when it has one), for one log line. */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error && !error.message.includes(error.cause.message) ? ` (cause: ${error.cause.message})` : '';
  return `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}${cause}`;
}

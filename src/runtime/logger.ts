/** A pino-style logger: `logger.warn({ flowId }, 'message')`. Any of pino, bunyan or console fits. */
export interface Logger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** The default: says nothing. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

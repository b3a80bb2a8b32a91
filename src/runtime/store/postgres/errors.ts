import type pg from 'pg';
import { FlowError } from '../../errors.js';

/** Where a PostgreSQL store connects, for error messages: `127.0.0.1:5432/taskflow`. Never the password. */
export function describeServer(options: pg.PoolConfig): string {
  let url: URL | undefined;
  try {
    if (options.connectionString) url = new URL(options.connectionString);
  } catch {
    url = undefined;
  }
  const host = options.host ?? (url?.hostname || undefined) ?? process.env.PGHOST ?? 'localhost';
  const port = options.port ?? (url?.port ? Number(url.port) : undefined) ?? (process.env.PGPORT ? Number(process.env.PGPORT) : 5432);
  const database = options.database ?? (url && url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined);
  return `${host}:${port}${database ? `/${database}` : ''}`;
}

/** What went wrong around a failed call, besides the error itself. */
export interface FailureContext {
  /** The call was cut after this many ms without an answer. */
  timedOutAfter?: number;
  /** The failure came while `COMMIT` was on the wire: the outcome is unknown. */
  duringCommit?: boolean;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOENT']);
const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
/** admin_shutdown, crash_shutdown, cannot_connect_now (starting up, shutting down, in recovery). */
const SERVER_GOING = new Set(['57P01', '57P02', '57P03']);

/**
 * Turns whatever `pg` threw (a socket error, a server error, a timeout) into a
 * `FlowError('storage')` that says what happened, where, and what to check.
 * The original error is kept as `cause`.
 */
export function pgStorageError(operation: string, error: unknown, server: string, context: FailureContext = {}): FlowError {
  const code = errorCode(error);
  const detail = messageOf(error);
  const unknownOutcome = context.duringCommit ? '; whether the transaction committed is unknown (check before retrying)' : '';
  let message: string;
  if (context.timedOutAfter !== undefined) {
    message =
      `PostgreSQL at ${server} did not answer within ${context.timedOutAfter} ms: the server may be hung or overloaded ` +
      `(the connection was dropped)${unknownOutcome}`;
  } else if (code !== undefined && UNREACHABLE.has(code)) {
    message = `cannot reach PostgreSQL at ${server} (${detail}): is the server running and accepting connections there?`;
  } else if (/timeout exceeded when trying to connect|connection timeout/i.test(detail)) {
    message = `no connection to PostgreSQL at ${server} in time (${detail}): is the server running, and answering?`;
  } else if (code !== undefined && SERVER_GOING.has(code)) {
    message =
      `the connection to PostgreSQL at ${server} was closed by the server (${code} ${detail}): it is restarting, ` +
      `shutting down, or an administrator ended the session; retry once it is back${unknownOutcome}`;
  } else if ((code !== undefined && CONNECTION_LOST.has(code)) || /Connection terminated|not queryable|Client was closed/i.test(detail)) {
    message = `the connection to PostgreSQL at ${server} was lost (${detail}): the server restarted or the network failed${unknownOutcome}`;
  } else if (code === '53300') {
    message = `PostgreSQL at ${server} has no free connection slot (${detail}): lower maxConnections or raise max_connections`;
  } else if (code !== undefined && (code.startsWith('28') || code === '3D000')) {
    message = `PostgreSQL at ${server} refused the connection (${code} ${detail})`;
  } else {
    message = `PostgreSQL error at ${server}${code ? ` (${code})` : ''}: ${detail}`;
  }
  return new FlowError('storage', `${message} [${operation}]`, { cause: error });
}

/** The first string `code` along the error's `cause` chain: a SQLSTATE or a Node socket code. */
export function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length > 0) return errorCode(inner[0]);
  }
  return undefined;
}

function messageOf(error: unknown): string {
  // Drizzle wraps what pg threw ("Failed query: <sql>"): the cause says what happened.
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (error instanceof Error && /^Failed query/.test(error.message) && cause instanceof Error) return messageOf(cause);
  if (error instanceof Error) {
    if (error.message) return error.message;
    const inner = (error as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner[0] instanceof Error) return inner[0].message;
    return error.name;
  }
  return String(error);
}

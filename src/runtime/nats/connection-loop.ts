import { backoffDelay, type Backoff } from '../backoff.js';
import { FlowError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { NatsBridgeState } from './options.js';
import { withTimeout } from './with-timeout.js';

/*
 * The bridge's connection loop. States (`NatsBridgeState`):
 * - idle → connecting on start(): connect and set up, again with jittered backoff until it works;
 * - connecting | reconnecting → connected once a connection is set up;
 * - connected → reconnecting when the client reports a disconnect (it reconnects by itself, back to
 *   connected on its reconnect), or when the connection closes or a set-up fails (the loop connects
 *   again from scratch with backoff);
 * - any → closed on close(); start() again goes back to connecting.
 * It knows no subject: setting a connection up, forgetting it and ending it are handed in.
 */

/** What the loop reads of a connection (`NatsConnection` is one). */
export interface LoopConnection {
  /** Status events: `disconnect`, `reconnect` and `error` are read, the others ignored. */
  status(): AsyncIterable<{ readonly type: string; readonly server?: string; readonly error?: unknown }>;
  /** Resolves when the connection closed for good, with the error that closed it if any. */
  closed(): Promise<void | Error>;
  close(): Promise<void>;
  isClosed(): boolean;
}

/** Options of {@link ConnectionLoop}. */
export interface ConnectionLoopOptions<C extends LoopConnection> {
  /** Opens a connection; rejects when the bus cannot be reached. */
  connect(): Promise<C>;
  /**
   * Sets a fresh connection up (streams, subscriptions, consumers). A rejection
   * gives the connection up and retries with backoff, except a
   * `FlowError('invalid_input')` before the first connection: a configuration the
   * server refuses, with which `start()` rejects.
   */
  setUp(connection: C): Promise<void>;
  /** Forgets the current connection's set-up (it closed, failed, or the loop closes). */
  lost(): void;
  /** Ends the work on `connection` when the loop closes (e.g. stop consuming, drain). Bounded. */
  end(connection: C | undefined): Promise<void>;
  /** The state changed; `error` is the last connection failure while not connected or closed. */
  onState(state: NatsBridgeState, error: unknown): void;
  /** Delays between attempts: `backoffDelay(retry, attempt)`, each jittered to between half and all of it. */
  retry: Backoff;
  logger: Logger;
  /** How long `start()` waits for the first connection before it resolves with the loop connecting in the background. Default 5000 ms. */
  startWaitMs?: number;
  /** Random numbers in [0, 1) for the jitter. Default `Math.random`. */
  random?: () => number;
  /** Waits `ms`, or less once `signal` aborts (the loop closes). Default a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const START_WAIT_MS = 5_000;
/** How long close() waits for a connection attempt in flight to return (it is closed when it does). */
const LOOP_END_WAIT_MS = 1_000;

/** The delay before connection attempt `attempt + 1` after `attempt + 1` failures in a row: between half and all of `backoffDelay(retry, attempt)`. */
export function connectRetryDelay(retry: Backoff, attempt: number, random: () => number = Math.random): number {
  const capped = backoffDelay(retry, attempt);
  return capped / 2 + (random() * capped) / 2;
}

/** Connects, sets up, watches the connection, and connects again with backoff until closed. */
export class ConnectionLoop<C extends LoopConnection> {
  private readonly options: ConnectionLoopOptions<C>;
  private readonly logger: Logger;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private currentState: NatsBridgeState = 'idle';
  private failure: unknown;
  private current: C | undefined;
  /** Whether the current connection's transport is up (false between a disconnect and its reconnect). */
  private up = false;
  private running: Promise<void> | undefined;
  private closing = false;
  private aborter = new AbortController();
  /** Ends `start()`: with nothing once connected or once the first attempt failed; with a configuration error. */
  private settleStart: ((error?: unknown) => void) | undefined;

  constructor(options: ConnectionLoopOptions<C>) {
    this.options = options;
    this.logger = options.logger;
    this.sleep = options.sleep ?? sleep;
  }

  get state(): NatsBridgeState {
    return this.currentState;
  }

  /** Why the last connection attempt or set-up failed, while not connected. */
  get lastError(): unknown {
    return this.failure;
  }

  /** The connection being set up or in use; undefined between connections. */
  get connection(): C | undefined {
    return this.current;
  }

  /** Whether the transport is up now, on `connection` when one is named. */
  isUp(connection?: C): boolean {
    return this.up && this.current !== undefined && (connection === undefined || connection === this.current);
  }

  /**
   * Starts the loop. Resolves once connected and set up, or once the first
   * attempt failed, or after the start wait, the loop going on in the background.
   * Rejects (closed) with a configuration error the server refuses.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.closing = false;
    this.aborter = new AbortController();
    this.setState('connecting');
    const first = new Promise<void>((resolve, reject) => {
      this.settleStart = (error?: unknown) => {
        this.settleStart = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
    });
    this.running = this.run();
    try {
      await withTimeout(first, this.options.startWaitMs ?? START_WAIT_MS);
    } catch (error) {
      await this.close().catch(() => undefined);
      throw error;
    }
  }

  /** Stops the loop: ends the current connection's work (`end`), then forgets it. Bounded in every state. */
  async close(): Promise<void> {
    if (this.currentState === 'closed' || this.currentState === 'idle') {
      this.setState('closed');
      return;
    }
    this.closing = true;
    this.settleStart?.();
    this.aborter.abort();
    try {
      await this.options.end(this.current);
      // The loop ends at once, unless a connection attempt is in flight: it is closed when it returns.
      await withTimeout(this.running ?? Promise.resolve(), LOOP_END_WAIT_MS);
    } finally {
      this.forget();
      this.running = undefined;
      this.setState('closed');
    }
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closing) {
      let connection: C | undefined;
      try {
        connection = await this.options.connect();
        if (this.closing) {
          await connection.close().catch(() => undefined);
          break;
        }
        this.current = connection;
        this.up = true;
        void this.watch(connection);
        await this.options.setUp(connection);
        attempt = 0;
        this.failure = undefined;
        this.setState('connected');
        this.settleStart?.();
        const ended = await connection.closed();
        if (this.closing) break;
        this.forget();
        this.failure = ended ?? new Error('the NATS connection closed');
        this.logger.warn({ err: ended }, 'taskflow: NATS connection closed; connecting again');
        this.setState('reconnecting');
      } catch (error) {
        if (connection && !connection.isClosed()) await connection.close().catch(() => undefined);
        this.forget();
        if (this.closing) break;
        if (this.settleStart && FlowError.isInstance(error) && error.code === 'invalid_input') {
          // A configuration the server refuses: start() fails with it.
          this.settleStart(error);
          break;
        }
        const known = this.failure instanceof Error && error instanceof Error && this.failure.message === error.message;
        this.failure = error;
        if (known) this.logger.debug({ err: error }, 'taskflow: NATS still not reachable');
        else this.logger.warn({ err: error, attempt }, 'taskflow: NATS not reachable; retrying with backoff');
        if (this.currentState === 'connected') this.setState('reconnecting');
        this.settleStart?.();
        await this.sleep(connectRetryDelay(this.options.retry, attempt++, this.options.random), this.aborter.signal);
      }
    }
  }

  /** Follows the client's own reconnections while `connection` is the current one. */
  private async watch(connection: C): Promise<void> {
    for await (const status of connection.status()) {
      if (connection !== this.current) return;
      if (status.type === 'disconnect') {
        this.up = false;
        this.logger.warn({ server: status.server }, 'taskflow: NATS disconnected; reconnecting');
        this.setState('reconnecting');
      } else if (status.type === 'reconnect') {
        this.up = true;
        this.logger.info({ server: status.server }, 'taskflow: NATS reconnected');
        this.setState('connected');
      } else if (status.type === 'error') {
        this.logger.warn({ err: status.error }, 'taskflow: NATS error');
      }
    }
  }

  private forget(): void {
    this.options.lost();
    this.current = undefined;
    this.up = false;
  }

  private setState(state: NatsBridgeState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.options.onState(state, state === 'connected' || state === 'closed' ? undefined : this.failure);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

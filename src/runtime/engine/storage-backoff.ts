import { backoffDelay, type Backoff } from '../backoff.js';
import type { Logger } from '../logger.js';

/**
 * How the engine's background work lives with a store that fails.
 *
 *   healthy ──failed()──▶ backing off: host timers disarmed, one retry armed (warned once)
 *   backing off ──retry fires──▶ retrying: the sweep runs (`beginPass`), the timers may arm again
 *   retrying ──failed()──▶ backing off, the next delay doubled (capped), logged at debug level
 *   retrying ──pass ends with no failure (`endPass`)──▶ healthy ("storage recovered" when it had failed)
 *
 * While the engine is not running, a failure is only logged at debug level.
 */
export class StorageBackoff {
  private failing = false;
  private off = false;
  private failures = 0;
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  /**
   * @param retry the work to run after each delay (the sweep).
   * @param backOff called on each failure while running: disarm the host timers.
   */
  constructor(
    private readonly logger: Logger,
    private readonly backoff: Backoff,
    private readonly running: () => boolean,
    private readonly retry: () => void,
    private readonly backOff: () => void,
  ) {}

  /** The host timers stay disarmed until the next retry: it does their work. */
  get backingOff(): boolean {
    return this.off;
  }

  /** A retry is armed: the periodic sweep leaves the work to it. */
  get retryArmed(): boolean {
    return this.retryTimer !== undefined;
  }

  /** Background work failed on the store during `during`. */
  failed(error: unknown, during: string): void {
    this.failures++;
    if (!this.running()) {
      this.logger.debug({ err: error, during }, 'taskflow: background work failed while stopping');
      return;
    }
    const first = !this.failing;
    this.failing = true;
    this.off = true;
    this.backOff();
    if (this.retryTimer) {
      this.logger.debug({ err: error, during }, 'taskflow: storage still failing');
      return;
    }
    const delay = backoffDelay(this.backoff, this.retries);
    this.retries++;
    if (first) this.logger.warn({ err: error, during, retryInMs: delay }, 'taskflow: storage failing, backing off');
    else this.logger.debug({ err: error, during, retryInMs: delay }, 'taskflow: storage still failing; retrying');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retry();
    }, delay);
    this.retryTimer.unref?.();
  }

  /** A sweep begins: the host timers may arm again. Returns the mark `endPass` compares against. */
  beginPass(): number {
    this.off = false;
    return this.failures;
  }

  /** Whether no failure happened since `mark`. */
  cleanSince(mark: number): boolean {
    return this.failures === mark;
  }

  /** A sweep ended: with no failure since `mark`, the store is healthy again. */
  endPass(mark: number): void {
    if (!this.cleanSince(mark)) return;
    this.retries = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.failing) return;
    this.failing = false;
    this.logger.warn({}, 'taskflow: storage recovered');
  }

  stop(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}

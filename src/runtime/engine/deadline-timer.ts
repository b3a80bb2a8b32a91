import { backoffDelay, type Backoff } from '../backoff.js';
import type { Clock } from '../clock.js';

/** Node's setTimeout takes at most 2^31 - 1 ms; a longer delay fires at once. */
const MAX_HOST_DELAY = 2_147_483_647;

/**
 * One host timer for the earliest moment something is due (the engine's wake
 * timer, and its notification timer).
 *
 *   disarmed ──arm(at)──▶ armed(at) ──arm(earlier)──▶ armed(earlier)
 *   armed(at) ──fires, clock ≥ at──▶ disarmed, onDue(at)
 *   armed(at) ──fires, clock < at──▶ armed(at) again for the rest (host timers fire up to ~2 ms early, long
 *                                    delays are clamped); a clock that keeps not getting there (a ManualClock)
 *                                    is looked at less and less often, never in a loop
 *   any ──disarm()──▶ disarmed
 *
 * The timer is unref'd: it never keeps the process alive by itself.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined;
  private armedAt: number | undefined;
  /** Consecutive firings before the clock reached the time armed for. */
  private early = 0;

  /**
   * @param mayRun checked when arming and when firing: false leaves the timer disarmed.
   * @param idle the backoff of repeated early firings.
   */
  constructor(
    private readonly clock: Clock,
    private readonly idle: Backoff,
    private readonly mayRun: () => boolean,
    private readonly onDue: (at: number) => void,
  ) {}

  /** The moment armed for, if armed. */
  get at(): number | undefined {
    return this.armedAt;
  }

  /** Arms for `at` (checked after `delayMs`, by default the time left) unless an earlier moment is armed. */
  arm(at: number, delayMs = at - this.clock.now()): void {
    if (this.armedAt !== undefined && this.armedAt <= at) return;
    this.rearm(at, delayMs);
  }

  /** Arms for `at` after `delayMs`, replacing whatever was armed. */
  rearm(at: number, delayMs: number): void {
    if (!this.mayRun()) return;
    this.early = 0;
    this.set(at, delayMs);
  }

  disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = undefined;
  }

  private set(at: number, delayMs: number): void {
    clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(() => this.fired(at), Math.max(0, Math.min(delayMs, MAX_HOST_DELAY)));
    this.timer.unref?.();
  }

  private fired(at: number): void {
    this.timer = undefined;
    this.armedAt = undefined;
    if (!this.mayRun()) return;
    const remaining = at - this.clock.now();
    if (remaining > 0) {
      this.early++;
      this.set(at, this.early <= 1 ? remaining : Math.max(remaining, backoffDelay(this.idle, this.early - 2)));
      return;
    }
    this.early = 0;
    this.onDue(at);
  }
}

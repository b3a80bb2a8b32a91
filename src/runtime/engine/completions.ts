import type { FlowStore, NotificationClaim } from '../store/contract.js';

/** How long delivered notifications wait to be removed together. */
const FLUSH_DELAY_MS = 100;

/**
 * Delivered notifications waiting to be removed: they ride along with the
 * engine's next commit, or go in one transaction of their own after a short delay.
 * Losing this write only means one redelivery.
 *
 *   empty ──add()──▶ waiting, flush armed ──next commit takes them, or the delay ends──▶ empty
 *   a write that fails puts its claims back (waiting again)
 */
export class CompletionBuffer {
  private readonly waiting: NotificationClaim[] = [];
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param mayFlush checked before arming the delayed flush (running, storage healthy).
   * @param flushFailed told when the delayed flush fails.
   */
  constructor(
    private readonly store: Pick<FlowStore, 'completeNotifications'>,
    private readonly mayFlush: () => boolean,
    private readonly flushFailed: (error: unknown) => void,
  ) {}

  add(claim: NotificationClaim): void {
    this.waiting.push(claim);
    this.schedule();
  }

  /** Takes every waiting claim, for a commit to remove them; give them back with `restore` if it fails. */
  take(): NotificationClaim[] {
    return this.waiting.splice(0);
  }

  restore(claims: readonly NotificationClaim[]): void {
    if (claims.length > 0) this.waiting.unshift(...claims);
  }

  /** Removes the waiting claims now, in one transaction. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const done = this.take();
    if (done.length === 0) return;
    try {
      await this.store.completeNotifications(done);
    } catch (error) {
      this.restore(done);
      throw error;
    }
  }

  /** Arms the delayed flush if claims wait (after storage recovered, say). */
  schedule(): void {
    if (this.timer || this.waiting.length === 0 || !this.mayFlush()) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(this.flushFailed);
    }, FLUSH_DELAY_MS);
    this.timer.unref?.();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

import { nextTurn, SLICE_MS, sliceSpent } from './event-loop-slice.js';

/** A first guess of what one caller does with its result before it lets go of the loop, in ms. */
const FIRST_GUESS_CALLER_MS = 0.1;

/**
 * Tells the callers of one shared transaction their results a slice's worth per
 * turn of the event loop (see `event-loop-slice.ts`). Each caller resolved runs
 * on as microtasks, often to plan its next commit, so thirty-two callers
 * resolved at once would hold the loop for thirty-two continuations in a row;
 * here as many go per turn as fit in a slice, judged by what the callers before
 * them took, and the host's timers and I/O run between turns.
 */
export class PacedSettlement {
  /** How long a caller takes with its result, in ms (a running average). */
  private callerMs = FIRST_GUESS_CALLER_MS;

  /** Calls `tell(0)` … `tell(count - 1)` in order, paced; resolves after the last. */
  async settle(count: number, tell: (index: number) => void): Promise<void> {
    if (count === 1) return tell(0);
    if (sliceSpent()) await nextTurn();
    for (let next = 0; next < count; ) {
      const batch = Math.min(count - next, Math.max(1, Math.floor(SLICE_MS / this.callerMs)));
      const started = performance.now();
      for (const end = next + batch; next < end; next++) tell(next);
      if (next === count) return;
      await nextTurn(); // their continuations run first (microtasks), then timers and I/O
      this.callerMs = (this.callerMs + (performance.now() - started) / batch) / 2;
    }
  }
}

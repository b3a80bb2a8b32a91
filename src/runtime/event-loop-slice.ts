/**
 * Keeps the host's event loop turning while the runtime works flat out.
 *
 * A call that finishes without I/O (the main-thread SQLite store: every statement
 * and fsync is synchronous) resolves as a microtask, so a caller awaiting such
 * calls back to back never lets the loop reach its timers or sockets. The runtime
 * therefore counts how long the current turn of the loop has run runtime work (a
 * "slice") and, once it is {@link SLICE_MS} old, makes the next call wait for the
 * following turn (`setImmediate`), as a browser's `scheduler.yield()` would.
 * A caller that makes one call at a time on an idle loop never waits: its slice
 * ends with the turn.
 */

/** The longest the runtime keeps the loop busy before it lets timers and I/O run. */
export const SLICE_MS = 0.5;

let sliceStartedAt: number | undefined;

const endSlice = (): void => {
  sliceStartedAt = undefined;
};

/**
 * Whether the current turn of the event loop has run runtime work for
 * {@link SLICE_MS} or more. The first call of a turn starts its slice; the slice
 * ends when the loop next runs its immediates, that is once the work of this
 * turn (with all its microtasks) has let go.
 */
export function sliceSpent(): boolean {
  const now = performance.now();
  if (sliceStartedAt === undefined) {
    sliceStartedAt = now;
    setImmediate(endSlice);
    return false;
  }
  return now - sliceStartedAt >= SLICE_MS;
}

/** The next turn of the event loop, after timers and I/O that are due. */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/** Waits for the next turn when this one's slice is spent; otherwise returns at once (no await needed). */
export function yieldIfSliceSpent(): Promise<void> | undefined {
  return sliceSpent() ? nextTurn() : undefined;
}

/**
 * The one exponential backoff of the runtime: `initialMs` doubling with each
 * step, at most `maxMs`. Step 0 is the first delay. Every retry loop (storage,
 * handler retries, idle re-arms, NATS reconnects and redeliveries, the commit
 * watcher) takes its delays from here, so they all grow and cap the same way.
 */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** The delay of the `step`-th retry (0-based): `initialMs · 2^step`, capped at `maxMs`. */
export function backoffDelay(backoff: Backoff, step: number): number {
  const doublings = Math.max(0, Math.min(Math.floor(step), 30));
  return Math.min(backoff.initialMs * 2 ** doublings, backoff.maxMs);
}

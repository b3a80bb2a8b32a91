/**
 * The engine's lifecycle, and the work in flight that `stop()` waits for.
 *
 *   idle ──start()──▶ running ──stop()──▶ stopping ──(work settled, at most one lease)──▶ stopped ──start()──▶ running
 *
 * - idle: never started; nothing runs by itself, explicit calls (`tick`, `deliverNotifications`) do their work when asked.
 * - running: background work runs, commits claim the wakes they queue, handlers start.
 * - stopping, stopped: no handler starts; a claim made by a call still in flight is given back.
 */
export type EngineState = 'idle' | 'running' | 'stopping' | 'stopped';

export class EngineLifecycle {
  private current: EngineState = 'idle';
  private readonly inFlight = new Set<Promise<unknown>>();

  get state(): EngineState {
    return this.current;
  }

  /** Background work runs and commits claim their wakes. */
  get running(): boolean {
    return this.current === 'running';
  }

  /** A handler may start now: before the first start (explicit delivery) and while running, never once a stop began. */
  get handlersMayStart(): boolean {
    return this.current === 'idle' || this.current === 'running';
  }

  /** Moves to running; false when it already was. */
  start(): boolean {
    if (this.current === 'running') return false;
    this.current = 'running';
    return true;
  }

  /** Moves to stopping (from any state): from now on no handler starts. */
  beginStop(): void {
    this.current = 'stopping';
  }

  endStop(): void {
    if (this.current === 'stopping') this.current = 'stopped';
  }

  /** Counts `work` as in flight until it settles: `settled()` waits for it. */
  track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    const done = (): void => void this.inFlight.delete(work);
    work.then(done, done);
    return work;
  }

  /** Resolves once no tracked work is in flight, including work tracked while waiting. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}

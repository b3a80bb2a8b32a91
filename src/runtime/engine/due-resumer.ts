import { backoffDelay } from '../backoff.js';
import type { Decision, Loaded, LoadRequest } from '../store/contract.js';
import { DeadlineTimer } from './deadline-timer.js';
import { planDue, type DueBatchResult } from './due-plan.js';
import type { EngineLifecycle } from './lifecycle.js';
import type { EngineSettings } from './options.js';
import { RunCoalescer } from './run-coalescer.js';
import type { StorageBackoff } from './storage-backoff.js';
import type { TickResult } from '../delivery.js';

/** Flows in the first batch of a tick: their handlers start after a small commit; later batches grow to `batchSize`. */
const FIRST_DUE_BATCH = 16;
/** Due batches committing at once (SKIP LOCKED gives each its own rows). */
const DUE_BATCHES_IN_FLIGHT = 2;

/** One tick's work: its counters, and the store failure that ended it, if one did. */
export interface DueRun {
  result: TickResult;
  error?: unknown;
}

/**
 * Resumes flows whose timer or timeout came, when the wake timer says so.
 *
 *   waiting ──wake timer fires at a time the clock reached, or tick()──▶ ticking: due batches commit
 *   ticking ──asked again meanwhile──▶ ticking once more
 *   ticking ──done──▶ waiting, the wake timer armed for the next wake time; if flows are due yet
 *                     none was resumed (another engine holds their rows), armed later and later
 *   ticking ──a batch fails on the store──▶ the storage backoff takes over
 */
export class DueResumer {
  private readonly timer: DeadlineTimer;
  private readonly ticks: RunCoalescer<DueRun, void>;
  /** The wake timer fired at a time the clock reached: the next tick skips its "anything due?" read. */
  private dueKnown = false;
  /** Consecutive ticks that found due flows yet resumed none (rows locked by another engine). */
  private stillDue = 0;

  /** @param commit the dispatcher's commit: each batch's resumes go to their handlers. */
  constructor(
    private readonly settings: EngineSettings,
    private readonly lifecycle: EngineLifecycle,
    private readonly storage: StorageBackoff,
    private readonly commit: <T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>) => Promise<T>,
  ) {
    this.timer = new DeadlineTimer(settings.clock, settings.idleBackoff, () => this.lifecycle.running && !this.storage.backingOff, () => {
      this.dueKnown = true;
      void this.tickInBackground();
    });
    this.ticks = new RunCoalescer(
      async () => {
        const run = await this.resumeDue(this.settings.clock.now()).catch(
          (error: unknown): DueRun => ({ result: { resumed: 0, cancelled: 0, timedOut: 0, errors: 1 }, error }),
        );
        if (run.error !== undefined) this.storage.failed(run.error, 'resuming due flows');
        return run;
      },
      (runs) => this.afterTicks(runs),
      () => this.lifecycle.running && !this.storage.backingOff,
    );
  }

  /** Arms the wake timer for `at` unless an earlier wake is armed. */
  armFor(at: number): void {
    this.timer.arm(at);
  }

  disarm(): void {
    this.timer.disarm();
  }

  /** The background tick in progress, if any. */
  get ticking(): Promise<void> | undefined {
    return this.ticks.inProgress;
  }

  /** A tick in the background (the wake timer, the sweep): one at a time, then the timer re-armed. */
  tickInBackground(): Promise<void> {
    return this.lifecycle.track(this.ticks.run());
  }

  /**
   * Resumes what is due at `at`, in batches that start small (their handlers
   * start as soon as the first few flows are committed) and grow to `batchSize`;
   * two are in flight at once, each taking rows the other has not locked, so one
   * commits while the next is written. A failed batch ends it and is returned.
   */
  async resumeDue(at: number): Promise<DueRun> {
    const total: TickResult = { resumed: 0, cancelled: 0, timedOut: 0, errors: 0 };
    // An indexed read answers "nothing due" without taking the write lock (unless the wake timer just said so).
    const known = this.dueKnown;
    this.dueKnown = false;
    if (!known) {
      const next = await this.settings.store.nextWakeAt();
      if (next === undefined || next > at) return { result: total };
    }
    let size = Math.min(this.settings.batchSize, FIRST_DUE_BATCH);
    let more = true;
    let failure: { error: unknown } | undefined;
    const inFlight = new Set<Promise<void>>();
    const launch = (limit: number): void => {
      const batch = this.commit({ due: { now: at, limit } }, (loaded) => planDue(loaded.flows, at)).then(
        (done: DueBatchResult) => {
          total.resumed += done.resumed;
          total.cancelled += done.cancelled;
          total.timedOut += done.timedOut;
          total.errors += done.errors;
          if (done.size < limit) more = false;
        },
        (error: unknown) => {
          total.errors++;
          failure ??= { error };
          more = false;
        },
      );
      inFlight.add(batch);
      void batch.finally(() => inFlight.delete(batch));
    };
    while (more) {
      launch(size);
      size = Math.min(this.settings.batchSize, size * 4);
      // The first batch alone (a lone due timer costs one transaction), then two at a time.
      if (inFlight.size >= DUE_BATCHES_IN_FLIGHT || total.resumed + total.cancelled + total.timedOut === 0) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return failure ? { result: total, error: failure.error } : { result: total };
  }

  private async afterTicks(runs: DueRun[]): Promise<void> {
    if (runs.some((run) => run.error !== undefined)) return;
    const progress = runs.some(({ result }) => result.resumed + result.cancelled + result.timedOut > 0);
    try {
      const next = await this.settings.store.nextWakeAt();
      if (next === undefined || !this.lifecycle.running || this.storage.backingOff) return;
      const now = this.settings.clock.now();
      if (next > now || progress) {
        this.stillDue = 0;
        this.timer.arm(next);
        return;
      }
      // Due, yet this tick resumed nothing: another engine holds those rows
      // (SKIP LOCKED). Look again later and later, not at once.
      this.stillDue++;
      const delay = backoffDelay(this.settings.idleBackoff, this.stillDue - 1);
      this.timer.rearm(now + delay, delay);
    } catch (error) {
      this.storage.failed(error, 'reading the next wake time');
    }
  }
}

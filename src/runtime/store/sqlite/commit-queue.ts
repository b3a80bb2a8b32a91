import { sliceSpent } from '../../event-loop-slice.js';
import { PacedSettlement } from '../../paced-settlement.js';
import type { BatchCommit, BatchOutcome } from '../contract.js';

/** One caller's commits waiting for the next transaction: a `commit`, a `commitClaiming` or a whole `commitBatch`. */
export interface QueuedUnit {
  items: readonly BatchCommit<unknown>[];
  claim?: { leaseUntil: number; limit?: number };
  /** One `commit` or `commitClaiming` (alone, it may fail whole); otherwise a `commitBatch`, whose items fail in its outcomes. */
  single: boolean;
  settle(outcomes: BatchOutcome<unknown>[]): void;
  fail(error: unknown): void;
}

/**
 * Commits the first units of `units` in one transaction; returns the outcomes of
 * those it took (at least one), in order, or rejects when the transaction failed
 * whole (then none was written, and the queue fails them all).
 */
export type UnitsCommitter = (units: readonly QueuedUnit[]) => Promise<BatchOutcome<unknown>[][]>;

/**
 * Group commit for the main-thread SQLite store. Commits wait in a queue and are
 * written together, one transaction (one fsync) for all the callers that asked
 * in the same turn of the event loop, each in a savepoint of its own.
 *
 * A lone caller pays nothing: its commit is written a microtask later. Once
 * callers crowd (the last transaction carried several) or the turn's slice is
 * spent (see `event-loop-slice.ts`), the queue waits for the next turn instead,
 * which lets the host's timers and I/O run between transactions and gathers
 * every caller that is ready into the next one. One transaction is under way at
 * a time, and it stops taking callers once its work passes the slice (the
 * rest go first in the next), so no transaction holds the loop for long.
 *
 * The callers of a crowded transaction get their results paced (see
 * `paced-settlement.ts`).
 */
export class CommitQueue {
  private queue: QueuedUnit[] = [];
  private scheduled = false;
  private flushing: Promise<void> | undefined;
  /** The last transaction carried more than one caller, or left some for the next. */
  private crowded = false;
  private readonly pacing = new PacedSettlement();

  /** Holders of {@link pause} not yet resumed. */
  private paused = 0;
  /** Transactions written and not yet settled (waiting to be durable, or paced). */
  private readonly settling = new Set<Promise<void>>();

  constructor(
    private readonly commitUnits: UnitsCommitter,
    /** Resolves once every transaction written so far is durable (see `wal-sync.ts`); the store's own when it syncs in COMMIT. */
    private readonly durable: () => Promise<void> | undefined = () => undefined,
  ) {}

  /** Queues `unit` for the next transaction. */
  push(unit: QueuedUnit): void {
    this.queue.push(unit);
    this.schedule();
  }

  /** Resolves once everything queued so far is settled (a store closing waits for it). */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length > 0 || this.settling.size > 0) {
      if (this.flushing) await this.flushing;
      else if (this.queue.length > 0) await this.flush();
      else await Promise.all(this.settling);
    }
  }

  /**
   * Holds the next transactions back once the one under way is written (commits
   * keep queueing meanwhile); resolves to the function that lets them go.
   */
  async pause(): Promise<() => void> {
    this.paused++;
    while (this.flushing) await this.flushing;
    let resumed = false;
    return () => {
      if (resumed) return;
      resumed = true;
      this.paused--;
      if (this.queue.length > 0) this.schedule();
    };
  }

  private schedule(): void {
    if (this.scheduled || this.flushing || this.paused > 0) return;
    this.scheduled = true;
    if (this.crowded || sliceSpent()) setImmediate(this.flushScheduled);
    else queueMicrotask(this.flushScheduled);
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    if (!this.flushing && this.paused === 0) void this.flush();
  };

  /**
   * Writes the queue in one transaction. The next transaction may start as soon
   * as this one is written; its callers are settled once it is also durable.
   */
  private flush(): Promise<void> {
    const units = this.queue;
    this.queue = [];
    if (units.length === 0) return Promise.resolve();
    const written = this.write(units);
    const flushing = written.then(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.schedule();
    });
    this.flushing = flushing;
    const settled = written.then((outcomes) => (outcomes ? this.settle(units, outcomes) : undefined));
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
    return flushing;
  }

  /** The transaction; undefined when it failed whole (its callers have been failed). */
  private async write(units: QueuedUnit[]): Promise<BatchOutcome<unknown>[][] | undefined> {
    let outcomes: BatchOutcome<unknown>[][];
    try {
      outcomes = await this.commitUnits(units);
    } catch (error) {
      for (const unit of units) unit.fail(error);
      this.crowded = units.length > 1;
      return undefined;
    }
    const left = units.slice(outcomes.length);
    this.crowded = outcomes.length > 1 || left.length > 0;
    if (left.length > 0) this.queue = [...left, ...this.queue];
    return outcomes;
  }

  /** Once the transaction is durable, tells its callers (paced when there are several). */
  private async settle(units: readonly QueuedUnit[], outcomes: BatchOutcome<unknown>[][]): Promise<void> {
    try {
      await this.durable();
    } catch (error) {
      for (const unit of units.slice(0, outcomes.length)) unit.fail(error);
      return;
    }
    await this.pacing.settle(outcomes.length, (i) => units[i]!.settle(outcomes[i]!));
  }
}

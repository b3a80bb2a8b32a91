import { sliceSpent } from '../../event-loop-slice.js';
import type { BatchCommit, BatchOutcome } from '../contract.js';

/** One caller's commits waiting for the next transaction: a `commit`, a `commitClaiming` or a whole `commitBatch`. */
export interface QueuedUnit {
  items: readonly BatchCommit<unknown>[];
  claim?: { leaseUntil: number; limit?: number };
  settle(outcomes: BatchOutcome<unknown>[]): void;
  fail(error: unknown): void;
}

/**
 * Commits the first units of `units` in one transaction and settles them; returns
 * how many it took (at least one), or rejects when the transaction failed whole
 * (then none was written, and the queue fails them all).
 */
export type UnitsCommitter = (units: readonly QueuedUnit[]) => Promise<number>;

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
 */
export class CommitQueue {
  private queue: QueuedUnit[] = [];
  private scheduled = false;
  private flushing: Promise<void> | undefined;
  /** The last transaction carried more than one caller, or left some for the next. */
  private crowded = false;

  constructor(private readonly commitUnits: UnitsCommitter) {}

  /** Queues `unit` for the next transaction. */
  push(unit: QueuedUnit): void {
    this.queue.push(unit);
    this.schedule();
  }

  /** Resolves once everything queued so far is settled (a store closing waits for it). */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length > 0) {
      if (this.flushing) await this.flushing;
      else await this.flush();
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    if (this.crowded || sliceSpent()) setImmediate(this.flushScheduled);
    else queueMicrotask(this.flushScheduled);
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    if (!this.flushing) void this.flush();
  };

  private flush(): Promise<void> {
    const units = this.queue;
    this.queue = [];
    if (units.length === 0) return Promise.resolve();
    const flushing = this.commit(units).finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.schedule();
    });
    this.flushing = flushing;
    return flushing;
  }

  private async commit(units: QueuedUnit[]): Promise<void> {
    let taken: number;
    try {
      taken = await this.commitUnits(units);
    } catch (error) {
      for (const unit of units) unit.fail(error);
      this.crowded = units.length > 1;
      return;
    }
    const left = units.slice(taken);
    this.crowded = taken > 1 || left.length > 0;
    if (left.length > 0) this.queue = [...left, ...this.queue];
  }
}

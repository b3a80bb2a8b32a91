import type { Loaded, LoadRequest, Decision, BatchOutcome } from '../contract.js';
import { PacedSettlement } from '../../paced-settlement.js';

/** One commit in a group: its load, its plan, and how many of its wakes it claims (until `leaseUntil`). */
export interface GroupItem<T> {
  load: LoadRequest;
  plan: (loaded: Loaded) => Decision<T>;
  leaseUntil?: number;
  limit: number;
}

interface Waiting {
  item: GroupItem<unknown>;
  resolve(outcome: BatchOutcome<unknown>): void;
  reject(error: unknown): void;
}

/** Most commits one shared transaction takes: its locks are held until the last one is written. */
const MAX_GROUP = 64;

/**
 * Group commit for one process. While fewer than `direct` commits are in
 * flight, a commit runs at once in a transaction of its own (one caller at a
 * time waits for nothing). Beyond that, commits queue, and each commit that
 * finishes takes the whole queue (up to {@link MAX_GROUP}) into ONE transaction
 * with a savepoint per commit: one BEGIN, one COMMIT, one WAL flush for all.
 * Each caller resolves after that COMMIT, a slice's worth of callers per turn
 * of the event loop (see `paced-settlement.ts`); a commit whose plan throws or
 * whose write is refused fails alone.
 */
export class GroupCommitter {
  private inFlight = 0;
  private readonly queue: Waiting[] = [];
  private readonly pacing = new PacedSettlement();

  constructor(
    private readonly direct: number,
    private readonly runSingle: <T>(item: GroupItem<T>) => Promise<BatchOutcome<T>>,
    private readonly runBatch: (items: readonly GroupItem<unknown>[]) => Promise<BatchOutcome<unknown>[]>,
  ) {}

  /** Commits `item`, alone or in a group; rejects with the error of its own commit. */
  async commit<T>(item: GroupItem<T>): Promise<BatchOutcome<T>> {
    if (this.inFlight < this.direct && this.queue.length === 0) return this.track(() => this.runSingle(item));
    return new Promise<BatchOutcome<T>>((resolve, reject) => {
      this.queue.push({ item: item as GroupItem<unknown>, resolve: resolve as (outcome: BatchOutcome<unknown>) => void, reject });
      if (this.inFlight < this.direct) this.drain();
    });
  }

  private async track<T>(work: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.inFlight--;
      this.drain();
    }
  }

  /** Runs the queue as one group on the slot just freed. */
  private drain(): void {
    if (this.queue.length === 0 || this.inFlight >= this.direct) return;
    const group = this.queue.splice(0, MAX_GROUP);
    if (group.length === 1) {
      const [one] = group;
      void this.track(() => this.runSingle(one!.item)).then(one!.resolve, one!.reject);
      return;
    }
    void this.track(() => this.runBatch(group.map((waiting) => waiting.item))).then(
      (outcomes) => this.pacing.settle(group.length, (i) => group[i]!.resolve(outcomes[i]!)),
      (error: unknown) => group.forEach((waiting) => waiting.reject(error)),
    );
  }
}

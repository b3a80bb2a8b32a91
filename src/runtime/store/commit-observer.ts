import type { BatchCommit, BatchOutcome, Committed, Decision, FlowStore, FlowWrite, Loaded, LoadRequest } from './contract.js';
import { replaceCommits } from './view.js';

/** How a commit was made: `claimed` when its resume notifications were claimed by the committing engine. */
export interface CommitInfo {
  claimed: boolean;
}

/** Called after a commit with the writes it made; awaited before the commit's caller sees its result. */
export type CommitListener = (writes: readonly FlowWrite[], info: CommitInfo) => Promise<void> | void;

/**
 * Sees a commit's writes inside its transaction, before they are persisted (it may
 * add to their audit payloads: telemetry stamps a parked flow's `waiting` event with
 * its span); the function it returns is called once the commit settled, with the
 * error when it failed.
 */
export type CommitPreparer = (loaded: Loaded, writes: FlowWrite[]) => ((error?: unknown) => void) | undefined;

/**
 * A view of `store` that reports every committed flow write to `listener`, whoever
 * made it: the manager (waits, finishes, fails, cancels) or the engine (event,
 * timer, signal and timeout resumes, cancels by the sweep). The engine arms its
 * timer and delivers notifications from it; the NATS bridge covers topics and
 * publishes lifecycle events. Every other member is
 * the store's own. The listener runs after the transaction committed; a listener
 * that throws does not undo or fail the commit.
 */
export function observeCommits(store: FlowStore, listener: CommitListener, onError: (error: unknown) => void, prepare?: CommitPreparer): FlowStore {
  /** Runs `plan`, preparing its writes; `settle` ends the preparation of its last run (a retried plan settles the earlier one as failed). */
  const prepared = <T>(plan: (loaded: Loaded) => Decision<T>, onDecision: (decision: Decision<T>) => void) => {
    let settle: ((error?: unknown) => void) | undefined;
    const run = (loaded: Loaded): Decision<T> => {
      settle?.(new Error('the commit was planned again'));
      settle = undefined;
      const decision = plan(loaded);
      onDecision(decision);
      if (prepare && decision.writes && decision.writes.length > 0) {
        try {
          settle = prepare(loaded, decision.writes);
        } catch (error) {
          onError(error); // never fails the commit
        }
      }
      return decision;
    };
    return { run, settle: (error?: unknown) => settle?.(error) };
  };
  const report = async (decision: Decision<unknown> | undefined, info: CommitInfo): Promise<void> => {
    const writes = decision?.writes;
    if (!writes || writes.length === 0) return;
    try {
      await listener(writes, info);
    } catch (error) {
      onError(error);
    }
  };
  const commit: FlowStore['commit'] = async <T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> => {
    let decision: Decision<T> | undefined;
    const planned = prepared(plan, (made) => (decision = made));
    let result: T;
    try {
      result = await store.commit(load, planned.run);
    } catch (error) {
      planned.settle(error);
      throw error;
    }
    planned.settle();
    await report(decision, { claimed: false });
    return result;
  };
  const commitClaiming: FlowStore['commitClaiming'] = async <T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit?: number) => {
    let decision: Decision<T> | undefined;
    const planned = prepared(plan, (made) => (decision = made));
    let committed: Committed<T>;
    try {
      committed = await store.commitClaiming(load, planned.run, leaseUntil, limit);
    } catch (error) {
      planned.settle(error);
      throw error;
    }
    planned.settle();
    await report(decision, { claimed: true });
    return committed;
  };
  // Each item's writes are reported once the batch committed, and only the items that did.
  const commitBatch: FlowStore['commitBatch'] = async <T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }) => {
    const decisions: (Decision<T> | undefined)[] = items.map(() => undefined);
    const planned = items.map((item, i) => prepared(item.plan, (made) => (decisions[i] = made)));
    let outcomes: BatchOutcome<T>[];
    try {
      outcomes = await store.commitBatch(
        items.map((item, i) => ({ load: item.load, plan: planned[i]!.run })),
        claim,
      );
    } catch (error) {
      for (const each of planned) each.settle(error);
      throw error;
    }
    const writes: FlowWrite[] = [];
    outcomes.forEach((outcome, i) => {
      planned[i]!.settle(outcome.ok ? undefined : outcome.error);
      if (outcome.ok) writes.push(...(decisions[i]?.writes ?? []));
    });
    await report({ result: undefined, writes }, { claimed: claim !== undefined });
    return outcomes;
  };
  return replaceCommits(store, { commit, commitClaiming, commitBatch });
}

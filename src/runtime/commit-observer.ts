import type { Decision, FlowStore, FlowWrite, Loaded, LoadRequest } from './store.js';
import { replaceCommits } from './store-view.js';

/** How a commit was made: `claimed` when its resume notifications were claimed by the committing engine. */
export interface CommitInfo {
  claimed: boolean;
}

/** Called after a commit with the writes it made; awaited before the commit's caller sees its result. */
export type CommitListener = (writes: readonly FlowWrite[], info: CommitInfo) => Promise<void> | void;

/**
 * A view of `store` that reports every committed flow write to `listener`, whoever
 * made it: the manager (waits, finishes, fails, cancels) or the engine (event,
 * timer, signal and timeout resumes, cancels by the sweep). The engine arms its
 * timer and delivers notifications from it; the NATS bridge covers topics and
 * publishes lifecycle events. Every other member is
 * the store's own. The listener runs after the transaction committed; a listener
 * that throws does not undo or fail the commit.
 */
export function observeCommits(store: FlowStore, listener: CommitListener, onError: (error: unknown) => void): FlowStore {
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
    const result = await store.commit(load, (loaded) => (decision = plan(loaded)));
    await report(decision, { claimed: false });
    return result;
  };
  const commitClaiming: FlowStore['commitClaiming'] = async <T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit?: number) => {
    let decision: Decision<T> | undefined;
    const committed = await store.commitClaiming(load, (loaded) => (decision = plan(loaded)), leaseUntil, limit);
    await report(decision, { claimed: true });
    return committed;
  };
  return replaceCommits(store, { commit, commitClaiming });
}

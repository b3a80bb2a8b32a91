import { FlowError } from '../errors.js';
import { replaceCommits } from '../store/view.js';
import { waitedTopics } from './coverage-rule.js';
import type { BatchCommit, BatchOutcome, Decision, FlowStore, Loaded, LoadRequest } from '../store/contract.js';

/** What the guard needs from the bridge. */
export interface TopicCoverer {
  /** Why a wait may not name `topic` on this bus (reserved, not a subject), or undefined. */
  canCover(topic: string): string | undefined;
  /** Whether events on `topic` reach the engine right now (or cannot until the bus is back). */
  isCovered(topic: string): boolean;
  /** Covers `topics`; resolves with the ones the server refused and why. Bounded in time. */
  cover(topics: readonly string[]): Promise<Map<string, string>>;
}

/**
 * A view of `store` whose commits refuse or cover a wait's topic before the wait
 * is stored, so `setWaiting` never returns as if its topic were covered when it is not:
 *
 * - a topic the bridge refuses outright (`$…`, `_INBOX…`, `taskflow.…`, not a
 *   subject) fails the commit with `FlowError('invalid_input')`, nothing written;
 * - a topic not yet covered makes the first attempt roll back (nothing written),
 *   is covered (a subscription the server confirmed), and the commit runs again;
 *   a topic the server refuses (permissions) fails with `invalid_input`, nothing
 *   written; the other topics are not affected;
 * - a topic covered already, or any write that does not leave a flow waiting on an
 *   event, costs one set lookup.
 *
 * While the bus is unreachable {@link TopicCoverer.isCovered} says yes: the wait is
 * stored and its topic is covered on (re)connection.
 */
export function guardTopics(store: FlowStore, bridge: TopicCoverer): FlowStore {
  /** The topics of the waits a decision stores; throws the refusal of one the bridge refuses outright. */
  const waitTopics = (decision: Decision<unknown>): string[] => {
    const topics: string[] = [];
    for (const write of decision.writes ?? []) {
      // Every topic of an any-of wait is covered before it commits, as the one of an event wait.
      for (const topic of waitedTopics(write)) {
        const refusal = bridge.canCover(topic);
        if (refusal !== undefined) throw new FlowError('invalid_input', `cannot wait on topic "${topic}": ${refusal}`);
        topics.push(topic);
      }
    }
    return topics;
  };

  type Wrap = <T>(inner: (loaded: Loaded) => Decision<T>) => (loaded: Loaded) => Decision<T>;

  const run = async <R>(attempt: (wrap: Wrap) => Promise<R>): Promise<R> => {
    let missing: string[] = [];
    const covering: Wrap = (inner) => (loaded) => {
      missing = [];
      const decision = inner(loaded);
      missing = waitTopics(decision).filter((topic) => !bridge.isCovered(topic));
      // Rolls the transaction back; seen below through `missing`, whatever the store wraps it in.
      if (missing.length > 0) throw new Error('taskflow: a wait topic is not covered yet');
      return decision;
    };
    try {
      return await attempt(covering);
    } catch (error) {
      if (missing.length === 0) throw error;
    }
    const refused = await bridge.cover(missing);
    if (refused.size > 0) {
      const reasons = [...refused].map(([topic, reason]) => `"${topic}" (${reason})`).join('; ');
      throw new FlowError('invalid_input', `cannot wait on ${reasons}: the NATS server refuses to deliver it to this runtime`);
    }
    // Covered, or still on its way after the cover timeout (the subscription stays; a
    // late refusal is reported by the bridge). Outright refusals are still checked.
    const refusing: Wrap = (inner) => (loaded) => {
      const decision = inner(loaded);
      waitTopics(decision);
      return decision;
    };
    return attempt(refusing);
  };

  const commit: FlowStore['commit'] = <T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>) => run((wrap) => store.commit(load, wrap(plan)));
  const commitClaiming: FlowStore['commitClaiming'] = <T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit?: number) =>
    run((wrap) => store.commitClaiming(load, wrap(plan), leaseUntil, limit));
  /**
   * A batch: an item whose wait names a refused topic fails alone; items whose topics
   * are not covered yet fail in the first transaction, their topics are covered, and
   * they run again together in a second one (after the items that committed).
   */
  const commitBatch: FlowStore['commitBatch'] = async <T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }) => {
    const missing = new Map<number, string[]>();
    const first = await store.commitBatch(
      items.map((item, i) => ({
        load: item.load,
        plan: (loaded: Loaded): Decision<T> => {
          missing.delete(i);
          const decision = item.plan(loaded);
          const uncovered = waitTopics(decision).filter((topic) => !bridge.isCovered(topic));
          if (uncovered.length > 0) {
            missing.set(i, uncovered);
            throw new Error('taskflow: a wait topic is not covered yet');
          }
          return decision;
        },
      })),
      claim,
    );
    if (missing.size === 0) return first;
    const refused = await bridge.cover([...new Set([...missing.values()].flat())]);
    const again = [...missing.keys()];
    const outcomes: BatchOutcome<T>[] = [...first];
    const retried: number[] = [];
    for (const i of again) {
      const topics = missing.get(i)!.filter((topic) => refused.has(topic));
      if (topics.length === 0) retried.push(i);
      else {
        const reasons = topics.map((topic) => `"${topic}" (${refused.get(topic)!})`).join('; ');
        outcomes[i] = { ok: false, error: new FlowError('invalid_input', `cannot wait on ${reasons}: the NATS server refuses to deliver it to this runtime`) };
      }
    }
    if (retried.length === 0) return outcomes;
    const claimedFirst = first.reduce((n, outcome) => n + (outcome.ok ? outcome.claimed.length : 0), 0);
    const secondClaim = claim ? { leaseUntil: claim.leaseUntil, limit: Math.max(0, (claim.limit ?? Infinity) - claimedFirst) } : undefined;
    const second = await store.commitBatch(
      retried.map((i) => ({
        load: items[i]!.load,
        plan: (loaded: Loaded): Decision<T> => {
          const decision = items[i]!.plan(loaded);
          waitTopics(decision);
          return decision;
        },
      })),
      secondClaim,
    );
    retried.forEach((i, j) => (outcomes[i] = second[j]!));
    return outcomes;
  };
  return replaceCommits(store, { commit, commitClaiming, commitBatch });
}

import { FlowError } from './errors.js';
import type { Decision, FlowStore, Loaded, LoadRequest } from './store.js';

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
  /** Checks the decision's waits; returns the topics to cover first, or throws a refusal. */
  const uncovered = (decision: Decision<unknown>): string[] => {
    const missing: string[] = [];
    for (const write of decision.writes ?? []) {
      const wait = write.flow.wait;
      if (write.flow.status !== 'waiting' || wait?.kind !== 'external_event') continue;
      const refusal = bridge.canCover(wait.topic);
      if (refusal !== undefined) throw new FlowError('invalid_input', `cannot wait on topic "${wait.topic}": ${refusal}`);
      if (!bridge.isCovered(wait.topic)) missing.push(wait.topic);
    }
    return missing;
  };

  const run = async <R>(attempt: (plan: <T>(inner: (loaded: Loaded) => Decision<T>) => (loaded: Loaded) => Decision<T>) => Promise<R>): Promise<R> => {
    let missing: string[] = [];
    const checking =
      <T>(inner: (loaded: Loaded) => Decision<T>) =>
      (loaded: Loaded): Decision<T> => {
        missing = [];
        const decision = inner(loaded);
        missing = uncovered(decision);
        // Rolls the transaction back; seen below by `missing`, whatever the store wraps it in.
        if (missing.length > 0) throw new Error('taskflow: a wait topic is not covered yet');
        return decision;
      };
    try {
      return await attempt(checking);
    } catch (error) {
      if (missing.length === 0) throw error;
    }
    const refused = await bridge.cover(missing);
    if (refused.size > 0) {
      const reasons = [...refused].map(([topic, reason]) => `"${topic}": ${reason}`).join('; ');
      throw new FlowError('invalid_input', `cannot wait on ${reasons}: the NATS server refused to deliver it to this runtime`);
    }
    // Covered (or still on its way after the cover timeout: the subscription stays and
    // a late refusal is reported by the bridge). Refusals are still checked.
    const refusing =
      <T>(inner: (loaded: Loaded) => Decision<T>) =>
      (loaded: Loaded): Decision<T> => {
        const decision = inner(loaded);
        for (const write of decision.writes ?? []) {
          const wait = write.flow.wait;
          if (write.flow.status !== 'waiting' || wait?.kind !== 'external_event') continue;
          const refusal = bridge.canCover(wait.topic);
          if (refusal !== undefined) throw new FlowError('invalid_input', `cannot wait on topic "${wait.topic}": ${refusal}`);
        }
        return decision;
      };
    return attempt(refusing);
  };

  const commit: FlowStore['commit'] = <T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>) =>
    run((wrap) => store.commit(load, wrap(plan)));
  const commitClaiming: FlowStore['commitClaiming'] = <T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number) =>
    run((wrap) => store.commitClaiming(load, wrap(plan), leaseUntil));
  return new Proxy(store, {
    get(target, property) {
      if (property === 'commit') return commit;
      if (property === 'commitClaiming') return commitClaiming;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

import type { FlowStore } from './contract.js';

/**
 * A view of `store` whose `commit` and `commitClaiming` (and `commitBatch`, when given) are replaced; every other
 * member is the store's own, bound to it. The commit observer and the NATS
 * topic guard are such views.
 */
export function replaceCommits(store: FlowStore, commits: Pick<FlowStore, 'commit' | 'commitClaiming'> & Partial<Pick<FlowStore, 'commitBatch'>>): FlowStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'commit') return commits.commit;
      if (property === 'commitClaiming') return commits.commitClaiming;
      if (property === 'commitBatch' && commits.commitBatch) return commits.commitBatch;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

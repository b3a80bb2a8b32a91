import { FlowError } from '../../src/index.js';
import { updateStateMove } from '../../src/runtime/moves.js';
import type { BatchCommit, Decision } from '../../src/runtime/store/contract.js';
import { T0 } from './taskflow.js';

/** A commit that sets `state.n` on one flow, from whatever revision it loads; its result is the new revision. */
export function setN(id: string, n: number): BatchCommit<number> {
  return {
    load: { flowIds: [id] },
    plan: (loaded): Decision<number> => {
      const flow = loaded.flows[0];
      if (!flow) throw new FlowError('not_found', `no flow ${id}`);
      const write = updateStateMove(flow, new Date(T0 + 1), { n });
      return { result: write.flow.revision, writes: [write] };
    },
  };
}

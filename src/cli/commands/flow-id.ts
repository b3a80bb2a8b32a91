import type { Flow } from '../../runtime/flow.js';
import type { Taskflow } from '../../runtime/taskflow.js';
import { CliError, EXIT } from '../errors.js';

/**
 * The flow with this id, or a `not_found` refusal (exit 1). A malformed id is
 * `not_found` too, as in the runtime: no flow can have it.
 */
export async function requireFlow(tf: Taskflow, id: string): Promise<Flow> {
  const flow = await tf.manager.get(id);
  if (!flow) throw new CliError('not_found', `no flow with id ${JSON.stringify(id)}`, EXIT.refused);
  return flow;
}

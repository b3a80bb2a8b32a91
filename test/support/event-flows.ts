import type { Flow, Taskflow } from '../../src/index.js';
import { newFlow } from './taskflow.js';

/** A flow created, started and parked on the event `topic`/`correlationId`. */
export async function waitingOnEvent(tf: Taskflow, topic: string, correlationId: string): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, { kind: 'external_event', topic, correlationId });
}

/** How many times a flow was resumed, by its audit log. */
export async function resumedCount(tf: Taskflow, id: string): Promise<number> {
  return (await tf.manager.listEvents(id)).filter((e) => e.kind === 'resumed').length;
}

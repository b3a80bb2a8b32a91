import type { Flow, JsonObject } from './flow.js';
import type { AuditEntry } from './commit-plan.js';

/** A checked flow, not yet stored: what `FlowManager.prepareCreate` returns. */
export interface PreparedFlow {
  /** At revision 0, status `created` or `running`. */
  flow: Flow;
  idempotencyKey?: string;
  /** `flow.state` as JSON. */
  stateJson: string;
}

/** The insert of a prepared flow with its `created` audit event. */
export function createInsert(flow: Flow, idempotencyKey: string | undefined, stateJson: string): { flow: Flow; idempotencyKey?: string; event: AuditEntry; stateJson: string } {
  const payload: JsonObject = { status: flow.status, controllerId: flow.controllerId, goal: flow.goal };
  const event: AuditEntry = { kind: 'created', payload };
  return idempotencyKey === undefined ? { flow, event, stateJson } : { flow, idempotencyKey, event, stateJson };
}

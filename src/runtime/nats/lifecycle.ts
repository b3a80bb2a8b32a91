import type { FlowEventKind, JsonObject } from '../flow.js';
import { LIFECYCLE_PREFIX } from './message.js';
import type { FlowWrite } from '../store/contract.js';

/** The lifecycle moves published on `taskflow.flow.<id>.<kind>`. */
export const LIFECYCLE_KINDS = ['waiting', 'resumed', 'finished', 'failed', 'cancelled'] as const;
export type LifecycleKind = (typeof LIFECYCLE_KINDS)[number];

/** The JSON body of a lifecycle event (snake_case, like the tool's wire format). */
export interface LifecycleEvent {
  flow_id: string;
  kind: LifecycleKind;
  /** The flow's status after the move. */
  status: string;
  /** The flow's revision right after this move. */
  revision: number;
  /** ISO 8601 time of the move. */
  at: string;
  controller_id: string;
  current_step: string;
  /** The audit event's payload: the wait for `waiting`, the wake for `resumed`, the reason for `failed`. */
  detail: JsonObject;
}

/** One lifecycle message: its subject, a stable message id and the body. */
export interface LifecycleMessage {
  subject: string;
  /** `<flow id>:<revision>`: unique per audit event, usable as `Nats-Msg-Id`. */
  msgId: string;
  event: LifecycleEvent;
}

function isLifecycleKind(kind: FlowEventKind): kind is LifecycleKind {
  return (LIFECYCLE_KINDS as readonly string[]).includes(kind);
}

/** The lifecycle messages a committed write stands for, in order (a chained write may hold two). */
export function lifecycleMessages(write: FlowWrite): LifecycleMessage[] {
  const flow = write.flow;
  const messages: LifecycleMessage[] = [];
  write.events.forEach((entry, i) => {
    if (!isLifecycleKind(entry.kind)) return;
    const revision = write.fromRevision + i + 1;
    messages.push({
      subject: `${LIFECYCLE_PREFIX}.${flow.id}.${entry.kind}`,
      msgId: `${flow.id}:${revision}`,
      event: {
        flow_id: flow.id,
        kind: entry.kind,
        status: i === write.events.length - 1 ? flow.status : statusAfter(entry.kind),
        revision,
        at: flow.updatedAt.toISOString(),
        controller_id: flow.controllerId,
        current_step: flow.currentStep,
        detail: entry.payload,
      },
    });
  });
  return messages;
}

function statusAfter(kind: LifecycleKind): string {
  return kind === 'resumed' ? 'running' : kind;
}

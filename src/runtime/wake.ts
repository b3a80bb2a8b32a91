import type { JsonObject } from './json.js';
import { occurrenceFromJson, occurrenceToJson, type Occurrence } from './recurring/schedule.js';

/** Why a waiting flow resumed. `manual` is a direct `manager.resume`; `recurring` an occurrence of a schedule. */
export type ResumeReason = 'timer' | 'event' | 'signal' | 'timeout' | 'manual' | 'recurring';

/** Which condition of an any-of wait won: its place in `of` and its kind (its key is the wake's topic, correlationId or signal). */
export interface WakeCondition {
  index: number;
  kind: 'timer' | 'external_event' | 'manual';
}

/** What woke a flow; handed to `onResume(flow, wake)` and recorded in the `resumed` audit event. */
export interface Wake {
  reason: ResumeReason;
  at: Date;
  topic?: string;
  correlationId?: string;
  signal?: string;
  payload?: unknown;
  /** Set when the flow waited on the first of several conditions: the one that won. */
  condition?: WakeCondition;
  /** The occurrence of a recurring schedule this resume is for (reason `recurring`). */
  occurrence?: Occurrence;
}

/** The JSON form of a wake, as stored in audit events and notifications. */
export function wakeToJson(wake: Wake): JsonObject {
  const json: JsonObject = { reason: wake.reason, at: wake.at.toISOString() };
  if (wake.topic !== undefined) json.topic = wake.topic;
  if (wake.correlationId !== undefined) json.correlationId = wake.correlationId;
  if (wake.signal !== undefined) json.signal = wake.signal;
  if (wake.payload !== undefined) json.payload = wake.payload;
  if (wake.condition !== undefined) json.condition = { index: wake.condition.index, kind: wake.condition.kind };
  if (wake.occurrence !== undefined) json.occurrence = occurrenceToJson(wake.occurrence);
  return json;
}

export function wakeFromJson(json: JsonObject): Wake {
  const wake: Wake = { reason: json.reason as ResumeReason, at: new Date(json.at as string) };
  if (typeof json.topic === 'string') wake.topic = json.topic;
  if (typeof json.correlationId === 'string') wake.correlationId = json.correlationId;
  if (typeof json.signal === 'string') wake.signal = json.signal;
  if ('payload' in json) wake.payload = json.payload;
  const condition = json.condition as WakeCondition | undefined;
  if (typeof condition === 'object' && condition !== null) wake.condition = { index: condition.index, kind: condition.kind };
  if (typeof json.occurrence === 'object' && json.occurrence !== null) wake.occurrence = occurrenceFromJson(json.occurrence as JsonObject);
  return wake;
}

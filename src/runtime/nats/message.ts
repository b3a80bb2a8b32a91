import type { EventDelivery } from '../engine/engine.js';

/** The header that carries an event's correlation id. */
export const CORRELATION_HEADER = 'Taskflow-Correlation-Id';
/** The NATS message id header; when present it is the event id, so a redelivery resumes nothing twice. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';
/** The reference crate's subject: `{ flow_id?, topic, correlation_id, payload? }`. */
export const RESUME_SUBJECT = 'taskflow.resume';
/** Lifecycle events go out on `taskflow.flow.<id>.<kind>`; the bridge never takes them as input. */
export const LIFECYCLE_PREFIX = 'taskflow.flow';

/** An inbound NATS message, reduced to what the bridge reads. */
export interface InboundMessage {
  subject: string;
  data: Uint8Array;
  /** A header's value, or undefined when absent or empty. */
  header(name: string): string | undefined;
}

/** What an inbound message means: an event to deliver, or why it cannot be one. */
export type ParsedInbound =
  | { ok: true; delivery: EventDelivery; /** The reference subject's optional `flow_id`. */ flowId?: string }
  | { ok: false; reason: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

type Body = { kind: 'empty' } | { kind: 'json'; value: unknown } | { kind: 'text'; value: string } | { kind: 'invalid'; reason: string };

function readBody(data: Uint8Array): Body {
  if (data.length === 0) return { kind: 'empty' };
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    return { kind: 'invalid', reason: 'the body is not UTF-8' };
  }
  if (text.trim() === '') return { kind: 'empty' };
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown };
  } catch {
    return { kind: 'text', value: text };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A correlation id from JSON: a non-empty string, or an integer written as a number. */
function idText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/**
 * Reads an inbound message as an event for `engine.deliver`.
 *
 * On a declared topic (any subject but {@link RESUME_SUBJECT}): the topic is the
 * subject; the correlation id is the {@link CORRELATION_HEADER} header, else the
 * JSON body's `correlation_id`; the payload is the body's `payload` field when
 * present, else the whole body (JSON, or the text when the body is not JSON).
 *
 * On {@link RESUME_SUBJECT}: the body must be a JSON object
 * `{ flow_id?, topic, correlation_id, payload? }` (the header may stand in for
 * `correlation_id`).
 *
 * Either way the {@link MSG_ID_HEADER} header, when present, is the event id
 * (unique per topic: the same id on two topics is two events).
 */
export function parseInbound(message: InboundMessage, resumeSubject: string = RESUME_SUBJECT): ParsedInbound {
  const body = readBody(message.data);
  if (body.kind === 'invalid') return { ok: false, reason: body.reason };
  const headerId = message.header(CORRELATION_HEADER);
  const eventId = message.header(MSG_ID_HEADER);
  const withId = (delivery: EventDelivery): EventDelivery => (eventId === undefined ? delivery : { ...delivery, eventId });

  if (message.subject === resumeSubject) {
    if (body.kind !== 'json' || !isObject(body.value)) {
      return { ok: false, reason: `${resumeSubject} needs a JSON object { flow_id?, topic, correlation_id, payload? }` };
    }
    const value = body.value;
    const topic = typeof value.topic === 'string' && value.topic.trim() !== '' ? value.topic : undefined;
    if (topic === undefined) return { ok: false, reason: `${resumeSubject}: topic must be a non-empty string` };
    const correlationId = idText(value.correlation_id) ?? headerId;
    if (correlationId === undefined) return { ok: false, reason: `${resumeSubject}: correlation_id must be a non-empty string` };
    if (value.flow_id !== undefined && value.flow_id !== null && typeof value.flow_id !== 'string') {
      return { ok: false, reason: `${resumeSubject}: flow_id must be a string when present` };
    }
    const delivery: EventDelivery = { topic, correlationId };
    if (value.payload !== undefined) delivery.payload = value.payload;
    const parsed: ParsedInbound = { ok: true, delivery: withId(delivery) };
    if (typeof value.flow_id === 'string') parsed.flowId = value.flow_id;
    return parsed;
  }

  const json = body.kind === 'json' ? body.value : undefined;
  const correlationId = headerId ?? (isObject(json) ? idText(json.correlation_id) : undefined);
  if (correlationId === undefined) {
    return { ok: false, reason: `no correlation id: set the ${CORRELATION_HEADER} header or a JSON body field correlation_id` };
  }
  const delivery: EventDelivery = { topic: message.subject, correlationId };
  if (body.kind === 'json') delivery.payload = isObject(json) && 'payload' in json ? json.payload : json;
  else if (body.kind === 'text') delivery.payload = body.value;
  return { ok: true, delivery: withId(delivery) };
}

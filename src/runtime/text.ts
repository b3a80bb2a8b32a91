import { FlowError } from './errors.js';

/**
 * Size limits of every text field, in UTF-8 bytes. Keys (identifiers matched by
 * equality) are short; prose (goal, reason, task) is longer. The README's table
 * "Limits of input" lists them.
 */
export const TEXT_LIMITS = {
  controllerId: 256,
  ownerSessionKey: 256,
  currentStep: 256,
  idempotencyKey: 256,
  topic: 256,
  correlationId: 256,
  signal: 256,
  /** Room for the NATS bridge's fallback id (`nats:<stream>:<created>:<seq>`) with a 255-character stream name. */
  eventId: 512,
  /** The NATS bridge's `flow_id`: an event for that flow alone. */
  flowId: 256,
  runId: 256,
  runtime: 256,
  childSessionKey: 256,
  requesterOrigin: 1024,
  goal: 4096,
  reason: 4096,
  task: 4096,
} as const;

/** A field with a documented size limit. */
export type TextField = keyof typeof TEXT_LIMITS;

/** C0 and C1 control characters, DEL included: never part of a key. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The one rule for every key (owner, controller id, step, idempotency key, topic,
 * correlation id, signal, event id, run id): Unicode NFC, surrounding white space
 * trimmed; it must then be non-empty, free of control characters and lone
 * surrogates, and within its limit. Waits, deliveries, signals, the CLI and the
 * tool all pass keys through here, so `'INV-42 '` and `'INV-42'` are one key.
 */
export function normaliseKey(value: unknown, field: TextField): string {
  const text = boundedString(value, field);
  if (LONE_SURROGATE.test(text)) throw new FlowError('invalid_input', `${field} contains a lone surrogate (broken UTF-16)`);
  const key = text.normalize('NFC').trim();
  if (key === '') throw new FlowError('invalid_input', `${field} must be a non-empty string`);
  if (CONTROL.test(key)) throw new FlowError('invalid_input', `${field} must not contain control characters (such as NUL or a line break)`);
  checkBytes(key, field);
  return key;
}

/** {@link normaliseKey}, or undefined when the value is absent (`undefined` or `null`). */
export function optionalKey(value: unknown, field: TextField): string | undefined {
  return value === undefined || value === null ? undefined : normaliseKey(value, field);
}

/**
 * Prose (goal, reason, task, requester origin): kept as written, but it must not
 * be blank, must hold no NUL and no lone surrogate, and must fit its limit.
 */
export function checkText(value: unknown, field: TextField): string {
  const text = boundedString(value, field);
  if (text.trim() === '') throw new FlowError('invalid_input', `${field} must be a non-empty string`);
  if (text.includes('\u0000')) throw new FlowError('invalid_input', `${field} must not contain NUL characters`);
  if (LONE_SURROGATE.test(text)) throw new FlowError('invalid_input', `${field} contains a lone surrogate (broken UTF-16)`);
  checkBytes(text, field);
  return text;
}

/** {@link checkText}, or undefined when the value is absent (`undefined` or `null`). */
export function optionalText(value: unknown, field: TextField): string | undefined {
  return value === undefined || value === null ? undefined : checkText(value, field);
}

function boundedString(value: unknown, field: TextField): string {
  if (typeof value !== 'string') throw new FlowError('invalid_input', `${field} must be a string, got ${describeValue(value)}`);
  // A UTF-16 unit is at least one UTF-8 byte: a string longer than the limit is refused before any work on it.
  if (value.length > TEXT_LIMITS[field]) throw tooLong(field, value.length);
  return value;
}

function checkBytes(text: string, field: TextField): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > TEXT_LIMITS[field]) throw tooLong(field, bytes);
}

function tooLong(field: TextField, size: number): FlowError {
  return new FlowError('invalid_input', `${field} is ${size} bytes or more, over its limit of ${TEXT_LIMITS[field]} bytes`);
}

/** Whether a string holds a NUL or a lone surrogate: text neither store keeps faithfully. */
export function hasUnstorableText(text: string): boolean {
  return text.includes('\u0000') || LONE_SURROGATE.test(text);
}

/** A short description of any value for an error message; never throws (symbols, bigints, revoked proxies). */
export function describeValue(value: unknown): string {
  try {
    if (value === null) return 'null';
    if (value === undefined) return 'nothing';
    switch (typeof value) {
      case 'string':
        return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
      case 'number':
      case 'boolean':
        return `${typeof value} ${String(value)}`;
      case 'bigint':
        return `bigint ${String(value)}n`;
      case 'symbol':
        return 'a symbol';
      case 'function':
        return 'a function';
      default:
        if (Array.isArray(value)) return 'an array';
        if (value instanceof Date) return 'a Date';
        return 'an object';
    }
  } catch {
    return 'an unreadable value';
  }
}

/** The message of anything thrown, without trusting it. */
export function messageOf(error: unknown): string {
  try {
    if (error instanceof Error) return String(error.message);
    return describeValue(error);
  } catch {
    return 'an unreadable error';
  }
}

/**
 * Runs `read`, which reads a caller's input; whatever it throws that is not a
 * `FlowError` (a getter that throws, a proxy trap, a revoked proxy) becomes
 * `invalid_input`. Read input once, inside this, before touching the store.
 */
export function readInput<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (FlowError.isInstance(error)) throw error;
    throw new FlowError('invalid_input', `${what} could not be read: ${messageOf(error)}`, { cause: error });
  }
}

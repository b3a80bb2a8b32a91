import { FlowError } from './errors.js';
import type { JsonObject } from './flow.js';
import type { FlowWrite } from './commit-plan.js';
import { describeValue, messageOf } from './text.js';

/** The default cap on a flow's JSON state: 1 MiB. */
export const DEFAULT_STATE_LIMIT = 1_048_576;

/** A caller's JSON, checked and copied: `value` is what `json` parses to, so what is returned is what is stored. */
export interface CheckedJson<T> {
  value: T;
  json: string;
}

/** Refuses what JSON cannot say faithfully: non-finite numbers, functions, symbols (at any depth). */
function strict(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new FlowError('invalid_input', `${value} is not a JSON number`);
  if (typeof value === 'function' || typeof value === 'symbol') throw new FlowError('invalid_input', `${describeValue(value)} is not JSON`);
  return value;
}

/** A JSON string escape of a NUL or of a lone surrogate (JSON.stringify escapes exactly those surrogates), after an even run of backslashes. */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/**
 * Serialises a caller's JSON value (any JSON, or undefined for "none") at most
 * `limit` bytes long, and returns it parsed back: a plain copy that holds
 * exactly what the stores will hold (a `toJSON` is applied once, here). Refuses
 * with `invalid_input` whatever is not JSON: cycles, bigints, functions,
 * symbols, NaN, Infinity, NUL characters, lone surrogates, a getter or proxy
 * that throws.
 */
export function checkJsonValue(value: unknown, limit: number, what: string): CheckedJson<unknown> | undefined {
  if (value === undefined) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(value, strict);
  } catch (error) {
    throw new FlowError('invalid_input', `${what} is not JSON: ${messageOf(error)}`, { cause: error });
  }
  if (json === undefined) throw new FlowError('invalid_input', `${what} is not JSON: got ${describeValue(value)}`);
  if (UNSTORABLE_ESCAPE.test(json)) {
    throw new FlowError('invalid_input', `${what} contains a NUL character or a lone surrogate, which cannot be stored`);
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > limit) {
    throw new FlowError('invalid_input', `${what} is ${bytes} bytes, over the limit of ${limit}; store large data elsewhere and keep a reference`);
  }
  return { value: JSON.parse(json) as unknown, json };
}

/** Like {@link checkJsonValue}, for a value that must be a plain JSON object: a state or a patch. */
export function checkJsonObject(value: unknown, limit: number, what: string): CheckedJson<JsonObject> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FlowError('invalid_input', `${what} must be a JSON object such as {"step": 1}, got ${describeValue(value)}`);
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new FlowError('invalid_input', `${what} must be a plain JSON object, got ${describeValue(value)} of another class`);
  }
  const checked = checkJsonValue(value, limit, what)!;
  if (typeof checked.value !== 'object' || checked.value === null || Array.isArray(checked.value)) {
    throw new FlowError('invalid_input', `${what} must serialise to a JSON object; its toJSON gives ${describeValue(checked.value)}`);
  }
  return checked as CheckedJson<JsonObject>;
}

/**
 * Serialises the state a write leaves and refuses (`invalid_input`) a write that
 * takes it over `limit` bytes. A write that does not make the state larger than
 * `before` always passes, so a flow whose state is over a lowered limit can still
 * move on; `fail` and `cancel` are never checked at all (see the manager).
 */
export function sizedWrite(write: FlowWrite, before: JsonObject, limit: number, what: string): FlowWrite {
  const json = JSON.stringify(write.flow.state);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > limit && bytes > Buffer.byteLength(JSON.stringify(before), 'utf8')) {
    throw new FlowError(
      'invalid_input',
      `${what} would make the state of flow ${write.flow.id} ${bytes} bytes, over the limit of ${limit}; store large data elsewhere and keep a reference`,
    );
  }
  return { ...write, stateJson: json };
}

/** A caller's options object (`undefined` for none); anything else is `invalid_input`. */
export function optionsObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FlowError('invalid_input', `${what} must be an object, got ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}

/** A required input object; anything else is `invalid_input`. */
export function inputObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined) throw new FlowError('invalid_input', `${what} is required`);
  return optionsObject(value, what);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Malformed ids are answered like unknown ones: `not_found`. */
export function checkFlowId(id: unknown): string {
  if (typeof id !== 'string' || !UUID.test(id)) {
    throw new FlowError('not_found', `no flow with id ${describeValue(id)}`);
  }
  return id.toLowerCase();
}

/** `{ expectedRevision }` of a mutation: absent, or a non-negative integer. */
export function checkExpectedRevision(options: unknown): number | undefined {
  const expected = optionsObject(options, 'write options').expectedRevision;
  if (expected === undefined) return undefined;
  if (typeof expected !== 'number' || !Number.isSafeInteger(expected) || expected < 0) {
    throw new FlowError('invalid_input', `expectedRevision must be a non-negative integer, got ${describeValue(expected)}`);
  }
  return expected;
}

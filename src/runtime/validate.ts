import { FlowError } from './errors.js';
import type { JsonObject } from './flow.js';

/** The default cap on a flow's JSON state: 1 MiB. */
export const DEFAULT_STATE_LIMIT = 1_048_576;

/** Checks that `value` is a plain JSON object of at most `limit` bytes and returns its JSON text. */
export function checkState(value: unknown, limit: number, what = 'state'): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FlowError('invalid_input', `${what} must be a JSON object such as {"step": 1}, got ${describe(value)}`);
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new FlowError('invalid_input', `${what} must be a plain JSON object, got an instance of ${(value as object).constructor.name}`);
  }
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new FlowError('invalid_input', `${what} is not JSON-serialisable: ${(error as Error).message}`);
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > limit) {
    throw new FlowError('invalid_input', `${what} is ${bytes} bytes, over the limit of ${limit}; store large data elsewhere and keep a reference`);
  }
  return json;
}

/** Like {@link checkState} but for a value that is merged into state: its result must fit too. */
export function checkPatch(value: unknown, limit: number, what = 'patch'): JsonObject {
  checkState(value, limit, what);
  return value as JsonObject;
}

/** A non-empty string, trimmed. */
export function requireText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new FlowError('invalid_input', `${field} must be a non-empty string`);
  }
  return value;
}

export function optionalText(value: unknown, field: string): string | undefined {
  return value === undefined || value === null ? undefined : requireText(value, field);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Malformed ids are answered like unknown ones: `not_found`. */
export function checkFlowId(id: unknown): string {
  if (typeof id !== 'string' || !UUID.test(id)) {
    throw new FlowError('not_found', `no flow with id ${JSON.stringify(id)}`);
  }
  return id.toLowerCase();
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

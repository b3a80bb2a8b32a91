import type { JsonObject } from '../runtime/flow.js';
import { ToolRefusal } from './refusal.js';

/**
 * Readers of one input field each. Absent and `null` mean "not given" (strict
 * OpenAI tool calls send `null` for optional fields); a value of the wrong
 * type is refused with a message that names the field and shows a good value.
 */
export type Fields = { readonly [field: string]: unknown };

function given(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

export function optionalText(fields: Fields, field: string, where = ''): string | undefined {
  const value = fields[field];
  if (!given(value)) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ToolRefusal('invalid_input', `${where}${field} must be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

export function requiredText(fields: Fields, field: string, action: string, example: string, where = ''): string {
  const value = optionalText(fields, field, where);
  if (value === undefined) throw new ToolRefusal('invalid_input', `${action} needs ${where}${field} (a non-empty string, such as ${example})`);
  return value;
}

export function optionalObject(fields: Fields, field: string, example: string): JsonObject | undefined {
  const value = fields[field];
  if (!given(value)) return undefined;
  if (typeof value !== 'object' || Array.isArray(value) || value === null) {
    throw new ToolRefusal('invalid_input', `${field} must be a JSON object such as ${example}, got ${describe(value)}`);
  }
  return value as JsonObject;
}

export function optionalInteger(fields: Fields, field: string, min: number, max: number): number | undefined {
  const value = fields[field];
  if (!given(value)) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = Number.isFinite(max) ? `from ${min} to ${max}` : `of at least ${min}`;
    throw new ToolRefusal('invalid_input', `${field} must be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

export function optionalChoice<T extends string>(fields: Fields, field: string, choices: readonly T[]): T | undefined {
  const value = fields[field];
  if (!given(value)) return undefined;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new ToolRefusal('invalid_input', `${field} must be one of ${choices.join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

/** Whether `value` is a plain object (not an array, not null). */
export function isRecord(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export { describe as describeValue };

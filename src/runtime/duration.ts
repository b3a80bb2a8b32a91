import { FlowError } from './errors.js';
import { describeValue } from './text.js';

/** Milliseconds, or a string such as `250ms`, `5s`, `10m`, `2h`, `30d`. */
export type Duration = number | string;

/** The longest duration the runtime takes: 100 years. */
export const MAX_DURATION_MS = 100 * 365 * 86_400_000;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION_PATTERN = /^(\d{1,15}(?:\.\d{1,15})?)\s*(ms|s|m|h|d|w)$/;

/**
 * Parses a {@link Duration} into milliseconds: a finite number from 0 to
 * {@link MAX_DURATION_MS}, or a number and a unit. Anything else (another type,
 * NaN, a negative number, a bare number in a string) is `invalid_input` naming `what`.
 */
export function parseDuration(value: Duration, what = 'duration'): number {
  const input: unknown = value;
  let ms: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) {
      throw new FlowError('invalid_input', `${what} must be a non-negative number of milliseconds, got ${describeValue(input)}`);
    }
    ms = input;
  } else if (typeof input === 'string') {
    const match = input.length <= 40 ? DURATION_PATTERN.exec(input.trim()) : null;
    if (!match) {
      throw new FlowError(
        'invalid_input',
        `${what} ${describeValue(input)} is not a duration: use a number and a unit, such as 250ms, 5s, 10m, 2h or 30d`,
      );
    }
    ms = Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
  } else {
    throw new FlowError('invalid_input', `${what} must be milliseconds or a string such as "30d", got ${describeValue(input)}`);
  }
  if (ms > MAX_DURATION_MS) throw new FlowError('invalid_input', `${what} is longer than the maximum of 100 years`);
  return ms;
}

/**
 * A duration that must be longer than zero and at most `maxMs` (for example
 * what a host timer can wait): `invalid_input` otherwise.
 */
export function parsePositiveDuration(value: Duration, what: string, maxMs = MAX_DURATION_MS): number {
  const ms = parseDuration(value, what);
  if (ms <= 0) throw new FlowError('invalid_input', `${what} must be longer than 0, such as "5s"`);
  if (ms > maxMs) throw new FlowError('invalid_input', `${what} must be at most ${maxMs} ms`);
  return ms;
}

import { FlowError } from './errors.js';

/** Milliseconds, or a string such as `250ms`, `5s`, `10m`, `2h`, `30d`. */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;

/** Parses a {@link Duration} into milliseconds; `what` names it in the error. */
export function parseDuration(value: Duration, what = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
    throw new FlowError('invalid_input', `${what} must be a non-negative number of milliseconds, got ${value}`);
  }
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) {
    throw new FlowError(
      'invalid_input',
      `${what} "${value}" is not a duration: use a number and a unit, such as 250ms, 5s, 10m, 2h or 30d`,
    );
  }
  return Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
}

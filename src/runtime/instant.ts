import { FlowError } from './errors.js';
import { describeValue, readInput } from './text.js';

/** 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the years RFC 3339 can write, which both stores keep. */
export const MIN_INSTANT_MS = utc(0, 1, 1);
export const MAX_INSTANT_MS = utc(9999, 12, 31) + 86_400_000 - 1;

/** Epoch ms of a UTC calendar day; unlike `Date.UTC`, years 0 to 99 are taken as written. */
function utc(year: number, month: number, day: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getTime();
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 time with its zone (`2026-12-01T09:00:00Z`,
 * `2026-12-01T10:00:00+01:00`; seconds may be left out). Anything else, a date
 * that does not exist (February 30) or a leap second, is undefined: never a
 * guess in the server's zone.
 */
export function parseRfc3339(text: string): Date | undefined {
  const match = RFC3339.exec(text.trim());
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (!zulu) {
    const offsetHours = Number(oh);
    const offsetMins = Number(om);
    if (offsetHours > 23 || offsetMins > 59) return undefined;
    offsetMinutes = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const millis = fraction === undefined ? 0 : Math.floor(Number(`0.${fraction}`) * 1000);
  const ms = utc(year, month, day) + ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 + millis;
  return ms < MIN_INSTANT_MS || ms > MAX_INSTANT_MS ? undefined : new Date(ms);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** A moment as a `Date`, an RFC 3339 string with a zone, or epoch milliseconds. */
export type Instant = Date | string | number;

/**
 * An instant of the runtime API: a valid `Date`, an RFC 3339 string with a zone,
 * or epoch milliseconds, within the years 0000 to 9999. Returns a
 * fresh `Date`; anything else is `invalid_input` naming `field`.
 */
export function parseInstant(value: unknown, field: string): Date {
  return readInput(field, () => readInstant(value, field));
}

function readInstant(value: unknown, field: string): Date {
  let ms: number | undefined;
  if (value instanceof Date) ms = Date.prototype.getTime.call(value);
  else if (typeof value === 'number') ms = Number.isFinite(value) ? Math.trunc(value) : undefined;
  else if (typeof value === 'string') ms = parseRfc3339(value)?.getTime();
  else {
    throw new FlowError('invalid_input', `${field} must be a Date, an RFC 3339 string or epoch milliseconds, got ${describeValue(value)}`);
  }
  if (ms === undefined || Number.isNaN(ms) || ms < MIN_INSTANT_MS || ms > MAX_INSTANT_MS) {
    throw new FlowError(
      'invalid_input',
      `${field} ${describeValue(value)} is not a valid time; use RFC 3339 with a zone, such as 2026-12-01T09:00:00Z`,
    );
  }
  return new Date(ms);
}

import type { Clock } from './clock.js';
import { parseDuration, parsePositiveDuration, type Duration } from './duration.js';
import { FlowError } from './errors.js';
import { resolveInboxLimits, type InboxLimits } from './inbox.js';
import type { ResumeHandler } from './delivery.js';
import type { Logger } from './logger.js';
import type { NatsOptions } from './nats/options.js';
import type { FlowStore } from './store/contract.js';
import type { TelemetryMeter, TelemetryOption, TelemetryTracer } from './telemetry.js';
import { describeValue, hasUnstorableText, readInput } from './text.js';
import { DEFAULT_STATE_LIMIT } from './validate.js';

/** The longest delay a Node host timer takes; a longer one fires at once. */
export const MAX_HOST_DELAY_MS = 2_147_483_647;
/** The largest `stateLimit`: 256 MiB. */
export const MAX_STATE_LIMIT = 256 * 1_048_576;

/** The checked numbers and callbacks of `openTaskflow`'s options. */
export interface CheckedOptions {
  database: string | undefined;
  synchronous: 'full' | 'normal' | undefined;
  tickInterval: number;
  timerMaxHorizon: number;
  resumeLease: number;
  eventRetention: number;
  stateLimit: number;
  clock: Clock | undefined;
  logger: Logger | undefined;
  store: FlowStore | undefined;
  onResume: ResumeHandler | undefined;
  nats: NatsOptions | undefined;
  busyTimeout: number | undefined;
  resumeConcurrency: number | undefined;
  maxResumeAttempts: number | undefined;
  inbox: InboxLimits;
  telemetry: TelemetryOption | undefined;
  /** `sqlite.thread`. */
  sqliteThread: 'main' | 'worker' | undefined;
}

/**
 * Checks `openTaskflow`'s options before anything opens: each of the wrong type,
 * or whose value makes no sense (a sweep or lease of 0, a negative or non-finite
 * duration, a state limit that is not a positive integer), is refused with
 * `invalid_input`. The `nats` options are checked by the bridge, `store` by its
 * shape only.
 */
export function checkTaskflowOptions(options: unknown): CheckedOptions {
  return readInput('openTaskflow options', () => {
    if (options === undefined) options = {};
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new FlowError('invalid_input', `openTaskflow options must be an object, got ${describeValue(options)}`);
    }
    const o = options as Record<string, unknown>;
    const duration = (name: string, fallback: Duration, check: (value: Duration, what: string) => number): number =>
      check((o[name] === undefined ? fallback : o[name]) as Duration, name);
    const checked: CheckedOptions = {
      database: database(o.database),
      synchronous: choice(o.synchronous, 'synchronous', ['full', 'normal'] as const),
      tickInterval: duration('tickInterval', '5s', (v, w) => parsePositiveDuration(v, w, MAX_HOST_DELAY_MS)),
      timerMaxHorizon: duration('timerMaxHorizon', '30d', (v, w) => parsePositiveDuration(v, w)),
      resumeLease: duration('resumeLease', '30s', (v, w) => parsePositiveDuration(v, w, MAX_HOST_DELAY_MS)),
      eventRetention: duration('eventRetention', '7d', (v, w) => parseDuration(v, w)),
      stateLimit: stateLimit(o.stateLimit),
      clock: shaped<Clock>(o.clock, 'clock', ['now']),
      logger: shaped<Logger>(o.logger, 'logger', ['debug', 'info', 'warn', 'error']),
      store: shaped<FlowStore>(o.store, 'store', ['commit', 'commitClaiming', 'commitBatch', 'close']),
      onResume: undefined,
      nats: undefined,
      busyTimeout: o.busyTimeout === undefined ? undefined : parseDuration(o.busyTimeout as Duration, 'busyTimeout'),
      resumeConcurrency: positiveInteger(o.resumeConcurrency, 'resumeConcurrency'),
      maxResumeAttempts: positiveInteger(o.maxResumeAttempts, 'maxResumeAttempts'),
      inbox: inboxLimits(o.inbox),
      telemetry: telemetry(o.telemetry),
      sqliteThread: sqliteThread(o.sqlite),
    };
    if (o.onResume !== undefined) {
      if (typeof o.onResume !== 'function') throw new FlowError('invalid_input', `onResume must be a function, got ${describeValue(o.onResume)}`);
      checked.onResume = o.onResume as ResumeHandler;
    }
    if (o.nats !== undefined) {
      if (typeof o.nats !== 'object' || o.nats === null || Array.isArray(o.nats)) {
        throw new FlowError('invalid_input', `nats must be an object such as { servers: 'nats://127.0.0.1:4222' }, got ${describeValue(o.nats)}`);
      }
      checked.nats = { ...(o.nats as NatsOptions) };
    }
    return checked;
  });
}

function sqliteThread(value: unknown): 'main' | 'worker' | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FlowError('invalid_input', `sqlite must be an object such as { thread: 'worker' }, got ${describeValue(value)}`);
  }
  return choice((value as Record<string, unknown>).thread, 'sqlite.thread', ['main', 'worker'] as const);
}

function telemetry(value: unknown): TelemetryOption | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FlowError('invalid_input', `telemetry must be true, false or { tracer?, meter? }, got ${describeValue(value)}`);
  }
  const given = value as Record<string, unknown>;
  const tracer = shaped<TelemetryTracer>(given.tracer, 'telemetry.tracer', ['startSpan']);
  const meter = shaped<TelemetryMeter>(given.meter, 'telemetry.meter', ['createCounter', 'createHistogram', 'createObservableGauge']);
  return { ...(tracer ? { tracer } : {}), ...(meter ? { meter } : {}) };
}

function database(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '' || value.length > 4096 || hasUnstorableText(value)) {
    throw new FlowError('invalid_input', `database must be a file path, ':memory:' or a postgres:// URL, got ${describeValue(value)}`);
  }
  return value;
}

function choice<T extends string>(value: unknown, name: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new FlowError('invalid_input', `${name} must be one of ${choices.join(', ')}, got ${describeValue(value)}`);
  }
  return value as T;
}

function stateLimit(value: unknown): number {
  if (value === undefined) return DEFAULT_STATE_LIMIT;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 2 || value > MAX_STATE_LIMIT) {
    throw new FlowError('invalid_input', `stateLimit must be a whole number of bytes from 2 to ${MAX_STATE_LIMIT}, got ${describeValue(value)}`);
  }
  return value;
}

/** An object with the named methods, or undefined. */
function shaped<T>(value: unknown, name: string, methods: readonly string[]): T | undefined {
  if (value === undefined) return undefined;
  const object = value as Record<string, unknown>;
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null || methods.some((m) => typeof object[m] !== 'function')) {
    throw new FlowError('invalid_input', `${name} must be an object with ${methods.join(', ')} methods, got ${describeValue(value)}`);
  }
  return value as T;
}

function positiveInteger(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new FlowError('invalid_input', `${name} must be a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

function inboxLimits(value: unknown): InboxLimits {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new FlowError('invalid_input', `inbox must be an object such as { maxPerKey: 10, maxTotal: 10000 }, got ${describeValue(value)}`);
  }
  const limits = resolveInboxLimits(value === undefined ? {} : { ...(value as Partial<InboxLimits>) });
  for (const name of ['maxPerKey', 'maxTotal'] as const) {
    if (!Number.isSafeInteger(limits[name])) throw new FlowError('invalid_input', `inbox.${name} must be a non-negative integer`);
  }
  return limits;
}

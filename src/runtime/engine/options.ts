import { systemClock, type Clock } from '../clock.js';
import { FlowError } from '../errors.js';
import { resolveInboxLimits, type InboxLimits } from '../inbox.js';
import { defaultLogger, type Logger } from '../logger.js';
import type { BridgeCover } from '../store/diagnostics.js';
import type { FlowStore } from '../store/contract.js';
import { NO_TELEMETRY, type EngineTelemetry } from '../telemetry.js';
import { DEFAULT_STATE_LIMIT } from '../validate.js';
import type { Backoff } from '../backoff.js';
import type { ResumeHandler } from '../delivery.js';

export interface WaitEngineOptions {
  store: FlowStore;
  clock?: Clock;
  /** Default {@link defaultLogger}: warnings and errors to stderr. */
  logger?: Logger;
  onResume?: ResumeHandler;
  /** Safety sweep period in ms. Default 5000. */
  tickInterval?: number;
  /** How long a claimed notification is leased to its handler, in ms. Default 30000. */
  resumeLease?: number;
  /** How long an unmatched event (and a seen event id) is kept, in ms. Default 7 days. */
  eventRetention?: number;
  /** Flows resumed per transaction when many are due at once. Default 500. */
  batchSize?: number;
  /**
   * `onResume` handlers running at once. Each notification is handled on its own:
   * a slow handler holds one slot, and one still running after its lease frees it.
   * Default {@link DEFAULT_RESUME_CONCURRENCY}.
   */
  resumeConcurrency?: number;
  /**
   * Handler starts of one notification (failures and expired leases) before it is
   * parked as dead: kept with its last error, never claimed again until
   * {@link WaitEngine.requeueDead}. Default {@link DEFAULT_MAX_RESUME_ATTEMPTS}.
   */
  maxResumeAttempts?: number;
  /** Background work that fails on the store retries after `initialMs`, doubling up to `maxMs`. Default 100 ms and 30 s. */
  storageBackoff?: { initialMs?: number; maxMs?: number };
  /** Caps of the inbox of unmatched events. Default 10 per key, 10,000 in all. */
  inbox?: Partial<InboxLimits>;
  /** Bytes of JSON state a flow may hold: an event or signal payload that would take it over is refused. Default 1 MiB. */
  stateLimit?: number;
  /** Spans of resumes and deliveries, counts of attempts and dead notifications. Default none. */
  telemetry?: EngineTelemetry;
  /**
   * What the runtime's NATS bridge covers, recorded with the heartbeat the started
   * engine writes at most every 5 s (`taskflow doctor` reads it). Default: no bridge.
   */
  heartbeat?: () => BridgeCover | null;
}

/** Default of {@link WaitEngineOptions.resumeConcurrency}. */
export const DEFAULT_RESUME_CONCURRENCY = 16;
/** Default of {@link WaitEngineOptions.maxResumeAttempts}. */
export const DEFAULT_MAX_RESUME_ATTEMPTS = 10;

/** The engine's options with every default applied and every value checked, once, before any part exists. */
export interface EngineSettings {
  readonly store: FlowStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onResume: ResumeHandler | undefined;
  readonly telemetry: EngineTelemetry;
  readonly tickInterval: number;
  readonly resumeLease: number;
  readonly eventRetention: number;
  readonly batchSize: number;
  readonly resumeConcurrency: number;
  readonly maxResumeAttempts: number;
  /** Storage failures of background work: retried after this backoff. */
  readonly storageBackoff: Backoff;
  /** A failed handler is retried after this backoff, by attempt. */
  readonly retryBackoff: Backoff;
  /** A host timer that fired with nothing to do (a clock not there yet, rows another engine holds) looks again after this backoff, at most a sweep apart. */
  readonly idleBackoff: Backoff;
  /** Notifications claimed ahead of free slots, at most. */
  readonly prefetch: number;
  readonly inbox: InboxLimits;
  readonly stateLimit: number;
  readonly heartbeat: () => BridgeCover | null;
}

/** Compiles {@link WaitEngineOptions} into {@link EngineSettings}; throws `invalid_input` for a count that is not a positive integer. */
export function resolveEngineOptions(options: WaitEngineOptions): EngineSettings {
  const tickInterval = options.tickInterval ?? 5_000;
  const batchSize = options.batchSize ?? 500;
  const resumeConcurrency = positiveInteger(options.resumeConcurrency ?? DEFAULT_RESUME_CONCURRENCY, 'resumeConcurrency');
  return {
    store: options.store,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? defaultLogger,
    onResume: options.onResume,
    telemetry: options.telemetry ?? NO_TELEMETRY,
    tickInterval,
    resumeLease: options.resumeLease ?? 30_000,
    eventRetention: options.eventRetention ?? 7 * 86_400_000,
    batchSize,
    resumeConcurrency,
    maxResumeAttempts: positiveInteger(options.maxResumeAttempts ?? DEFAULT_MAX_RESUME_ATTEMPTS, 'maxResumeAttempts'),
    storageBackoff: { initialMs: options.storageBackoff?.initialMs ?? 100, maxMs: options.storageBackoff?.maxMs ?? 30_000 },
    retryBackoff: { initialMs: 1_000, maxMs: 5 * 60_000 },
    idleBackoff: { initialMs: 20, maxMs: tickInterval },
    prefetch: 2 * batchSize + 4 * resumeConcurrency,
    inbox: resolveInboxLimits(options.inbox),
    stateLimit: options.stateLimit ?? DEFAULT_STATE_LIMIT,
    heartbeat: options.heartbeat ?? (() => null),
  };
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new FlowError('invalid_input', `${name} must be a positive integer, not ${String(value)}`);
  return value;
}

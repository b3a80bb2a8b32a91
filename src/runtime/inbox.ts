import { FlowError } from './errors.js';
import type { Logger } from './logger.js';
import type { EventKey } from './wait-condition.js';

/**
 * Bounds of the inbox, where events that matched no waiting flow are kept.
 * Anyone who can deliver (publish on a covered subject) can fill it, so it is
 * capped per key and in total. Policy: **drop the newest**. An event that
 * arrives when its key or the inbox is full is not kept (nor is its id
 * remembered); events already kept stay until a wait consumes them or they
 * expire. So a flood cannot evict a real event that arrived before it, and a
 * key's events are consumed in arrival order. Waiting flows are never affected:
 * an event that matches a waiting flow resumes it whatever the inbox holds.
 */
export interface InboxLimits {
  /** Events kept per (topic, correlation id). Default 10. */
  maxPerKey: number;
  /** Events kept in all. Default 10,000. */
  maxTotal: number;
}

export const DEFAULT_INBOX_LIMITS: Readonly<InboxLimits> = { maxPerKey: 10, maxTotal: 10_000 };

/** Why an event was not kept: its key already holds `maxPerKey` events, or the inbox `maxTotal`. */
export type InboxDrop = 'key_full' | 'inbox_full';

/** How full the inbox is, as a store counts it (by index) for one key. */
export interface InboxFill {
  forKey: number;
  total: number;
}

/** Events dropped since the engine started, by reason: the inbox metric. */
export interface InboxDropCounts {
  keyFull: number;
  inboxFull: number;
}

/** An event kept because no flow waited on its key when it arrived. */
export interface KeptEvent {
  id: number;
  topic: string;
  correlationId: string;
  eventId: string | null;
  payload: unknown;
  receivedAt: Date;
}

/** The kept events of one key, for operators (`taskflow inbox`). */
export interface InboxKeySummary extends EventKey {
  /** How many events are kept for this key. */
  events: number;
  oldestAt: Date;
  newestAt: Date;
  /** When the oldest of them expires. */
  expiresAt: Date;
}

/** Checks and completes the `inbox` option of `openTaskflow`. */
export function resolveInboxLimits(options: Partial<InboxLimits> = {}): InboxLimits {
  if (typeof options !== 'object' || options === null) throw new FlowError('invalid_input', 'inbox must be an object such as { maxPerKey: 10, maxTotal: 10000 }');
  const limits = { ...DEFAULT_INBOX_LIMITS, ...options };
  for (const name of ['maxPerKey', 'maxTotal'] as const) {
    const value = limits[name];
    if (!Number.isInteger(value) || value < 0) throw new FlowError('invalid_input', `inbox.${name} must be a non-negative integer, got ${String(value)}`);
  }
  return limits;
}

/** Whether one more event may be kept for a key, given how full the inbox is. */
export function inboxDrop(fill: InboxFill, limits: InboxLimits): InboxDrop | undefined {
  if (fill.forKey >= limits.maxPerKey) return 'key_full';
  if (fill.total >= limits.maxTotal) return 'inbox_full';
  return undefined;
}

/**
 * Tells the operator when the cap bites, once per change of state rather than
 * once per event: a warning when drops start (and when their reason changes),
 * an info line with the count when a sweep passes with no drop since the last.
 */
export class InboxPressure {
  private readonly counts: InboxDropCounts = { keyFull: 0, inboxFull: 0 };
  /** The current episode of drops: reasons already reported, drops since the last sweep and in all. */
  private episode: { reasons: Set<InboxDrop>; sinceSweep: number; dropped: number } | undefined;

  constructor(
    readonly limits: InboxLimits,
    private readonly logger: Logger,
  ) {}

  /** Cumulative drops by reason. */
  get dropped(): InboxDropCounts {
    return { ...this.counts };
  }

  /** Records a committed drop. */
  drop(reason: InboxDrop, key: EventKey): void {
    if (reason === 'key_full') this.counts.keyFull++;
    else this.counts.inboxFull++;
    this.episode ??= { reasons: new Set(), sinceSweep: 0, dropped: 0 };
    this.episode.sinceSweep++;
    this.episode.dropped++;
    if (this.episode.reasons.has(reason)) return;
    this.episode.reasons.add(reason);
    const why = reason === 'key_full' ? `its key holds ${this.limits.maxPerKey} events (inbox.maxPerKey)` : `the inbox holds ${this.limits.maxTotal} events (inbox.maxTotal)`;
    this.logger.warn(
      { reason, topic: key.topic, correlationId: key.correlationId, ...this.limits },
      `taskflow: inbox full, dropping new unmatched events: ${why}; kept events stay until consumed or expired`,
    );
  }

  /** Called by each sweep: an episode with no drop since the previous sweep ends. */
  settle(): void {
    if (!this.episode) return;
    if (this.episode.sinceSweep > 0) {
      this.episode.sinceSweep = 0;
      return;
    }
    this.logger.info({ dropped: this.episode.dropped }, 'taskflow: inbox drops stopped; unmatched events are kept again');
    this.episode = undefined;
  }
}

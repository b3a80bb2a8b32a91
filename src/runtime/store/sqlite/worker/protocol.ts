import { FlowError, type FlowErrorCode } from '../../../errors.js';
import type { ClaimedNotification, Decision, FlowStore, Loaded, LoadRequest } from '../../contract.js';
import type { SqliteStoreOptions } from '../options.js';

/**
 * The messages between a {@link SqliteWorkerStore} (main thread) and its worker
 * thread (`thread.ts`), which owns the better-sqlite3 connection. Everything
 * crosses by structured clone, which keeps `Date`s and `Map`s.
 */

/** The store calls the worker answers on its own: every member but the commits, the watch and close. */
export const FORWARDED_CALLS = [
  'getFlow',
  'listByOwner',
  'listByStatus',
  'listSteps',
  'listEvents',
  'lastEvents',
  'pruneTerminal',
  'countByStatus',
  'pageFlows',
  'listWaking',
  'nextWakeAt',
  'waitingTopics',
  'claimNotifications',
  'completeNotifications',
  'retryNotification',
  'parkNotification',
  'releaseNotifications',
  'requeueDead',
  'listNotifications',
  'listDeadNotifications',
  'nextNotificationAt',
  'listInbox',
  'purgeExpiredEvents',
  'recordHeartbeat',
  'listHeartbeats',
  'waitingKeys',
] as const satisfies readonly (keyof FlowStore)[];

export type ForwardedCall = (typeof FORWARDED_CALLS)[number];

/** What the worker is started with (`workerData`). */
export interface WorkerSettings {
  options: SqliteStoreOptions;
}

/** A decision as it crosses to the worker: its `result` stays with the caller. */
export type WireDecision = Omit<Decision<unknown>, 'result'>;

export type ToWorker =
  | { t: 'call'; id: number; method: ForwardedCall; args: unknown[] }
  /** A commit: one load (`commit`, `commitClaiming`) or several (`commitBatch`), grouped with whatever else is queued. */
  | { t: 'commit'; id: number; loads: LoadRequest[]; claim?: { leaseUntil: number; limit?: number }; guesses?: PlanGuess[] }
  /** The plan of item `item` of commit `id`; no decision when the plan threw. */
  | { t: 'decision'; id: number; item: number; decision?: WireDecision }
  /** Diagnostics (tests, `EXPLAIN`): a PRAGMA on the worker's connection. */
  | { t: 'pragma'; id: number; source: string; simple: boolean }
  | { t: 'watch'; on: boolean }
  | { t: 'close'; id: number };

/**
 * A plan made ahead on the main thread from a snapshot: used as is when the thread
 * loads exactly these bytes (`v8.serialize` of its Loaded) under the lock, else
 * the plan is made again from what it loaded.
 */
export interface PlanGuess {
  loaded: Uint8Array;
  /** Absent when the plan threw on the snapshot. */
  decision?: WireDecision;
}

export type WireOutcome = { ok: true; claimed: ClaimedNotification[] } | { ok: false; error?: WireError };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'failed'; error: WireError }
  | { t: 'reply'; id: number; value?: unknown; error?: WireError }
  | { t: 'loaded'; id: number; item: number; loaded: Loaded }
  | { t: 'committed'; id: number; outcomes: WireOutcome[] }
  /** Another connection committed (`PRAGMA data_version` moved). */
  | { t: 'foreign' };

/** An error as it crosses threads: a `FlowError` keeps its code, a SQLite cause its code. */
export interface WireError {
  message: string;
  flowCode?: FlowErrorCode;
  causeCode?: string;
  causeMessage?: string;
}

export function toWire(error: unknown): WireError {
  const message = error instanceof Error ? error.message : String(error);
  const wire: WireError = { message };
  if (FlowError.isInstance(error)) wire.flowCode = error.code;
  const cause = FlowError.isInstance(error) ? error.cause : error;
  if (typeof cause === 'object' && cause !== null) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') wire.causeCode = code;
    if (cause instanceof Error) wire.causeMessage = cause.message;
  }
  return wire;
}

/** The error on this side: a `FlowError` with its code; anything else the worker threw is `storage`. */
export function fromWire(wire: WireError): FlowError {
  const cause = wire.causeCode === undefined && wire.causeMessage === undefined
    ? undefined
    : Object.assign(new Error(wire.causeMessage ?? wire.message), wire.causeCode === undefined ? {} : { code: wire.causeCode });
  return new FlowError(wire.flowCode ?? 'storage', wire.message, cause === undefined ? undefined : { cause });
}

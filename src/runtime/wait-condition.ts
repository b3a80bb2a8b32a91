import type { Instant } from './instant.js';
import type { RecurringWait, RecurringWaitInput } from './recurring/schedule.js';

// The shapes of waits, with no behaviour: wait.ts (reading, storing, timing a
// wait) and any-of.ts (its conditions and wakes) both stand on this file, so
// neither needs the other's types. wait.ts re-exports them.

/** The key an event is delivered by and an event wait waits on. */
export interface EventKey {
  topic: string;
  correlationId: string;
}

/** Wake the flow at `at`. */
export interface TimerWait {
  kind: 'timer';
  at: Date;
}
/** Wake the flow when an event arrives on `topic` for `correlationId`, or at `timeoutAt`. */
export interface ExternalEventWait {
  kind: 'external_event';
  topic: string;
  correlationId: string;
  timeoutAt?: Date;
}
/** Wake the flow on a manual signal (named `signal` when given), or at `timeoutAt`. */
export interface ManualWait {
  kind: 'manual';
  signal?: string;
  timeoutAt?: Date;
}
/** One condition of an {@link AnyOfWait}: a timer (the deadline), an event key, or a named signal. */
export type AnyOfCondition =
  | TimerWait
  | { kind: 'external_event'; topic: string; correlationId: string }
  | { kind: 'manual'; signal: string };
/**
 * Wake the flow on the first of several conditions (1 to 16, no condition twice,
 * at most one timer). The commit that resumes the flow decides; the wake says
 * which condition won (`wake.condition`), and the others are void.
 */
export interface AnyOfWait {
  kind: 'any';
  of: AnyOfCondition[];
}
/** What a waiting flow waits for. */
export type WaitCondition = TimerWait | ExternalEventWait | ManualWait | AnyOfWait | RecurringWait;

/** A condition of an any-of wait as callers may write it. */
export type AnyOfConditionInput =
  | { kind: 'timer'; at: Instant }
  | { kind: 'external_event'; topic: string; correlationId: string }
  | { kind: 'manual'; signal: string };

/** A wait as callers may write it: instants in any {@link Instant} form. */
export type WaitInput =
  | { kind: 'timer'; at: Instant }
  | { kind: 'external_event'; topic: string; correlationId: string; timeoutAt?: Instant }
  | { kind: 'manual'; signal?: string; timeoutAt?: Instant }
  | { kind: 'any'; of: readonly AnyOfConditionInput[] }
  | RecurringWaitInput;

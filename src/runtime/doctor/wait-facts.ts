import { eventKeysOf } from '../any-of.js';
import type { EventKey } from '../store/contract.js';
import type { WaitCondition } from '../wait.js';

/**
 * What the doctor needs to know of a wait, whatever its kind. A new wait kind
 * is taught to the doctor (and to the tool's `status` warnings) here, in one place.
 */
export interface WaitFacts {
  /** The event keys an event can resume it on. */
  eventKeys: EventKey[];
  /** Whether a manual signal can resume it. */
  signal: boolean;
  /** When a timer or timeout resumes it, if ever. */
  wakeAt: Date | undefined;
}

export function waitFacts(wait: WaitCondition): WaitFacts {
  switch (wait.kind) {
    case 'timer':
      return { eventKeys: [], signal: false, wakeAt: wait.at };
    case 'external_event':
      return { eventKeys: [{ topic: wait.topic, correlationId: wait.correlationId }], signal: false, wakeAt: wait.timeoutAt };
    case 'manual':
      return { eventKeys: [], signal: true, wakeAt: wait.timeoutAt };
    case 'any':
      // The first of several: each event condition's key, a signal if it names one, its timer condition.
      return { eventKeys: eventKeysOf(wait), signal: wait.of.some((c) => c.kind === 'manual'), wakeAt: wait.of.find((c) => c.kind === 'timer')?.at };
    default: {
      // A wait kind this file does not know yet: nothing can be said of it.
      const unknown: { kind?: unknown } = wait;
      void unknown;
      return { eventKeys: [], signal: false, wakeAt: undefined };
    }
  }
}

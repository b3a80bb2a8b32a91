import type { Flow, WaitInput } from '../../src/index.js';

/** What a torture flow waits for at each step; the last step is followed by `finish`. */
export type Step = 'timer' | 'event' | 'signal' | 'timeout';

export const EVENT_TOPIC = 'torture.paid';
export const SIGNAL = 'go';

/** A flow's script of waits, chosen from its number so every run covers every kind. */
export function scriptFor(index: number, length: number): Step[] {
  const kinds: Step[] = ['timer', 'event', 'signal', 'timeout'];
  return Array.from({ length }, (_, k) => kinds[(index + k) % kinds.length]!);
}

/** Waits a running flow has completed: created (0), started (1), then a wait and a resume per step. */
export function waitsDone(flow: Flow): number {
  return (flow.revision - 1) / 2;
}

/** The correlation id of a flow's `step`-th event wait: unique, so an event resumes one wait only. */
export function correlationOf(flowId: string, step: number): string {
  return `${flowId}.${step}`;
}

/** The wait for step `done` of the flow's script, or undefined when the script is complete. */
export function nextWait(flow: Flow, done: number, now: number): WaitInput | undefined {
  const script = flow.state.script as Step[];
  const step = script[done];
  switch (step) {
    case undefined:
      return undefined;
    case 'timer':
      return { kind: 'timer', at: new Date(now + 20 + ((done * 37) % 300)) };
    case 'event':
      return { kind: 'external_event', topic: EVENT_TOPIC, correlationId: correlationOf(flow.id, done) };
    case 'signal':
      return { kind: 'manual', signal: SIGNAL };
    case 'timeout':
      // Nobody sends this event: the wait ends by its timeout.
      return { kind: 'external_event', topic: EVENT_TOPIC, correlationId: `${correlationOf(flow.id, done)}.never`, timeoutAt: new Date(now + 150) };
  }
}

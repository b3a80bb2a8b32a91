/**
 * Which topics reach the runtime through the fixed subjects (the stream, or on
 * core NATS pinned subscriptions) and which need a plain subscription each. Pure:
 * no I/O, no NATS package.
 */
import { waitTopicsOf } from '../any-of.js';
import type { Flow } from '../flow.js';
import { isLiteralSubject, reservedSubjectProblem, subjectMatches } from './subject.js';

/** The subjects that reach the runtime without a subscription per topic. */
export interface CoveragePlan {
  /** The reference subject the bridge takes `{ flow_id?, topic, correlation_id, payload? }` on. */
  readonly resumeSubject: string;
  /** The resume subject and the declared patterns: captured by the stream (on core NATS, pinned subscriptions). */
  readonly fixedSubjects: readonly string[];
}

/**
 * Why a wait may not name `topic` on this bus, or `undefined` when it may: it
 * must be a literal subject (no whitespace, wildcard or empty token) outside
 * `$…`, `_INBOX…`, `taskflow.…` and the resume subject.
 */
export function coverRefusal(plan: CoveragePlan, topic: string): string | undefined {
  if (typeof topic !== 'string' || !isLiteralSubject(topic)) {
    return `${JSON.stringify(topic)} is not a NATS subject (dot-separated tokens, no whitespace or wildcard)`;
  }
  return reservedSubjectProblem(topic, plan.resumeSubject);
}

/** Whether a fixed subject (the stream, or a pinned subscription) already brings `topic`'s events. */
export function isFixed(plan: CoveragePlan, topic: string): boolean {
  return plan.fixedSubjects.some((pattern) => subjectMatches(pattern, topic));
}

/**
 * The one rule of coverage: a wait topic gets a plain subscription of its own
 * when the bus may carry it (see {@link coverRefusal}) and no fixed subject
 * brings its events already. Every path that subscribes a topic (a wait being
 * stored, a commit, the start, the sweep) asks this.
 */
export function needsOwnSubscription(plan: CoveragePlan, topic: string): boolean {
  return coverRefusal(plan, topic) === undefined && !isFixed(plan, topic);
}

const NONE: readonly string[] = Object.freeze([]);

/** The topics a committed write leaves its flow waiting on (an event wait's, or every one of an any-of wait); none for other writes. */
export function waitedTopics(write: { readonly flow: Pick<Flow, 'status' | 'wait'> }): readonly string[] {
  const wait = write.flow.wait;
  if (write.flow.status !== 'waiting' || (wait?.kind !== 'external_event' && wait?.kind !== 'any')) return NONE;
  return waitTopicsOf(wait);
}

/**
 * NATS-style subject patterns for the binding's topic allow-list: tokens are
 * separated by `.`, `*` matches exactly one token, and a final `>` matches one
 * or more tokens. `payments.>` allows `payments.invoice.paid`; `orders.*.paid`
 * allows `orders.42.paid` but not `orders.42.x.paid`. The grammar and its refusal
 * reasons are the NATS bridge's own (`runtime/nats/subject.ts`), so a topic the tool
 * accepts is one the bridge can carry.
 */
import { concreteTopicProblem, subjectMatches, topicPatternProblem } from '../runtime/nats/subject.js';

export { concreteTopicProblem, topicPatternProblem };

/** Whether the concrete `topic` matches the NATS-style `pattern`. */
export function topicMatches(pattern: string, topic: string): boolean {
  return subjectMatches(pattern, topic);
}

/** Whether `topic` matches any of `patterns`. */
export function topicAllowed(patterns: readonly string[], topic: string): boolean {
  return patterns.some((pattern) => topicMatches(pattern, topic));
}

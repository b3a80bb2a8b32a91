/**
 * NATS-style subject patterns for the binding's topic allow-list: tokens are
 * separated by `.`, `*` matches exactly one token, and a final `>` matches one
 * or more tokens. `payments.>` allows `payments.invoice.paid`; `orders.*.paid`
 * allows `orders.42.paid` but not `orders.42.x.paid`. Pure: no I/O. Matching is
 * the NATS bridge's own (`runtime/subject.ts`); this module adds the reasons a
 * model or an operator reads when a pattern or topic is refused.
 */
import { subjectMatches } from '../runtime/subject.js';

/** Why `pattern` is not a valid pattern, or `undefined` when it is. */
export function topicPatternProblem(pattern: string): string | undefined {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'a topic pattern must be a non-empty string';
  if (/\s/.test(pattern)) return `topic pattern "${pattern}" contains whitespace`;
  const tokens = pattern.split('.');
  for (const [index, token] of tokens.entries()) {
    if (token === '') return `topic pattern "${pattern}" has an empty token`;
    if (token === '>' && index !== tokens.length - 1) return `topic pattern "${pattern}" uses ">" before its last token`;
    if (token !== '*' && token !== '>' && /[*>]/.test(token)) {
      return `topic pattern "${pattern}" mixes a wildcard into the token "${token}"`;
    }
  }
  return undefined;
}

/** Why `topic` cannot be waited on (wildcards, empty tokens, whitespace), or `undefined` when it can. */
export function concreteTopicProblem(topic: string): string | undefined {
  if (/\s/.test(topic)) return 'contains whitespace';
  const tokens = topic.split('.');
  if (tokens.some((token) => token === '')) return 'has an empty token (two dots in a row, or a dot at an end)';
  if (tokens.some((token) => /[*>]/.test(token))) return 'contains a wildcard (* or >); wait on one concrete topic';
  return undefined;
}

/** Whether the concrete `topic` matches the NATS-style `pattern`. */
export function topicMatches(pattern: string, topic: string): boolean {
  return subjectMatches(pattern, topic);
}

/** Whether `topic` matches any of `patterns`. */
export function topicAllowed(patterns: readonly string[], topic: string): boolean {
  return patterns.some((pattern) => topicMatches(pattern, topic));
}

import { FlowError } from '../errors.js';
import type { NatsStartRule } from './options.js';
import { isSubjectPattern, subjectMatches } from './subject.js';

/** Checks `nats.startOrDeliver`: each rule a pattern within the declared subjects, with a `flowFor` function. */
export function checkStartRules(rules: unknown, declared: readonly string[]): NatsStartRule[] {
  if (rules === undefined) return [];
  if (!Array.isArray(rules)) throw new FlowError('invalid_input', 'nats.startOrDeliver must be an array of { subject, flowFor }');
  return rules.map((rule: unknown, i) => {
    const r = rule as Partial<NatsStartRule> | null;
    if (typeof r !== 'object' || r === null || typeof r.subject !== 'string' || !isSubjectPattern(r.subject) || typeof r.flowFor !== 'function') {
      throw new FlowError('invalid_input', `nats.startOrDeliver[${i}] must be { subject: a subject pattern, flowFor: (event) => ({ owner, idempotencyKey, flow, wait? }) }`);
    }
    if (!declared.some((pattern) => subjectMatches(pattern, r.subject!))) {
      throw new FlowError('invalid_input', `nats.startOrDeliver[${i}]: subject "${r.subject}" is not within nats.subjects (${declared.join(', ') || 'none declared'}): declare it so the stream keeps its events`);
    }
    return { subject: r.subject, flowFor: r.flowFor };
  });
}

/** The first rule whose pattern matches `subject`. */
export function startRuleFor(rules: readonly NatsStartRule[], subject: string): NatsStartRule | undefined {
  return rules.find((rule) => subjectMatches(rule.subject, subject));
}

import { describe, expect, it } from 'vitest';
import { topicAllowed, topicMatches, topicPatternProblem } from '../src/tool/index.js';
import { concreteTopicProblem } from '../src/tool/topic-pattern.js';

describe('NATS-style topic patterns', () => {
  it.each([
    ['payments.>', 'payments.invoice.paid', true],
    ['payments.>', 'payments.invoice', true],
    ['payments.>', 'payments', false],
    ['payments.>', 'paymentsx.invoice', false],
    ['orders.*.paid', 'orders.42.paid', true],
    ['orders.*.paid', 'orders.42.x.paid', false],
    ['orders.*.paid', 'orders.paid', false],
    ['orders.*', 'orders.42', true],
    ['orders.*', 'orders.42.paid', false],
    ['*', 'orders', true],
    ['*', 'orders.42', false],
    ['>', 'anything.at.all', true],
    ['a.b', 'a.b', true],
    ['a.b', 'a.b.c', false],
    ['a.b.c', 'a.b', false],
    ['*.*.paid', 'orders.42.paid', true],
  ])('%s matches %s: %s', (pattern, topic, expected) => {
    expect(topicMatches(pattern, topic)).toBe(expected);
  });

  it('allows a topic matching any pattern of the list', () => {
    expect(topicAllowed(['payments.>', 'orders.*.paid'], 'orders.7.paid')).toBe(true);
    expect(topicAllowed(['payments.>', 'orders.*.paid'], 'orders.7.shipped')).toBe(false);
    expect(topicAllowed([], 'payments.x')).toBe(false);
  });

  it('rejects malformed patterns', () => {
    expect(topicPatternProblem('payments.>')).toBeUndefined();
    expect(topicPatternProblem('orders.*.paid')).toBeUndefined();
    expect(topicPatternProblem('')).toMatch(/non-empty/);
    expect(topicPatternProblem('a..b')).toMatch(/empty token/);
    expect(topicPatternProblem('a.>.b')).toMatch(/">" before its last token/);
    expect(topicPatternProblem('a.b*')).toMatch(/mixes a wildcard/);
    expect(topicPatternProblem('a b')).toMatch(/whitespace/);
  });

  it('rejects wildcards and empty tokens in a topic to wait on', () => {
    expect(concreteTopicProblem('payments.invoice.paid')).toBeUndefined();
    expect(concreteTopicProblem('payments.*')).toMatch(/wildcard/);
    expect(concreteTopicProblem('payments.')).toMatch(/empty token/);
    expect(concreteTopicProblem('pay ments')).toMatch(/whitespace/);
  });
});

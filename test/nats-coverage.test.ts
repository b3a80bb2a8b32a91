import { describe, expect, it } from 'vitest';
import type { Msg } from '@nats-io/transport-node';
import type { FlowStatus, WaitCondition } from '../src/index.js';
import { resolveBridgeOptions } from '../src/runtime/nats/bridge-options.js';
import { TopicCoverage } from '../src/runtime/nats/coverage.js';
import { coverRefusal, needsOwnSubscription, waitedTopics } from '../src/runtime/nats/coverage-rule.js';
import { usePrivateNats } from './support/private-nats.js';
import { until } from './support/until.js';

/** What the bridge covers for `nats.subjects: ['payments.>', 'orders.*.paid']` and the default resume subject. */
const plan = resolveBridgeOptions({ servers: 'nats://127.0.0.1:4222', subjects: ['payments.>', 'orders.*.paid', 'payments.eu.>'] });

const flow = (status: FlowStatus, wait: WaitCondition | null) => ({ flow: { status, wait } });

describe('the coverage rule: which wait topics need a subscription of their own', () => {
  it('a topic under a declared pattern needs none: the stream captures it', () => {
    expect(needsOwnSubscription(plan, 'payments.eu.inv-1')).toBe(false);
    expect(needsOwnSubscription(plan, 'orders.42.paid')).toBe(false);
  });

  it('any other application subject gets one', () => {
    expect(needsOwnSubscription(plan, 'orders.42.shipped')).toBe(true);
    expect(needsOwnSubscription(plan, 'payments')).toBe(true);
    expect(needsOwnSubscription(plan, 'invoice.paid')).toBe(true);
  });

  it('a topic the bus may not carry to a wait never gets one, and says why', () => {
    for (const topic of ['taskflow.resume', 'taskflow.flow.f1.waiting', '$JS.API.INFO', '_INBOX.abc', 'orders.*.paid', 'orders..paid', 'has space']) {
      expect(needsOwnSubscription(plan, topic)).toBe(false);
      expect(coverRefusal(plan, topic)).toEqual(expect.any(String));
    }
    expect(coverRefusal({ resumeSubject: 'acme.resume', fixedSubjects: ['acme.resume'] }, 'acme.resume')).toMatch(/resume subject/);
  });

  it('the declared patterns are kept minimal: a pattern another one covers is dropped', () => {
    expect(plan.declared).toEqual(['payments.>', 'orders.*.paid']);
    expect(plan.fixedSubjects).toEqual(['taskflow.resume', 'payments.>', 'orders.*.paid']);
  });

  it('a committed write names the topics its flow now waits on: an event wait its topic, an any-of wait each of its topics once', () => {
    const at = new Date(0);
    expect(waitedTopics(flow('waiting', { kind: 'external_event', topic: 'orders.1.shipped', correlationId: 'o1' }))).toEqual(['orders.1.shipped']);
    expect(
      waitedTopics(
        flow('waiting', {
          kind: 'any',
          of: [
            { kind: 'external_event', topic: 'a.b', correlationId: '1' },
            { kind: 'timer', at },
            { kind: 'external_event', topic: 'a.b', correlationId: '2' },
            { kind: 'external_event', topic: 'c.d', correlationId: '1' },
          ],
        }),
      ),
    ).toEqual(['a.b', 'c.d']);
  });

  it('a write that leaves its flow on a timer, a signal, or no longer waiting names none', () => {
    expect(waitedTopics(flow('waiting', { kind: 'timer', at: new Date(0) }))).toEqual([]);
    expect(waitedTopics(flow('waiting', { kind: 'manual' }))).toEqual([]);
    expect(waitedTopics(flow('running', null))).toEqual([]);
    expect(waitedTopics(flow('finished', { kind: 'external_event', topic: 'orders.1.shipped', correlationId: 'o1' }))).toEqual([]);
  });
});

describe('what a running coverage subscribes', () => {
  const bus = usePrivateNats();

  function coverage(connected: () => boolean, received: Msg[] = []): TopicCoverage {
    return new TopicCoverage({
      plan,
      declared: plan.declared,
      queue: 'taskflow',
      coverTimeout: 2_000,
      isConnected: connected,
      onMessage: (msg) => void received.push(msg),
      onRefused: () => undefined,
    });
  }

  it('subscribes exactly the wait topics that need their own subscription, from the database at attach and from commits after', async () => {
    const received: Msg[] = [];
    const covered = coverage(() => true, received);
    covered.attach(bus.nc, false, ['orders.1.shipped', 'payments.eu.1', 'taskflow.resume']);
    covered.keep([flow('waiting', { kind: 'external_event', topic: 'orders.2.shipped', correlationId: 'o2' }), flow('waiting', { kind: 'external_event', topic: 'orders.3.paid', correlationId: 'o3' })]);
    expect(covered.subjects()).toEqual(['taskflow.resume', 'payments.>', 'orders.*.paid', 'orders.1.shipped', 'orders.2.shipped']);
    await bus.nc.flush();
    bus.nc.publish('orders.2.shipped', 'x');
    await until(() => received.length === 1);
    expect(received[0]!.subject).toBe('orders.2.shipped');
    covered.detach();
  });

  it('cover() confirms a new topic with the server and leaves the stream-captured ones alone', async () => {
    const covered = coverage(() => true);
    covered.attach(bus.nc, false, []);
    expect(covered.isCovered('orders.9.shipped')).toBe(false);
    expect(covered.isCovered('payments.eu.9')).toBe(true);
    expect(await covered.cover(['orders.9.shipped', 'payments.eu.9'])).toEqual(new Map());
    expect(covered.isCovered('orders.9.shipped')).toBe(true);
    expect(covered.subjects()).toEqual(['taskflow.resume', 'payments.>', 'orders.*.paid', 'orders.9.shipped']);
    covered.detach();
  });

  it('while not connected every topic counts as covered: it is subscribed on connection', () => {
    const covered = coverage(() => false);
    expect(covered.isCovered('orders.5.shipped')).toBe(true);
  });

  it('a sweep subscribes topics other processes wait on and removes, a period later, those no flow waits on', async () => {
    const covered = coverage(() => true);
    covered.attach(bus.nc, false, ['orders.6.shipped']);
    expect(covered.sweep(new Set(['orders.7.shipped', 'payments.eu.7']))).toEqual([]);
    expect(covered.subjects()).toEqual(['taskflow.resume', 'payments.>', 'orders.*.paid', 'orders.6.shipped', 'orders.7.shipped']);
    expect(covered.sweep(new Set(['orders.7.shipped']))).toEqual(['orders.6.shipped']);
    expect(covered.subjects()).toEqual(['taskflow.resume', 'payments.>', 'orders.*.paid', 'orders.7.shipped']);
    covered.detach();
  });

  it('on core NATS the fixed subjects are pinned subscriptions: their events arrive, and no sweep removes them', async () => {
    const received: Msg[] = [];
    const covered = coverage(() => true, received);
    covered.attach(bus.nc, true, []);
    covered.sweep(new Set());
    covered.sweep(new Set());
    await bus.nc.flush();
    bus.nc.publish('orders.8.paid', 'x');
    await until(() => received.length === 1);
    expect(covered.subjects()).toEqual(['taskflow.resume', 'payments.>', 'orders.*.paid']);
    covered.detach();
  });
});

import { describe, expect, it } from 'vitest';
import { lifecycleMessages, parseInbound, type Flow } from '../src/index.js';
import { declaredPatternProblem, isLiteralSubject, isSubjectPattern, reservedSubjectProblem, subjectMatches } from '../src/runtime/nats/subject.js';

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

function message(subject: string, body: unknown, hdrs: Record<string, string> = {}) {
  return { subject, data: body === undefined ? new Uint8Array() : encode(body), header: (name: string) => hdrs[name] };
}

describe('parseInbound', () => {
  it('takes the correlation id from the header and the payload field as the payload', () => {
    expect(parseInbound(message('invoices.paid', { payload: { amount: 1 } }, { 'Taskflow-Correlation-Id': 'INV-1' }))).toEqual({
      ok: true,
      delivery: { topic: 'invoices.paid', correlationId: 'INV-1', payload: { amount: 1 } },
    });
  });

  it('falls back to the body correlation_id and hands over the whole body when it has no payload field', () => {
    const parsed = parseInbound(message('invoices.paid', { correlation_id: 'INV-2', amount: 3 }));
    expect(parsed).toEqual({ ok: true, delivery: { topic: 'invoices.paid', correlationId: 'INV-2', payload: { correlation_id: 'INV-2', amount: 3 } } });
  });

  it('prefers the header over the body, and uses Nats-Msg-Id as the event id', () => {
    const parsed = parseInbound(message('t.x', { correlation_id: 'body', payload: null }, { 'Taskflow-Correlation-Id': 'head', 'Nats-Msg-Id': 'm-1' }));
    expect(parsed).toEqual({ ok: true, delivery: { topic: 't.x', correlationId: 'head', payload: null, eventId: 'm-1' } });
  });

  it('accepts a text body or none when the header names the correlation id', () => {
    expect(parseInbound(message('t.x', 'paid in full', { 'Taskflow-Correlation-Id': 'c' }))).toMatchObject({ ok: true, delivery: { payload: 'paid in full' } });
    const empty = parseInbound(message('t.x', undefined, { 'Taskflow-Correlation-Id': 'c' }));
    expect(empty).toEqual({ ok: true, delivery: { topic: 't.x', correlationId: 'c' } });
  });

  it('refuses a message with no correlation id, or a body that is not UTF-8', () => {
    expect(parseInbound(message('t.x', { amount: 1 })).ok).toBe(false);
    expect(parseInbound(message('t.x', { correlation_id: '' })).ok).toBe(false);
    expect(parseInbound(message('t.x', [1, 2])).ok).toBe(false);
    expect(parseInbound({ subject: 't.x', data: new Uint8Array([0xff, 0xfe]), header: () => 'c' }).ok).toBe(false);
  });

  it('reads the reference subject taskflow.resume { flow_id?, topic, correlation_id, payload? }', () => {
    const parsed = parseInbound(message('taskflow.resume', { flow_id: 'f-1', topic: 'orders.shipped', correlation_id: 'O-1', payload: { ok: 1 } }));
    expect(parsed).toEqual({ ok: true, flowId: 'f-1', delivery: { topic: 'orders.shipped', correlationId: 'O-1', payload: { ok: 1 } } });
    expect(parseInbound(message('taskflow.resume', { topic: 'orders.shipped', correlation_id: 7 }))).toMatchObject({ ok: true, delivery: { correlationId: '7' } });
    expect(parseInbound(message('taskflow.resume', { correlation_id: 'O-1' })).ok).toBe(false);
    expect(parseInbound(message('taskflow.resume', { topic: 'a', correlation_id: 'b', flow_id: 5 })).ok).toBe(false);
    expect(parseInbound(message('taskflow.resume', 'not json')).ok).toBe(false);
  });
});

describe('subjects', () => {
  it('matches NATS wildcards', () => {
    expect(subjectMatches('payments.>', 'payments.received')).toBe(true);
    expect(subjectMatches('payments.>', 'payments.a.b')).toBe(true);
    expect(subjectMatches('payments.>', 'payments')).toBe(false);
    expect(subjectMatches('payments.*', 'payments.a')).toBe(true);
    expect(subjectMatches('payments.*', 'payments.a.b')).toBe(false);
    expect(subjectMatches('a.b', 'a.b')).toBe(true);
    expect(subjectMatches('a.b', 'a.c')).toBe(false);
    expect(subjectMatches('a.>', 'a.*')).toBe(true);
    expect(subjectMatches('a.*', 'a.>')).toBe(false);
  });

  it('tells literal subjects and patterns apart', () => {
    expect(isLiteralSubject('invoices.paid')).toBe(true);
    for (const bad of ['', 'a..b', 'a b', 'a.*', 'a.>', '.a']) expect(isLiteralSubject(bad)).toBe(false);
    for (const good of ['a', 'a.*.c', 'a.>', '>']) expect(isSubjectPattern(good)).toBe(true);
    for (const bad of ['', 'a.>.c', 'a*.b', 'a b']) expect(isSubjectPattern(bad)).toBe(false);
  });
});

describe('lifecycleMessages', () => {
  it('gives one message per lifecycle audit event of a write, with its own revision', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    const flow: Flow = {
      id: 'f-1',
      controllerId: 'kate/triage',
      goal: 'g',
      ownerSessionKey: 'agent:k:session:1',
      requesterOrigin: null,
      currentStep: 'pay',
      state: {},
      wait: null,
      status: 'running',
      cancelRequested: false,
      revision: 4,
      createdAt: at,
      updatedAt: at,
    };
    const messages = lifecycleMessages({
      flow,
      fromRevision: 2,
      events: [
        { kind: 'waiting', payload: { wait: { kind: 'external_event' } } },
        { kind: 'resumed', payload: { reason: 'event' } },
      ],
    });
    expect(messages.map((m) => [m.subject, m.msgId, m.event.status, m.event.revision])).toEqual([
      ['taskflow.flow.f-1.waiting', 'f-1:3', 'waiting', 3],
      ['taskflow.flow.f-1.resumed', 'f-1:4', 'running', 4],
    ]);
    expect(lifecycleMessages({ flow, fromRevision: 4, events: [{ kind: 'state_updated', payload: {} }] })).toEqual([]);
  });
});

describe('subjects that belong to the bus or the runtime', () => {
  it('a wait may not name $…, _INBOX…, taskflow.… or the resume subject; any application subject is fine', () => {
    for (const subject of ['$JS.API.INFO', '$SYS.x', '_INBOX.abc.1', '_INBOX', 'taskflow.resume', 'taskflow.flow.f.waiting']) {
      expect(reservedSubjectProblem(subject)).toMatch(/choose an application subject/);
    }
    expect(reservedSubjectProblem('billing.resume', 'billing.resume')).toMatch(/resume subject/);
    for (const subject of ['orders.42.paid', 'taskflows.x', 'inbox.x', 'a']) expect(reservedSubjectProblem(subject)).toBeUndefined();
  });

  it('a declared pattern must start with a literal token outside the reserved namespaces', () => {
    for (const pattern of ['>', '*.paid', '*.*', '_INBOX.>', '$JS.>', 'taskflow.>', 'a..b', 'a.b>']) expect(declaredPatternProblem(pattern)).toBeDefined();
    for (const pattern of ['payments.>', 'orders.*.paid', 'jobs.done']) expect(declaredPatternProblem(pattern)).toBeUndefined();
  });
});

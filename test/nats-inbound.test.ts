import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { FlowError, type Logger } from '../src/index.js';
import type { DeliveryOutcome, DeliveryResult, EventDelivery } from '../src/runtime/engine/engine.js';
import { NatsInbound, redeliveryDelay, type CoreMessage, type InboundRuntime, type StreamMessage } from '../src/runtime/nats/inbound.js';
import type { NatsStartRule } from '../src/runtime/nats/options.js';
import type { StartOrDeliverInput, StartOrDeliverResult } from '../src/runtime/start-or-deliver-input.js';
import { until } from './support/until.js';

/*
 * The inbound path against a stub runtime: the seam the bridge's inbound side is
 * written against (`InboundRuntime`). The stub records what it was handed and
 * answers as the engine would; the messages are built with the real NATS headers.
 */

const delivered = (over: Partial<DeliveryResult> = {}): DeliveryOutcome => ({ ok: true, result: { resumed: ['flow-1'], kept: false, duplicate: false, ...over } });

/** A runtime that records each batch and answers with `answer` (default: every event resumed a flow). */
class StubRuntime implements InboundRuntime {
  readonly batches: EventDelivery[][] = [];
  readonly starts: StartOrDeliverInput[] = [];
  answer: (events: readonly EventDelivery[]) => Promise<DeliveryOutcome[]> = async (events) => events.map(() => delivered());
  /** While set, each batch waits for it. */
  gate: Promise<void> | undefined;

  async deliverBatch(events: readonly EventDelivery[]): Promise<DeliveryOutcome[]> {
    this.batches.push([...events]);
    await this.gate;
    return this.answer(events);
  }
}

/** A stub runtime that also starts flows (`nats.startOrDeliver`). */
class StartingRuntime extends StubRuntime {
  async startOrDeliver(input: StartOrDeliverInput): Promise<StartOrDeliverResult> {
    this.starts.push(input);
    return { flow: {} as StartOrDeliverResult['flow'], started: true, delivery: { resumed: ['new-flow'], kept: false, duplicate: false } };
  }
}

function recordingLogger(): Logger & { lines: Array<{ level: string; message: string }> } {
  const lines: Array<{ level: string; message: string }> = [];
  const at = (level: string) => (_fields: object, message?: string) => void lines.push({ level, message: message ?? '' });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function core(subject: string, body: unknown, header: Record<string, string> = {}): CoreMessage {
  const h = headers();
  for (const [name, value] of Object.entries(header)) h.set(name, value);
  return { subject, data: new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body)), headers: h };
}

/** A JetStream message that remembers how it was settled. */
function pulled(seq: number, subject: string, body: unknown, header: Record<string, string> = {}, deliveryCount = 1) {
  const settled: string[] = [];
  const message: StreamMessage & { settled: string[] } = {
    ...core(subject, body, header),
    seq,
    info: { deliveryCount },
    settled,
    ack: () => void settled.push('ack'),
    term: () => void settled.push('term'),
    nak: (millis) => void settled.push(`nak ${millis}`),
  };
  return message;
}

function inbound(runtime: InboundRuntime, options: { logger?: Logger; startRules?: NatsStartRule[] } = {}): NatsInbound {
  return new NatsInbound({ runtime, resumeSubject: 'taskflow.resume', startRules: options.startRules ?? [], logger: options.logger ?? recordingLogger() });
}

describe('the inbound path, JetStream batches', () => {
  it('hands a pulled batch to the runtime in one transaction, in order, and acks each delivered message', async () => {
    const runtime = new StubRuntime();
    const a = pulled(1, 'payments.paid', { correlation_id: 'inv-1', payload: { amount: 5 } });
    const b = pulled(2, 'payments.paid', 'late', { 'Taskflow-Correlation-Id': 'inv-2' });
    await inbound(runtime).stream([a, b], 'nats:TASKFLOW:123');
    expect(runtime.batches).toEqual([
      [
        { topic: 'payments.paid', correlationId: 'inv-1', payload: { amount: 5 }, eventId: 'nats:TASKFLOW:123:1' },
        { topic: 'payments.paid', correlationId: 'inv-2', payload: 'late', eventId: 'nats:TASKFLOW:123:2' },
      ],
    ]);
    expect([a.settled, b.settled]).toEqual([['ack'], ['ack']]);
  });

  it('takes Nats-Msg-Id as the event id when the message has one, the stream sequence otherwise', async () => {
    const runtime = new StubRuntime();
    await inbound(runtime).stream([pulled(7, 'payments.paid', { correlation_id: 'inv-1' }, { 'Nats-Msg-Id': 'pay-77' })], 'nats:TASKFLOW:1');
    expect(runtime.batches[0]![0]!.eventId).toBe('pay-77');
  });

  it('terminates a malformed message without handing it over; the rest of the batch lands', async () => {
    const runtime = new StubRuntime();
    const logger = recordingLogger();
    const bad = pulled(1, 'payments.paid', 'no correlation id');
    const good = pulled(2, 'payments.paid', { correlation_id: 'inv-2' });
    await inbound(runtime, { logger }).stream([bad, good], 'nats:S:1');
    expect(runtime.batches).toEqual([[expect.objectContaining({ correlationId: 'inv-2' })]]);
    expect([bad.settled, good.settled]).toEqual([['term'], ['ack']]);
    expect(logger.lines.some((l) => l.level === 'warn' && /malformed NATS message dropped/.test(l.message))).toBe(true);
  });

  it('terminates an event the runtime refuses as invalid input, and naks one that met a storage failure with its redelivery delay', async () => {
    const runtime = new StubRuntime();
    runtime.answer = async () => [delivered(), { ok: false, error: new FlowError('invalid_input', 'payload too large') }, { ok: false, error: new Error('disk I/O error') }];
    const msgs = [pulled(1, 'a.b', { correlation_id: '1' }), pulled(2, 'a.b', { correlation_id: '2' }), pulled(3, 'a.b', { correlation_id: '3' }, {}, 3)];
    await inbound(runtime).stream(msgs, 'nats:S:1');
    expect(msgs.map((m) => m.settled)).toEqual([['ack'], ['term'], ['nak 4000']]);
  });

  it('when the whole transaction fails, naks every message, logs one error while it goes on failing, and says when it works again', async () => {
    const runtime = new StubRuntime();
    const logger = recordingLogger();
    const path = inbound(runtime, { logger });
    runtime.answer = async () => {
      throw new Error('database is locked');
    };
    const first = [pulled(1, 'a.b', { correlation_id: '1' }), pulled(2, 'a.b', { correlation_id: '2' }, {}, 2)];
    await path.stream(first, 'nats:S:1');
    await path.stream([pulled(3, 'a.b', { correlation_id: '3' })], 'nats:S:1');
    expect(first.map((m) => m.settled)).toEqual([['nak 1000'], ['nak 2000']]);
    runtime.answer = async (events) => events.map(() => delivered());
    const back = pulled(4, 'a.b', { correlation_id: '4' });
    await path.stream([back], 'nats:S:1');
    expect(back.settled).toEqual(['ack']);
    expect(logger.lines.filter((l) => l.level === 'error' || l.level === 'info').map((l) => l.message)).toEqual([
      'taskflow: delivering NATS events fails; they are redelivered with backoff',
      'taskflow: delivering NATS events works again',
    ]);
  });

  it('acks lifecycle events (taskflow.flow.…) without handing them to the runtime', async () => {
    const runtime = new StubRuntime();
    const own = pulled(1, 'taskflow.flow.f1.waiting', { flow_id: 'f1' });
    await inbound(runtime).stream([own], 'nats:S:1');
    expect(runtime.batches).toEqual([]);
    expect(own.settled).toEqual(['ack']);
  });

  it('a message on the resume subject resumes only the flow it names, and a warning says when that flow did not wait on its key', async () => {
    const runtime = new StubRuntime();
    runtime.answer = async () => [delivered({ resumed: [] })];
    const logger = recordingLogger();
    await inbound(runtime, { logger }).stream([pulled(1, 'taskflow.resume', { flow_id: 'f9', topic: 'payments.paid', correlation_id: 'inv-1' })], 'nats:S:1');
    expect(runtime.batches[0]![0]).toMatchObject({ topic: 'payments.paid', correlationId: 'inv-1', flowId: 'f9' });
    expect(logger.lines.some((l) => l.level === 'warn' && /named a flow that does not wait on its key/.test(l.message))).toBe(true);
  });
});

describe('the inbound path, start or deliver', () => {
  const rule: NatsStartRule = {
    subject: 'invoices.*.created',
    flowFor: (event) => ({ owner: 'billing', idempotencyKey: event.correlationId, flow: { controllerId: 'invoice', goal: 'collect the invoice' } }),
  };

  it('an event on a start-or-deliver subject goes to startOrDeliver with the flow its rule names, after the batch of the others', async () => {
    const runtime = new StartingRuntime();
    const start = pulled(1, 'invoices.eu.created', { correlation_id: 'inv-1' });
    const other = pulled(2, 'payments.paid', { correlation_id: 'inv-1' });
    await inbound(runtime, { startRules: [rule] }).stream([start, other], 'nats:S:1');
    expect(runtime.batches).toEqual([[expect.objectContaining({ topic: 'payments.paid' })]]);
    expect(runtime.starts).toEqual([
      {
        owner: 'billing',
        idempotencyKey: 'inv-1',
        flow: { controllerId: 'invoice', goal: 'collect the invoice' },
        event: { topic: 'invoices.eu.created', correlationId: 'inv-1', payload: { correlation_id: 'inv-1' }, eventId: 'nats:S:1:1' },
      },
    ]);
    expect([start.settled, other.settled]).toEqual([['ack'], ['ack']]);
  });

  it('a flowFor that throws terminates its event, which is never redelivered', async () => {
    const runtime = new StartingRuntime();
    const throwing: NatsStartRule = {
      subject: 'invoices.>',
      flowFor: () => {
        throw new Error('unknown tenant');
      },
    };
    const msg = pulled(1, 'invoices.eu.created', { correlation_id: 'inv-1' });
    await inbound(runtime, { startRules: [throwing] }).stream([msg], 'nats:S:1');
    expect(runtime.starts).toEqual([]);
    expect(msg.settled).toEqual(['term']);
  });

  it('a runtime without startOrDeliver gets those events in the batch, as any other', async () => {
    const runtime = new StubRuntime();
    await inbound(runtime, { startRules: [rule] }).stream([pulled(1, 'invoices.eu.created', { correlation_id: 'inv-1' })], 'nats:S:1');
    expect(runtime.batches).toEqual([[expect.objectContaining({ topic: 'invoices.eu.created' })]]);
  });
});

describe('the inbound path, plain subscriptions', () => {
  it('messages that arrive while a batch commits go together into the next transaction, in arrival order', async () => {
    const runtime = new StubRuntime();
    let open!: () => void;
    runtime.gate = new Promise<void>((resolve) => (open = resolve));
    const path = inbound(runtime);
    path.core(core('orders.1.paid', { correlation_id: '1' }));
    await until(() => runtime.batches.length === 1);
    for (const id of ['2', '3', '4']) path.core(core('orders.1.paid', { correlation_id: id }));
    open();
    await path.settled();
    expect(runtime.batches.map((batch) => batch.map((event) => event.correlationId))).toEqual([['1'], ['2', '3', '4']]);
  });

  it('an event whose delivery failed is reported lost (a plain subscription is at-most-once)', async () => {
    const runtime = new StubRuntime();
    runtime.answer = async () => [{ ok: false, error: new Error('disk full') }];
    const logger = recordingLogger();
    const path = inbound(runtime, { logger });
    path.core(core('orders.1.paid', { correlation_id: '1' }));
    await until(() => logger.lines.some((l) => /an event was lost/.test(l.message)));
    await path.settled();
    expect(runtime.batches).toHaveLength(1);
  });
});

describe('redelivery delays', () => {
  /** The bridge's formula before it took the shared backoff helper. */
  const before = (deliveryCount: number) => Math.min(60_000, 1_000 * 2 ** Math.max(0, Math.min(deliveryCount - 1, 16)));

  it('grow from 1 s, doubling, to at most a minute, as before the shared backoff helper', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(redeliveryDelay)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    for (let count = 0; count <= 100; count++) expect(redeliveryDelay(count)).toBe(before(count));
  });
});

import { backoffDelay, type Backoff } from '../backoff.js';
import type { DeliveryOutcome, EventDelivery } from '../engine/engine.js';
import { FlowError } from '../errors.js';
import { errorText, type Logger } from '../logger.js';
import type { StartOrDeliverInput, StartOrDeliverResult } from '../start-or-deliver-input.js';
import { LIFECYCLE_PREFIX, parseInbound, type InboundMessage } from './message.js';
import type { NatsStartRule } from './options.js';
import { startRuleFor } from './start-rules.js';

/*
 * The inbound path: NATS messages → checked (`parseInbound`) → the runtime, in
 * one `deliverBatch` transaction (a start-or-deliver subject: `startOrDeliver`,
 * one commit each) → each message's outcome (JetStream: ack, term, or nak with
 * a growing delay). Two states of its own:
 * - core queue: idle | draining (one batch commits; what arrives meanwhile is the next batch);
 * - deliveries: working | failing (one error when failing starts, one info when it works again).
 */

/** What the inbound path needs from the runtime. */
export interface InboundRuntime {
  /** Delivers events in one transaction (see `WaitEngine.deliverBatch`); rejects when the store failed and nothing was written. */
  deliverBatch(events: readonly EventDelivery[]): Promise<DeliveryOutcome[]>;
  /** `tf.startOrDeliver`, for the subjects of `nats.startOrDeliver` (one commit each). */
  startOrDeliver?(input: StartOrDeliverInput): Promise<StartOrDeliverResult>;
}

/** Message headers as the inbound path reads them (`MsgHdrs` is one). */
export interface HeaderReader {
  has(name: string): boolean;
  get(name: string): string;
}

/** A core NATS message as the inbound path reads it (`Msg` is one). */
export interface CoreMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: HeaderReader | undefined;
}

/** A JetStream message as the inbound path reads and settles it (`JsMsg` is one). */
export interface StreamMessage extends CoreMessage {
  readonly seq: number;
  readonly info: { readonly deliveryCount: number };
  ack(): void;
  term(): void;
  nak(millis?: number): void;
}

/** Options of {@link NatsInbound}. */
export interface NatsInboundOptions {
  runtime: InboundRuntime;
  resumeSubject: string;
  startRules: readonly NatsStartRule[];
  logger: Logger;
}

type Outcome = 'done' | 'refused' | 'retry';

/** Core messages handled in one transaction at most. */
const CORE_BATCH = 256;
/** A failed delivery is redelivered after 1 s, 2 s, 4 s … up to a minute. */
const REDELIVERY: Backoff = { initialMs: 1_000, maxMs: 60_000 };

/** How long JetStream waits before it redelivers an event that met a storage failure: 1 s, doubling, at most 60 s. */
export function redeliveryDelay(deliveryCount: number): number {
  return backoffDelay(REDELIVERY, deliveryCount - 1);
}

/** Hands NATS messages to the runtime and settles each by its outcome. Knows no connection. */
export class NatsInbound {
  private readonly options: NatsInboundOptions;
  private readonly runtime: InboundRuntime;
  private readonly logger: Logger;
  private queue: Promise<void> = Promise.resolve();
  /** Core messages not yet handed to a commit. */
  private coreHeld: CoreMessage[] = [];
  private coreDraining = false;
  private deliveryFailing = false;

  constructor(options: NatsInboundOptions) {
    this.options = options;
    this.runtime = options.runtime;
    this.logger = options.logger;
  }

  /**
   * A message from a plain subscription (at-most-once). Core messages are handled
   * in arrival order, in batches: whatever arrived while the previous batch
   * committed goes into the next transaction.
   */
  core(msg: CoreMessage): void {
    this.coreHeld.push(msg);
    if (!this.coreDraining) this.drainCore();
  }

  /** Resolves once the core messages in hand are handled (for a bounded close). */
  settled(): Promise<void> {
    return this.queue;
  }

  /**
   * A pulled JetStream batch: committed in one transaction, then each message
   * acked, terminated or nak'd for redelivery. A message without `Nats-Msg-Id`
   * takes `<fallbackPrefix>:<sequence>` as its event id. Never rejects.
   */
  async stream(msgs: readonly StreamMessage[], fallbackPrefix: string): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.handleBatch(msgs, (i) => `${fallbackPrefix}:${msgs[i]!.seq}`);
    } catch (error) {
      this.logger.error({ err: error }, 'taskflow: handling NATS messages failed; they are redelivered');
      outcomes = msgs.map(() => 'retry');
    }
    msgs.forEach((msg, i) => {
      const outcome = outcomes[i];
      if (outcome === 'done') msg.ack();
      else if (outcome === 'refused') msg.term(); // no reason: servers before 2.10 ignore "+TERM <reason>"
      else msg.nak(redeliveryDelay(msg.info.deliveryCount));
    });
  }

  private drainCore(): void {
    this.coreDraining = true;
    this.queue = this.queue
      .then(async () => {
        while (this.coreHeld.length > 0) {
          const msgs = this.coreHeld.splice(0, CORE_BATCH);
          const outcomes = await this.handleBatch(msgs, undefined);
          outcomes.forEach((outcome, i) => {
            if (outcome === 'retry') this.logger.error({ subject: msgs[i]!.subject }, 'taskflow: an event was lost (a plain subscription is at-most-once)');
          });
        }
      })
      .catch((failure: unknown) => this.logger.error({ err: failure }, 'taskflow: handling NATS messages failed'))
      .finally(() => {
        this.coreDraining = false;
        if (this.coreHeld.length > 0) this.drainCore();
      });
  }

  /**
   * Hands messages to the runtime, all in one transaction. Each is `done` once the
   * transaction committed (or it needs nothing); `refused` when it can never be
   * delivered (malformed, or refused by the engine as invalid input: too large, a
   * bad key); `retry` when the engine failed (storage) and a redelivery may succeed.
   */
  private async handleBatch(messages: readonly CoreMessage[], fallbackId: ((index: number) => string) | undefined): Promise<Outcome[]> {
    const { resumeSubject, startRules } = this.options;
    const outcomes: Outcome[] = messages.map(() => 'done');
    const deliveries: EventDelivery[] = [];
    const of: { index: number; flowId: string | undefined; rule: NatsStartRule | undefined }[] = [];
    messages.forEach(({ subject, data, headers: hdrs }, index) => {
      if (subject.startsWith(`${LIFECYCLE_PREFIX}.`)) return;
      const message: InboundMessage = { subject, data, header: (name) => headerValue(hdrs, name) };
      const parsed = parseInbound(message, resumeSubject);
      if (!parsed.ok) {
        this.logger.warn({ subject, reason: parsed.reason }, 'taskflow: malformed NATS message dropped');
        outcomes[index] = 'refused';
        return;
      }
      const delivery = parsed.delivery;
      if (delivery.eventId === undefined && fallbackId !== undefined) delivery.eventId = fallbackId(index);
      if (parsed.flowId !== undefined) delivery.flowId = parsed.flowId;
      deliveries.push(delivery);
      const rule = parsed.flowId === undefined && subject !== resumeSubject && this.runtime.startOrDeliver ? startRuleFor(startRules, subject) : undefined;
      of.push({ index, flowId: parsed.flowId, rule });
    });
    if (deliveries.length === 0) return outcomes;
    let results: DeliveryOutcome[];
    try {
      // Events on a start-or-deliver subject may create their flow: one commit each, after the batch, in arrival order.
      const starts = of.flatMap(({ rule }, i) => (rule ? [i] : []));
      const batched = of.flatMap(({ rule }, i) => (rule ? [] : [i]));
      const delivered = batched.length > 0 ? await this.runtime.deliverBatch(batched.map((i) => deliveries[i]!)) : [];
      results = new Array<DeliveryOutcome>(deliveries.length);
      batched.forEach((i, k) => (results[i] = delivered[k]!));
      for (const i of starts) results[i] = await this.startOrDeliverOne(of[i]!.rule!, deliveries[i]!);
    } catch (error) {
      for (const { index } of of) outcomes[index] = 'retry';
      this.deliveryFailed(messages[of[0]!.index]!.subject, error);
      return outcomes;
    }
    let failed = false;
    results.forEach((outcome, i) => {
      const { index, flowId } = of[i]!;
      const { subject } = messages[index]!;
      const delivery = deliveries[i]!;
      if (outcome.ok) {
        const result = outcome.result;
        if (flowId !== undefined && !result.duplicate && result.resumed.length === 0) {
          this.logger.warn(
            { subject, flowId, topic: delivery.topic, correlationId: delivery.correlationId },
            'taskflow: a resume message named a flow that does not wait on its key; nothing resumed',
          );
        }
        this.logger.debug({ subject, correlationId: delivery.correlationId, ...result }, 'taskflow: NATS event delivered');
        return;
      }
      const error = outcome.error;
      if (FlowError.isInstance(error) && error.code === 'invalid_input') {
        this.logger.warn({ subject, err: error }, 'taskflow: NATS event refused by the engine; terminated');
        outcomes[index] = 'refused';
        return;
      }
      outcomes[index] = 'retry';
      failed = true;
      this.deliveryFailed(subject, error);
    });
    if (!failed && this.deliveryFailing) {
      this.deliveryFailing = false;
      this.logger.info({}, 'taskflow: delivering NATS events works again');
    }
    return outcomes;
  }

  /**
   * One event of a start-or-deliver subject: the host's `flowFor` names the flow
   * to start when none is open. A `flowFor` that throws refuses the event
   * (terminated, never redelivered: it would throw again); a store failure asks
   * for this event alone to be redelivered.
   */
  private async startOrDeliverOne(rule: NatsStartRule, delivery: EventDelivery): Promise<DeliveryOutcome> {
    let input: StartOrDeliverInput;
    try {
      input = { ...rule.flowFor({ ...delivery }), event: delivery };
    } catch (error) {
      return { ok: false, error: new FlowError('invalid_input', `nats.startOrDeliver: flowFor threw for ${delivery.topic}/${delivery.correlationId}: ${errorText(error)}`, { cause: error }) };
    }
    try {
      return { ok: true, result: (await this.runtime.startOrDeliver!(input)).delivery };
    } catch (error) {
      return { ok: false, error };
    }
  }

  /** Logs a failed delivery: an error when deliveries start failing, debug while they go on failing. */
  private deliveryFailed(subject: string, error: unknown): void {
    if (!this.deliveryFailing) {
      this.deliveryFailing = true;
      this.logger.error({ subject, err: error }, 'taskflow: delivering NATS events fails; they are redelivered with backoff');
    } else {
      this.logger.debug({ subject, err: error }, 'taskflow: delivering a NATS event failed again');
    }
  }
}

function headerValue(hdrs: HeaderReader | undefined, name: string): string | undefined {
  if (!hdrs || !hdrs.has(name)) return undefined;
  const value = hdrs.get(name);
  return value.trim() === '' ? undefined : value;
}

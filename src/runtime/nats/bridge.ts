import { jetstreamManager, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { waitTopicsOf } from '../any-of.js';
import { connect, headers, type Msg, type MsgHdrs, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { parseDuration } from '../duration.js';
import type { DeliveryOutcome, EventDelivery } from '../engine/engine.js';
import { FlowError } from '../errors.js';
import { errorText, silentLogger, type Logger } from '../logger.js';
import { JetStreamIntake, type ForeignStream } from './jetstream.js';
import { lifecycleMessages } from './lifecycle.js';
import { LIFECYCLE_PREFIX, MSG_ID_HEADER, parseInbound, RESUME_SUBJECT, type InboundMessage } from './message.js';
import { TopicSubscriptions } from './subscriptions.js';
import { declaredPatternProblem, isLiteralSubject, reservedSubjectProblem, subjectMatches } from './subject.js';
import type { FlowWrite } from '../store/contract.js';
import type { StartOrDeliverInput, StartOrDeliverResult } from '../start-or-deliver.js';
import { checkStartRules, startRuleFor } from './start-rules.js';
import type { NatsBridgeEvents, NatsBridgeMode, NatsBridgeState, NatsBridgeStatus, NatsOptions, NatsStartRule } from './options.js';

export type { NatsBridgeEvents, NatsBridgeMode, NatsBridgeState, NatsBridgeStatus, NatsConnectionOptions, NatsOptions, NatsStartEvent, NatsStartRule, TopicRefusal } from './options.js';

/** What the bridge needs from the runtime: the engine's `deliverBatch` and the store's declared topics. */
export interface NatsBridgeRuntime {
  /** Delivers events in one transaction (see `WaitEngine.deliverBatch`); rejects when the store failed and nothing was written. */
  deliverBatch(events: readonly EventDelivery[]): Promise<DeliveryOutcome[]>;
  /** `tf.startOrDeliver`, for the subjects of `nats.startOrDeliver` (one commit each). */
  startOrDeliver?(input: StartOrDeliverInput): Promise<StartOrDeliverResult>;
  waitingTopics(): Promise<string[]>;
}

/** Options of {@link NatsBridge}. */
export interface NatsBridgeOptions extends NatsOptions {
  runtime: NatsBridgeRuntime;
  logger?: Logger;
  /** How long covering a new topic may hold up its wait before the wait goes on. Default 2000 ms. */
  coverTimeout?: number;
}

const DEFAULT_STREAM = 'TASKFLOW';
const DEFAULT_DURABLE = 'taskflow';
/** The first delay between connection attempts (unless `connection.reconnectTimeWait` says otherwise), and the longest. */
const CONNECT_RETRY_FIRST_MS = 500;
const CONNECT_RETRY_MAX_MS = 10_000;
/** How long `start()` waits for the first connection before the bridge goes on in the background. */
const START_WAIT_MS = 5_000;
/** A failed delivery is redelivered after 1 s, 2 s, 4 s … up to a minute. */
const REDELIVERY_FIRST_MS = 1_000;
const REDELIVERY_MAX_MS = 60_000;
const DRAIN_TIMEOUT_MS = 2_000;
const QUEUE_TIMEOUT_MS = 5_000;

type Outcome = 'done' | 'refused' | 'retry';

/** One message as the bridge reads it, whichever way it came. */
interface Incoming {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  /** The event id when the message has no `Nats-Msg-Id` (JetStream: stream and sequence). */
  fallbackId: string | undefined;
}

/** Core messages handled in one transaction at most. */
const CORE_BATCH = 256;

/**
 * Connects the WaitEngine to NATS. Inbound, the messages on covered subjects are
 * delivered to the engine in batches, each batch one transaction
 * (`engine.deliverBatch`: what arrived while the previous one committed):
 *
 * - the declared `subjects` and the resume subject are captured by a work-queue
 *   stream (JetStream) read by a durable consumer: at-least-once, kept while the
 *   runtime is away, acked only once the engine's transaction committed, its
 *   `Nats-Msg-Id` (else the stream sequence) the event id;
 * - any other topic a wait names gets a plain subscription in the bridge's queue
 *   group, from before the wait is stored until no flow waits on it: at-most-once,
 *   and it never changes the bus (no stream captures it, a service on it keeps
 *   answering).
 *
 * The bridge connects in the background: the engine never waits for the bus.
 * Outbound, it publishes flow lifecycle events when asked. It knows nothing of SQL.
 */
export class NatsBridge implements NatsBridgeStatus {
  private readonly options: NatsBridgeOptions;
  private readonly logger: Logger;
  private readonly runtime: NatsBridgeRuntime;
  private readonly streamName: string;
  private readonly durableName: string;
  private readonly coverTimeout: number;
  private readonly sweepInterval: number;
  /** The reference subject this bridge takes `{ flow_id?, topic, correlation_id, payload? }` on (`nats.resumeSubject`). */
  readonly resumeSubject: string;
  private readonly declared: readonly string[];
  private readonly startRules: readonly NatsStartRule[];
  /** The resume subject and the declared patterns: what the stream captures (or, on core NATS, pinned subscriptions). */
  private readonly fixedSubjects: readonly string[];
  private readonly subs: TopicSubscriptions;
  private readonly listeners: { [K in keyof NatsBridgeEvents]: Set<NatsBridgeEvents[K]> } = { state: new Set(), refused: new Set() };

  private nc: NatsConnection | undefined;
  private intake: JetStreamIntake | undefined;
  private currentMode: NatsBridgeMode | undefined;
  private currentState: NatsBridgeState = 'idle';
  private failure: unknown;
  private transportUp = false;
  private foreign: ForeignStream[] = [];
  private running: Promise<void> | undefined;
  private closing = false;
  private wake: (() => void) | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<string[]> | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** Core messages not yet handed to a commit. */
  private coreHeld: Msg[] = [];
  private coreDraining = false;
  private deliveryFailing = false;
  /** Ends `start()`: with nothing once connected or once the first attempt failed; with a configuration error. */
  private settleStart: ((error?: unknown) => void) | undefined;

  constructor(options: NatsBridgeOptions) {
    this.options = options;
    this.runtime = options.runtime;
    this.logger = options.logger ?? silentLogger;
    this.resumeSubject = options.resumeSubject ?? RESUME_SUBJECT;
    if (typeof this.resumeSubject !== 'string' || !isLiteralSubject(this.resumeSubject)) {
      throw new FlowError('invalid_input', `nats.resumeSubject: ${JSON.stringify(this.resumeSubject)} is not a NATS subject without wildcards`);
    }
    this.streamName = options.stream ?? DEFAULT_STREAM;
    this.durableName = options.durable ?? DEFAULT_DURABLE;
    this.coverTimeout = options.coverTimeout ?? 2_000;
    this.sweepInterval = parseDuration(options.topicSweep ?? '60s', 'nats.topicSweep');
    if (this.sweepInterval <= 0) throw new FlowError('invalid_input', 'nats.topicSweep must be a positive duration');
    const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
    if (servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.trim() === '')) {
      throw new FlowError('invalid_input', 'nats.servers must name at least one server URL');
    }
    const configured = options.subjects ?? [];
    if (!Array.isArray(configured)) throw new FlowError('invalid_input', 'nats.subjects must be an array of subject patterns');
    for (const pattern of configured) {
      const problem = typeof pattern === 'string' ? declaredPatternProblem(pattern) : 'a subject pattern must be a string';
      if (problem) throw new FlowError('invalid_input', `nats.subjects: ${problem}`);
    }
    this.declared = minimalCover(configured);
    this.startRules = checkStartRules(options.startOrDeliver, this.declared);
    this.fixedSubjects = minimalCover([this.resumeSubject, ...configured]);
    this.subs = new TopicSubscriptions({
      queue: this.durableName,
      onMessage: (msg) => this.enqueue(msg),
      onRefused: (topic, reason) => this.refused(topic, reason),
    });
  }

  /** `jetstream` or `core` once connected; undefined before. */
  get mode(): NatsBridgeMode | undefined {
    return this.currentMode;
  }

  /** Where the bridge stands; subscribe to changes with `on('state', …)`. */
  get state(): NatsBridgeState {
    return this.currentState;
  }

  /** Why the last connection attempt or set-up failed, while not connected. */
  get lastError(): unknown {
    return this.failure;
  }

  /** The connection while connected (for publishing from the same process, or diagnostics). */
  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  /** The subject patterns the host declared (`nats.subjects`), minimal: what a binding may safely allow. */
  get declaredSubjects(): readonly string[] {
    return this.declared;
  }

  /** Every subject the bridge covers: the resume subject and declared patterns first, then wait topics. */
  coveredSubjects(): string[] {
    return [...this.fixedSubjects, ...this.subs.topics()];
  }

  /** Listens to the bridge; returns the function that stops listening. */
  on<K extends keyof NatsBridgeEvents>(event: K, listener: NatsBridgeEvents[K]): () => void {
    const set = this.listeners[event] as Set<NatsBridgeEvents[K]>;
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Why a wait may not name `topic` on this bus, or `undefined` when it may: it
   * must be a literal subject (no whitespace, wildcard or empty token) outside
   * `$…`, `_INBOX…`, `taskflow.…` and the resume subject.
   */
  canCover(topic: string): string | undefined {
    if (typeof topic !== 'string' || !isLiteralSubject(topic)) {
      return `${JSON.stringify(topic)} is not a NATS subject (dot-separated tokens, no whitespace or wildcard)`;
    }
    return reservedSubjectProblem(topic, this.resumeSubject);
  }

  /** Whether `topic` falls under a declared pattern (captured by the stream, so durable on JetStream). */
  isDeclared(topic: string): boolean {
    return this.declared.some((pattern) => subjectMatches(pattern, topic));
  }

  /**
   * The other stream on the server that captures `topic`, as last seen (on
   * connection and at every topic sweep), or undefined. A wait on it still works
   * (the bridge only listens), but the subject is that stream owner's: a tool may
   * refuse it to a model.
   */
  foreignStreamFor(topic: string): string | undefined {
    return this.foreign.find((stream) => stream.subjects.some((s) => subjectMatches(s, topic)))?.name;
  }

  /**
   * Whether events on `topic` reach the engine now. True as well while the bridge
   * is not connected: nothing can be confirmed then, and the topic is covered on
   * connection.
   */
  isCovered(topic: string): boolean {
    if (this.fixedSubjects.some((pattern) => subjectMatches(pattern, topic))) return true;
    if (this.currentState !== 'connected') return true;
    return this.subs.isCovered(topic);
  }

  /**
   * Covers wait topics: each gets its own subscription, confirmed by the server
   * (bounded by the cover timeout). Resolves with the topics the server refused
   * and why; the others are covered whatever happens to those.
   */
  async cover(topics: readonly string[]): Promise<Map<string, string>> {
    const wanted = topics.filter((topic) => this.canCover(topic) === undefined && !this.fixedSubjects.some((p) => subjectMatches(p, topic)));
    return this.subs.cover(wanted, this.coverTimeout);
  }

  /**
   * The runtime calls this after every commit: the topics of new event waits are
   * kept covered (the cover guard subscribed them before the commit; a wait
   * stored while the bus was away is subscribed here); lifecycle moves are
   * published when `publishLifecycle` is set.
   */
  committed(writes: readonly FlowWrite[]): void {
    if (this.options.publishLifecycle) this.publishLifecycle(writes);
    for (const write of writes) {
      const wait = write.flow.wait;
      if (write.flow.status !== 'waiting' || (wait?.kind !== 'external_event' && wait?.kind !== 'any')) continue;
      // Every topic of an any-of wait, as the one of an event wait.
      for (const topic of waitTopicsOf(wait)) {
        if (this.canCover(topic) !== undefined || this.fixedSubjects.some((p) => subjectMatches(p, topic))) continue;
        this.subs.want(topic);
      }
    }
  }

  /**
   * Starts the bridge. Resolves once connected and set up, or, when the bus cannot
   * be reached within a few seconds, at once with the bridge connecting in the
   * background with backoff (see {@link state}). Rejects only for a configuration
   * the server refuses (overlapping streams, JetStream required and absent).
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.closing = false;
    this.setState('connecting');
    const first = new Promise<void>((resolve, reject) => {
      this.settleStart = (error?: unknown) => {
        this.settleStart = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
    });
    this.running = this.run();
    try {
      await withTimeout(first, START_WAIT_MS);
    } catch (error) {
      await this.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Removes the subscriptions of topics no flow waits on (for a whole sweep period),
   * and subscribes topics that flows wait on but this process has not covered (waits
   * set by another process). Runs every `topicSweep`; returns the topics removed.
   */
  sweepTopics(): Promise<string[]> {
    this.sweeping ??= (async () => {
      try {
        const waited = new Set(await this.runtime.waitingTopics());
        for (const topic of waited) {
          if (this.canCover(topic) === undefined && !this.fixedSubjects.some((p) => subjectMatches(p, topic)) && !this.subs.isCovered(topic)) this.subs.want(topic);
        }
        const removed = this.subs.sweep(waited);
        if (removed.length > 0) this.logger.debug({ removed: removed.length }, 'taskflow: unsubscribed topics no flow waits on');
        await this.refreshForeignStreams();
        return removed;
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  /** Stops consuming, lets the messages in hand finish (and be acked), then drains the connection. Bounded in every state. */
  async close(): Promise<void> {
    if (this.currentState === 'closed' || this.currentState === 'idle') {
      this.setState('closed');
      return;
    }
    this.closing = true;
    this.settleStart?.();
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.wake?.();
    const nc = this.nc;
    try {
      await this.intake?.stop();
      if (nc && !nc.isClosed()) {
        // A drain needs the server; while it is unreachable, close after a bounded wait.
        const drained = nc.drain().then(
          () => true,
          () => false,
        );
        if (!(await withTimeout(drained, DRAIN_TIMEOUT_MS))) await nc.close().catch(() => undefined);
      }
      await withTimeout(this.queue, QUEUE_TIMEOUT_MS);
      // The connection loop ends at once, unless a connection attempt is in flight: it is closed when it returns.
      await withTimeout(this.running ?? Promise.resolve(), 1_000);
    } finally {
      this.detach();
      this.running = undefined;
      this.setState('closed');
    }
  }

  /** The connection loop: connect, set up, wait for the connection's end; again with backoff until closed. */
  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closing) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          name: 'nexo-taskflow',
          ...(this.options.connection as Omit<NodeConnectionOptions, 'servers'> | undefined),
          servers: this.options.servers,
        });
        if (this.closing) {
          await nc.close().catch(() => undefined);
          break;
        }
        await this.setUp(nc);
        attempt = 0;
        this.settleStart?.();
        const ended = await nc.closed();
        if (this.closing) break;
        this.detach();
        this.failure = ended ?? new Error('the NATS connection closed');
        this.logger.warn({ err: ended }, 'taskflow: NATS connection closed; connecting again');
        this.setState('reconnecting');
      } catch (error) {
        if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
        this.detach();
        if (this.closing) break;
        if (this.settleStart && FlowError.isInstance(error) && error.code === 'invalid_input') {
          // A configuration the server refuses: start() fails with it.
          this.settleStart(error);
          break;
        }
        const known = this.failure instanceof Error && error instanceof Error && this.failure.message === error.message;
        this.failure = error;
        if (known) this.logger.debug({ err: error }, 'taskflow: NATS still not reachable');
        else this.logger.warn({ err: error, attempt }, 'taskflow: NATS not reachable; retrying with backoff');
        if (this.currentState === 'connected') this.setState('reconnecting');
        this.settleStart?.();
        await this.pause(this.retryDelay(attempt++));
      }
    }
  }

  /** On a fresh connection: picks JetStream or core, sets the stream and consumer up, subscribes, starts consuming. */
  private async setUp(nc: NatsConnection): Promise<void> {
    this.nc = nc;
    this.transportUp = true;
    void this.watchStatus(nc);
    const { mode, jsm } = await this.chooseMode(nc);
    this.currentMode = mode;
    if (jsm) {
      const intake: JetStreamIntake = new JetStreamIntake(nc, jsm, {
        stream: this.streamName,
        durable: this.durableName,
        subjects: this.fixedSubjects,
        logger: this.logger,
        handleBatch: (msgs): Promise<void> => this.handleJetStream(msgs, intake),
        isConnected: () => this.transportUp && this.nc === nc,
      });
      await intake.setUp();
      this.intake = intake;
      this.foreign = await intake.foreignStreams().catch(() => this.foreign);
    } else {
      for (const subject of this.fixedSubjects) this.subs.pin(subject);
    }
    for (const topic of await this.runtime.waitingTopics()) {
      if (this.canCover(topic) === undefined && !this.fixedSubjects.some((p) => subjectMatches(p, topic))) this.subs.want(topic);
    }
    this.subs.attach(nc);
    await nc.flush();
    this.intake?.start();
    this.failure = undefined;
    this.startSweep();
    this.logger.info({ mode, stream: mode === 'jetstream' ? this.streamName : undefined, subjects: this.fixedSubjects, topics: this.subs.topicCount }, 'taskflow: NATS bridge connected');
    this.setState('connected');
  }

  /** Forgets the current connection (closed or failed). */
  private detach(): void {
    const intake = this.intake;
    this.intake = undefined;
    if (intake) void intake.stop();
    this.subs.detach();
    this.nc = undefined;
    this.transportUp = false;
  }

  private async chooseMode(nc: NatsConnection): Promise<{ mode: NatsBridgeMode; jsm?: JetStreamManager }> {
    const wanted = this.options.jetstream ?? 'auto';
    if (wanted === false) return { mode: 'core' };
    if (nc.info?.jetstream === true) {
      try {
        return { mode: 'jetstream', jsm: await jetstreamManager(nc) };
      } catch (error) {
        if (wanted === true) throw error;
        this.logger.warn({ err: error }, 'taskflow: JetStream unavailable to this user; the bridge runs on core NATS (at-most-once)');
        return { mode: 'core' };
      }
    }
    if (wanted === true) throw new FlowError('invalid_input', 'nats.jetstream is true but the NATS server has no JetStream');
    this.logger.warn({}, 'taskflow: the NATS server has no JetStream; the bridge runs on core NATS (at-most-once)');
    return { mode: 'core' };
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (nc !== this.nc) return;
      if (status.type === 'disconnect') {
        this.transportUp = false;
        this.logger.warn({ server: status.server }, 'taskflow: NATS disconnected; reconnecting');
        this.setState('reconnecting');
      } else if (status.type === 'reconnect') {
        this.transportUp = true;
        this.logger.info({ server: status.server }, 'taskflow: NATS reconnected');
        this.setState('connected');
      } else if (status.type === 'error') {
        this.logger.warn({ err: status.error }, 'taskflow: NATS error');
      }
    }
  }

  private startSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => {
      void this.sweepTopics().catch((error: unknown) => this.logger.warn({ err: error }, 'taskflow: sweeping NATS topics failed'));
    }, this.sweepInterval);
    this.sweepTimer.unref?.();
  }

  private async refreshForeignStreams(): Promise<void> {
    const intake = this.intake;
    if (!intake || !this.transportUp) return;
    this.foreign = await intake.foreignStreams().catch(() => this.foreign);
  }

  private refused(topic: string, reason: string): void {
    this.logger.error({ topic, reason }, 'taskflow: the NATS server refused a wait topic: events on it do not reach this runtime');
    this.emit('refused', { topic, reason });
  }

  private setState(state: NatsBridgeState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit('state', state, state === 'connected' || state === 'closed' ? undefined : this.failure);
  }

  private emit<K extends keyof NatsBridgeEvents>(event: K, ...args: Parameters<NatsBridgeEvents[K]>): void {
    for (const listener of this.listeners[event]) {
      try {
        (listener as (...a: Parameters<NatsBridgeEvents[K]>) => void)(...args);
      } catch (error) {
        this.logger.warn({ err: error, event }, 'taskflow: a NATS bridge listener threw');
      }
    }
  }

  private retryDelay(attempt: number): number {
    const first = Math.max(1, this.options.connection?.reconnectTimeWait ?? CONNECT_RETRY_FIRST_MS);
    const capped = Math.min(CONNECT_RETRY_MAX_MS, first * 2 ** Math.min(attempt, 20));
    return capped / 2 + (Math.random() * capped) / 2;
  }

  /** Waits `ms`, or less when the bridge closes. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private publishLifecycle(writes: readonly FlowWrite[]): void {
    const nc = this.nc;
    if (!nc || nc.isClosed() || nc.isDraining()) return;
    for (const write of writes) {
      for (const message of lifecycleMessages(write)) {
        const h = headers();
        h.set(MSG_ID_HEADER, message.msgId);
        try {
          nc.publish(message.subject, JSON.stringify(message.event), { headers: h });
        } catch (error) {
          this.logger.warn({ err: error, subject: message.subject }, 'taskflow: publishing a lifecycle event failed');
        }
      }
    }
  }

  /**
   * Core messages are handled in arrival order, in batches: whatever arrived while
   * the previous batch committed goes into the next transaction.
   */
  private enqueue(msg: Msg): void {
    this.coreHeld.push(msg);
    if (!this.coreDraining) this.drainCore();
  }

  private drainCore(): void {
    this.coreDraining = true;
    this.queue = this.queue
      .then(async () => {
        while (this.coreHeld.length > 0) {
          const msgs = this.coreHeld.splice(0, CORE_BATCH);
          const outcomes = await this.handleBatch(msgs.map((m) => ({ subject: m.subject, data: m.data, headers: m.headers, fallbackId: undefined })));
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

  /** A pulled batch: committed in one transaction, then each message acked, terminated or nak'd for redelivery. */
  private async handleJetStream(msgs: JsMsg[], intake: JetStreamIntake): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.handleBatch(
        msgs.map((msg) => ({ subject: msg.subject, data: msg.data, headers: msg.headers, fallbackId: `nats:${this.streamName}:${intake.created}:${msg.seq}` })),
      );
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

  /**
   * Hands messages to the engine, all in one transaction. Each is `done` once the
   * transaction committed (or it needs nothing); `refused` when it can never be
   * delivered (malformed, or refused by the engine as invalid input: too large, a
   * bad key); `retry` when the engine failed (storage) and a redelivery may succeed.
   */
  private async handleBatch(messages: readonly Incoming[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = messages.map(() => 'done');
    const deliveries: EventDelivery[] = [];
    const of: { index: number; flowId: string | undefined; rule: NatsStartRule | undefined }[] = [];
    messages.forEach(({ subject, data, headers: hdrs, fallbackId }, index) => {
      if (subject.startsWith(`${LIFECYCLE_PREFIX}.`)) return;
      const message: InboundMessage = { subject, data, header: (name) => headerValue(hdrs, name) };
      const parsed = parseInbound(message, this.resumeSubject);
      if (!parsed.ok) {
        this.logger.warn({ subject, reason: parsed.reason }, 'taskflow: malformed NATS message dropped');
        outcomes[index] = 'refused';
        return;
      }
      const delivery = parsed.delivery;
      if (delivery.eventId === undefined && fallbackId !== undefined) delivery.eventId = fallbackId;
      if (parsed.flowId !== undefined) delivery.flowId = parsed.flowId;
      deliveries.push(delivery);
      const rule = parsed.flowId === undefined && subject !== this.resumeSubject && this.runtime.startOrDeliver ? startRuleFor(this.startRules, subject) : undefined;
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

/** The delay before the `deliveryCount`-th delivery of a failed message is tried again. */
/** How long JetStream waits before it redelivers an event that met a storage failure: 1 s, doubling, at most 60 s. */
export function redeliveryDelay(deliveryCount: number): number {
  return Math.min(REDELIVERY_MAX_MS, REDELIVERY_FIRST_MS * 2 ** Math.max(0, Math.min(deliveryCount - 1, 16)));
}

function headerValue(hdrs: MsgHdrs | undefined, name: string): string | undefined {
  if (!hdrs || !hdrs.has(name)) return undefined;
  const value = hdrs.get(name);
  return value.trim() === '' ? undefined : value;
}

/** Drops every subject that another in the list already matches (JetStream refuses overlapping subjects). */
function minimalCover(subjects: readonly string[]): string[] {
  const unique = [...new Set(subjects)];
  return unique.filter((s, i) => !unique.some((other, j) => j !== i && subjectMatches(other, s) && (other !== s || j < i)));
}

/** `promise`'s value, or undefined once `ms` passed; the timer never outlives the race. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

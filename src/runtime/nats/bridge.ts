import type { JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { DeliveryOutcome, EventDelivery } from '../engine/engine.js';
import { silentLogger, type Logger } from '../logger.js';
import type { StartOrDeliverInput, StartOrDeliverResult } from '../start-or-deliver-input.js';
import type { FlowWrite } from '../store/contract.js';
import { resolveBridgeOptions, type BridgeSettings } from './bridge-options.js';
import { chooseMode } from './choose-mode.js';
import { ConnectionLoop } from './connection-loop.js';
import { TopicCoverage } from './coverage.js';
import { NatsInbound } from './inbound.js';
import { JetStreamIntake, type ForeignStream } from './jetstream.js';
import { publishLifecycle } from './lifecycle-publisher.js';
import type { NatsBridgeEvents, NatsBridgeMode, NatsBridgeState, NatsBridgeStatus, NatsOptions } from './options.js';
import { subjectMatches } from './subject.js';
import { withTimeout } from './with-timeout.js';

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

const DRAIN_TIMEOUT_MS = 2_000;
const QUEUE_TIMEOUT_MS = 5_000;

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
 *
 * A facade over its parts: the connection loop (`connection-loop.ts`), what is
 * covered and how (`coverage.ts`, its rule in `coverage-rule.ts`), the inbound
 * path (`inbound.ts`) and the JetStream intake (`jetstream.ts`).
 */
export class NatsBridge implements NatsBridgeStatus {
  private readonly settings: BridgeSettings;
  private readonly logger: Logger;
  private readonly runtime: NatsBridgeRuntime;
  /** The reference subject this bridge takes `{ flow_id?, topic, correlation_id, payload? }` on (`nats.resumeSubject`). */
  readonly resumeSubject: string;
  private readonly listeners: { [K in keyof NatsBridgeEvents]: Set<NatsBridgeEvents[K]> } = { state: new Set(), refused: new Set() };
  private readonly loop: ConnectionLoop<NatsConnection>;
  private readonly coverage: TopicCoverage;
  private readonly inbound: NatsInbound;

  private intake: JetStreamIntake | undefined;
  private currentMode: NatsBridgeMode | undefined;
  private foreign: ForeignStream[] = [];
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<string[]> | undefined;

  constructor(options: NatsBridgeOptions) {
    const settings = resolveBridgeOptions(options);
    this.settings = settings;
    this.runtime = options.runtime;
    this.logger = options.logger ?? silentLogger;
    this.resumeSubject = settings.resumeSubject;
    this.inbound = new NatsInbound({ runtime: this.runtime, resumeSubject: settings.resumeSubject, startRules: settings.startRules, logger: this.logger });
    this.coverage = new TopicCoverage({
      plan: settings,
      declared: settings.declared,
      queue: settings.durable,
      coverTimeout: settings.coverTimeout,
      isConnected: () => this.loop.state === 'connected',
      onMessage: (msg) => this.inbound.core(msg),
      onRefused: (topic, reason) => this.refused(topic, reason),
    });
    this.loop = new ConnectionLoop<NatsConnection>({
      connect: () =>
        connect({
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          name: 'nexo-taskflow',
          ...(settings.connection as Omit<NodeConnectionOptions, 'servers'> | undefined),
          servers: settings.servers,
        }),
      setUp: (nc) => this.setUp(nc),
      lost: () => this.lost(),
      end: (nc) => this.end(nc),
      onState: (state, error) => this.emit('state', state, error),
      retry: settings.connectRetry,
      logger: this.logger,
    });
  }

  /** `jetstream` or `core` once connected; undefined before. */
  get mode(): NatsBridgeMode | undefined {
    return this.currentMode;
  }

  /** Where the bridge stands; subscribe to changes with `on('state', …)`. */
  get state(): NatsBridgeState {
    return this.loop.state;
  }

  /** Why the last connection attempt or set-up failed, while not connected. */
  get lastError(): unknown {
    return this.loop.lastError;
  }

  /** The connection while connected (for publishing from the same process, or diagnostics). */
  get connection(): NatsConnection | undefined {
    return this.loop.connection;
  }

  /** The subject patterns the host declared (`nats.subjects`), minimal: what a binding may safely allow. */
  get declaredSubjects(): readonly string[] {
    return this.settings.declared;
  }

  /** Every subject the bridge covers: the resume subject and declared patterns first, then wait topics. */
  coveredSubjects(): string[] {
    return this.coverage.subjects();
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
    return this.coverage.canCover(topic);
  }

  /** Whether `topic` falls under a declared pattern (captured by the stream, so durable on JetStream). */
  isDeclared(topic: string): boolean {
    return this.coverage.isDeclared(topic);
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
    return this.coverage.isCovered(topic);
  }

  /**
   * Covers wait topics: each gets its own subscription, confirmed by the server
   * (bounded by the cover timeout). Resolves with the topics the server refused
   * and why; the others are covered whatever happens to those.
   */
  async cover(topics: readonly string[]): Promise<Map<string, string>> {
    return this.coverage.cover(topics);
  }

  /**
   * The runtime calls this after every commit: the topics of new event waits are
   * kept covered (the cover guard subscribed them before the commit; a wait
   * stored while the bus was away is subscribed here); lifecycle moves are
   * published when `publishLifecycle` is set.
   */
  committed(writes: readonly FlowWrite[]): void {
    if (this.settings.publishLifecycle) publishLifecycle(this.loop.connection, writes, this.logger);
    this.coverage.keep(writes);
  }

  /**
   * Starts the bridge. Resolves once connected and set up, or, when the bus cannot
   * be reached within a few seconds, at once with the bridge connecting in the
   * background with backoff (see {@link state}). Rejects only for a configuration
   * the server refuses (overlapping streams, JetStream required and absent).
   */
  async start(): Promise<void> {
    await this.loop.start();
  }

  /**
   * Removes the subscriptions of topics no flow waits on (for a whole sweep period),
   * and subscribes topics that flows wait on but this process has not covered (waits
   * set by another process). Runs every `topicSweep`; returns the topics removed.
   */
  sweepTopics(): Promise<string[]> {
    this.sweeping ??= (async () => {
      try {
        const removed = this.coverage.sweep(new Set(await this.runtime.waitingTopics()));
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
    await this.loop.close();
  }

  /** On a fresh connection: picks JetStream or core, sets the stream and consumer up, subscribes, starts consuming. */
  private async setUp(nc: NatsConnection): Promise<void> {
    const { stream, durable, fixedSubjects } = this.settings;
    const { mode, jsm } = await chooseMode(nc, this.settings.jetstream, this.logger);
    this.currentMode = mode;
    if (jsm) {
      const intake: JetStreamIntake = new JetStreamIntake(nc, jsm, {
        stream,
        durable,
        subjects: fixedSubjects,
        logger: this.logger,
        handleBatch: (msgs: JsMsg[]): Promise<void> => this.inbound.stream(msgs, `nats:${stream}:${intake.created}`),
        isConnected: () => this.loop.isUp(nc),
      });
      await intake.setUp();
      this.intake = intake;
      this.foreign = await intake.foreignStreams().catch(() => this.foreign);
    }
    this.coverage.attach(nc, !jsm, await this.runtime.waitingTopics());
    await nc.flush();
    this.intake?.start();
    this.startSweep();
    this.logger.info({ mode, stream: mode === 'jetstream' ? stream : undefined, subjects: fixedSubjects, topics: this.coverage.topicCount }, 'taskflow: NATS bridge connected');
  }

  /** Forgets the current connection (closed or failed). */
  private lost(): void {
    const intake = this.intake;
    this.intake = undefined;
    if (intake) void intake.stop();
    this.coverage.detach();
  }

  /** On close: stops consuming, drains the connection (bounded), lets the core messages in hand finish (bounded). */
  private async end(nc: NatsConnection | undefined): Promise<void> {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await this.intake?.stop();
    if (nc && !nc.isClosed()) {
      // A drain needs the server; while it is unreachable, close after a bounded wait.
      const drained = nc.drain().then(
        () => true,
        () => false,
      );
      if (!(await withTimeout(drained, DRAIN_TIMEOUT_MS))) await nc.close().catch(() => undefined);
    }
    await withTimeout(this.inbound.settled(), QUEUE_TIMEOUT_MS);
  }

  private startSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => {
      void this.sweepTopics().catch((error: unknown) => this.logger.warn({ err: error }, 'taskflow: sweeping NATS topics failed'));
    }, this.settings.sweepInterval);
    this.sweepTimer.unref?.();
  }

  private async refreshForeignStreams(): Promise<void> {
    const intake = this.intake;
    if (!intake || !this.loop.isUp()) return;
    this.foreign = await intake.foreignStreams().catch(() => this.foreign);
  }

  private refused(topic: string, reason: string): void {
    this.logger.error({ topic, reason }, 'taskflow: the NATS server refused a wait topic: events on it do not reach this runtime');
    this.emit('refused', { topic, reason });
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
}

import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { connect, headers, nanos, type Msg, type MsgHdrs, type NatsConnection, type NodeConnectionOptions, type Subscription } from '@nats-io/transport-node';
import type { DeliveryResult, EventDelivery } from './engine.js';
import { FlowError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import { lifecycleMessages } from './nats-lifecycle.js';
import { LIFECYCLE_PREFIX, MSG_ID_HEADER, parseInbound, RESUME_SUBJECT, type InboundMessage } from './nats-message.js';
import { isLiteralSubject, isSubjectPattern, subjectMatches } from './subject.js';
import type { FlowWrite } from './store.js';

/** The `nats` option of `openTaskflow`: where the bridge connects and what it covers. */
export interface NatsOptions {
  /** One server URL or several, e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /**
   * Subject patterns covered from the start (besides `taskflow.resume` and the
   * topics that waits declare), e.g. `['payments.>']`: an event on them that
   * arrives before any flow waits is kept in the inbox for a later wait.
   */
  subjects?: string[];
  /**
   * `'auto'` (default): JetStream when the server has it, else core NATS.
   * `true`: JetStream or fail at start. `false`: core NATS (at-most-once).
   */
  jetstream?: 'auto' | boolean;
  /** The JetStream stream over the covered subjects; created (work-queue, file storage) when absent. Default `TASKFLOW`. */
  stream?: string;
  /** The durable pull consumer on that stream; created when absent. Default `taskflow`. */
  durable?: string;
  /**
   * The reference subject, `{ flow_id?, topic, correlation_id, payload? }`. Default
   * `taskflow.resume`. Two deployments with their own streams on one server each
   * need their own: JetStream refuses streams whose subjects overlap.
   */
  resumeSubject?: string;
  /** Publish `taskflow.flow.<id>.<waiting|resumed|finished|failed|cancelled>` after each such move. Default false. */
  publishLifecycle?: boolean;
  /**
   * Extra connection options (credentials, TLS, `name`, reconnect timing). The
   * bridge always reconnects forever unless `maxReconnectAttempts` says otherwise.
   */
  connection?: Omit<NodeConnectionOptions, 'servers'>;
}

/** Which delivery guarantee the bridge runs with. */
export type NatsBridgeMode = 'jetstream' | 'core';

/** What the bridge needs from the runtime: the engine's `deliver` and the store's declared topics. */
export interface NatsBridgeRuntime {
  deliver(event: EventDelivery): Promise<DeliveryResult>;
  waitingTopics(): Promise<string[]>;
}

/** Options of {@link NatsBridge}. */
export interface NatsBridgeOptions extends NatsOptions {
  runtime: NatsBridgeRuntime;
  logger?: Logger;
  /** How long a wait on a new topic waits for the topic to be covered before its caller goes on. Default 2000 ms. */
  coverTimeout?: number;
}

const DEFAULT_STREAM = 'TASKFLOW';
const DEFAULT_DURABLE = 'taskflow';
const ACK_WAIT_MS = 30_000;
const RETRY_DELAY_MS = 1_000;
const PULL_BATCH = 256;
/** The shortest expiry a pull request may have; also the longest a close waits for the last one. */
const PULL_EXPIRES_MS = 1_000;
const PULL_RETRY_MS = 100;
const DRAIN_TIMEOUT_MS = 2_000;
const RECOVER_DELAY_MS = 500;

/**
 * Connects the WaitEngine to NATS. Inbound, every message on a covered subject
 * (the topics waits declare, the configured patterns, `taskflow.resume`) becomes
 * an `engine.deliver(...)`. With JetStream the covered subjects are captured by a
 * stream and read by a durable consumer; a message is acked only once the engine's
 * transaction committed, and its `Nats-Msg-Id` (else the stream sequence) is the
 * event id, so a redelivery resumes nothing twice. Outbound, it publishes flow
 * lifecycle events when asked. It knows nothing of SQL.
 */
export class NatsBridge {
  private readonly options: NatsBridgeOptions;
  private readonly logger: Logger;
  private readonly runtime: NatsBridgeRuntime;
  private readonly streamName: string;
  private readonly durableName: string;
  private readonly coverTimeout: number;
  private readonly resumeSubject: string;
  /** Patterns covered up front: `taskflow.resume` and `nats.subjects`. */
  private readonly patterns: string[];
  /** Literal topics covered (or being covered) beyond the patterns. */
  private readonly topics = new Set<string>();
  /** Topics declared but not yet covered on the server. */
  private readonly pending = new Set<string>();

  private nc: NatsConnection | undefined;
  private jsm: JetStreamManager | undefined;
  private currentMode: NatsBridgeMode | undefined;
  private streamCreated = '';
  private consuming: Promise<void> | undefined;
  /** The pull request in progress. */
  private batch: ConsumerMessages | undefined;
  private readonly subscriptions = new Map<string, Subscription>();
  private coreQueue: Promise<void> = Promise.resolve();
  private covering: Promise<void> | undefined;
  private coverAgain = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private started = false;
  private connected = false;

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
    const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
    if (servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.trim() === '')) {
      throw new FlowError('invalid_input', 'nats.servers must name at least one server URL');
    }
    const configured = options.subjects ?? [];
    for (const pattern of configured) {
      if (typeof pattern !== 'string' || !isSubjectPattern(pattern)) {
        throw new FlowError('invalid_input', `nats.subjects: ${JSON.stringify(pattern)} is not a NATS subject pattern`);
      }
    }
    this.patterns = minimalCover([this.resumeSubject, ...configured]);
  }

  /** `jetstream` or `core` once started; undefined before. */
  get mode(): NatsBridgeMode | undefined {
    return this.currentMode;
  }

  /** The connection once started (for publishing from the same process, or diagnostics). */
  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  /** Every subject the bridge covers: patterns first, then declared topics. */
  coveredSubjects(): string[] {
    return [...this.patterns, ...[...this.topics].sort()];
  }

  /**
   * Connects, picks JetStream or core NATS, covers the configured patterns and the
   * topics waiting flows declare (read from the database), and starts consuming.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.closing = false;
    try {
      const nc = await connect({
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        name: 'nexo-taskflow',
        ...this.options.connection,
        servers: this.options.servers,
      });
      this.nc = nc;
      this.connected = true;
      void this.watchStatus(nc);
      for (const topic of await this.runtime.waitingTopics()) this.addTopic(topic);
      this.currentMode = await this.chooseMode(nc);
      if (this.currentMode === 'jetstream') {
        await this.ensureStream();
        await this.ensureConsumer();
        await this.consume();
      } else {
        for (const subject of this.coveredSubjects()) this.subscribeCore(subject);
        this.pending.clear();
        await nc.flush();
      }
      this.logger.info({ mode: this.currentMode, subjects: this.coveredSubjects().length }, 'taskflow: NATS bridge started');
    } catch (error) {
      await this.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Makes sure events on `topic` reach the engine. A topic already covered costs
   * nothing; a new one is added to the stream (JetStream) or subscribed (core).
   * Resolves once covered, or after the cover timeout (it goes on in the background).
   */
  async cover(topic: string): Promise<void> {
    if (!this.addTopic(topic)) return;
    if (!this.nc || this.closing) return;
    const done = this.coverPending();
    // While disconnected the topic is covered on reconnect; the caller does not wait for that.
    if (!this.connected) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.coverTimeout);
      timer.unref?.();
    });
    await Promise.race([done.catch(() => undefined), timeout]);
    clearTimeout(timer);
  }

  /**
   * The runtime calls this after every commit: new event waits get their topic
   * covered; lifecycle moves are published when `publishLifecycle` is set.
   */
  async committed(writes: readonly FlowWrite[]): Promise<void> {
    if (this.options.publishLifecycle) this.publishLifecycle(writes);
    const declared: string[] = [];
    for (const write of writes) {
      const wait = write.flow.wait;
      if (write.flow.status === 'waiting' && wait?.kind === 'external_event') declared.push(wait.topic);
    }
    if (declared.length > 0) await Promise.all(declared.map((topic) => this.cover(topic)));
  }

  /** Stops consuming, lets the messages in hand finish (and be acked), then drains the connection. */
  async close(): Promise<void> {
    if (this.closing && !this.started) return;
    this.closing = true;
    this.started = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const nc = this.nc;
    try {
      if (this.consuming) {
        // Connected: the last pull request ends within its expiry and every message it brought is handled.
        // Disconnected (or stuck): stop the pull; what it held is redelivered after the ack wait.
        if (!this.connected) await this.batch?.close().catch(() => undefined);
        const ended = await Promise.race([this.consuming.then(() => true), sleep(PULL_EXPIRES_MS + 1_000).then(() => false)]);
        if (!ended) {
          await this.batch?.close().catch(() => undefined);
          await Promise.race([this.consuming, sleep(1_000)]);
        }
      }
      if (this.covering) await Promise.race([this.covering.catch(() => undefined), sleep(this.coverTimeout)]);
      for (const sub of this.subscriptions.values()) await sub.drain().catch(() => undefined);
      await this.coreQueue;
    } finally {
      this.consuming = undefined;
      this.batch = undefined;
      this.subscriptions.clear();
      this.nc = undefined;
      this.jsm = undefined;
      if (nc && !nc.isClosed()) {
        // A drain needs the server; while it is unreachable, close after a bounded wait.
        const drained = nc.drain().then(
          () => true,
          () => false,
        );
        if (!(await Promise.race([drained, sleep(DRAIN_TIMEOUT_MS).then(() => false)]))) await nc.close().catch(() => undefined);
      }
    }
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

  /** Records a topic to cover; false when it is covered already or cannot be a subject. */
  private addTopic(topic: string): boolean {
    if (this.topics.has(topic) || this.patterns.some((p) => subjectMatches(p, topic))) return false;
    if (!isLiteralSubject(topic)) {
      this.logger.warn({ topic }, 'taskflow: a wait topic that is not a literal NATS subject cannot be covered by the bridge');
      return false;
    }
    if (topic.startsWith(`${LIFECYCLE_PREFIX}.`)) {
      this.logger.warn({ topic }, 'taskflow: a wait topic under taskflow.flow. is outbound only; not covered');
      return false;
    }
    this.topics.add(topic);
    this.pending.add(topic);
    return true;
  }

  private async chooseMode(nc: NatsConnection): Promise<NatsBridgeMode> {
    const wanted = this.options.jetstream ?? 'auto';
    if (wanted === false) return 'core';
    const serverHasIt = nc.info?.jetstream === true;
    if (serverHasIt) {
      try {
        this.jsm = await jetstreamManager(nc);
        return 'jetstream';
      } catch (error) {
        if (wanted === true) throw error;
        this.logger.warn({ err: error }, 'taskflow: JetStream unavailable; the bridge runs on core NATS (at-most-once)');
        return 'core';
      }
    }
    if (wanted === true) throw new FlowError('invalid_input', 'nats.jetstream is true but the NATS server has no JetStream');
    this.logger.warn({}, 'taskflow: the NATS server has no JetStream; the bridge runs on core NATS (at-most-once)');
    return 'core';
  }

  /** Creates the stream over the covered subjects, or adds the missing ones to it. Never removes a subject. */
  private async ensureStream(): Promise<void> {
    const jsm = this.jsm!;
    // Topics declared while this update is in flight stay pending for the next one.
    const batch = [...this.pending];
    let info;
    try {
      info = await jsm.streams.info(this.streamName);
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    }
    if (!info) {
      info = await jsm.streams
        .add({
          name: this.streamName,
          subjects: this.coveredSubjects(),
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          duplicate_window: nanos(2 * 60_000),
        })
        .catch((error: unknown) => {
          throw new FlowError(
            'invalid_input',
            `cannot create JetStream stream ${this.streamName}: ${(error as Error).message}. Another stream on this server ` +
              `already captures one of ${this.coveredSubjects().join(', ')}: reuse its name (nats.stream) or give this ` +
              `runtime subjects of its own (nats.resumeSubject, topics)`,
            { cause: error },
          );
        });
      this.logger.info({ stream: this.streamName }, 'taskflow: JetStream stream created');
    } else {
      const existing = info.config.subjects ?? [];
      const wanted = this.coveredSubjects().filter((s) => !existing.some((e) => subjectMatches(e, s)));
      if (wanted.length > 0) {
        const subjects = minimalCover([...existing, ...wanted]);
        info = await jsm.streams.update(this.streamName, { subjects });
      }
    }
    this.streamCreated = String(Date.parse(info.created) || info.created);
    for (const topic of batch) this.pending.delete(topic);
  }

  private async ensureConsumer(): Promise<void> {
    const jsm = this.jsm!;
    try {
      await jsm.consumers.info(this.streamName, this.durableName);
      return;
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound)) throw error;
    }
    await jsm.consumers.add(this.streamName, {
      durable_name: this.durableName,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ACK_WAIT_MS),
      max_deliver: -1,
    });
  }

  /**
   * Pulls in batches (`fetch`, each pull request expiring after {@link PULL_EXPIRES_MS})
   * rather than with an open-ended `consume`: on close the last pull request is
   * waited out and every message it brought is handled and acked, so none is left
   * delivered-but-unacked on the server until its ack wait runs out.
   */
  private async consume(): Promise<void> {
    let consumer = await jetstream(this.nc!).consumers.get(this.streamName, this.durableName);
    this.consuming = (async () => {
      while (!this.closing) {
        const began = Date.now();
        let handled = 0;
        let failed = false;
        try {
          const batch = await consumer.fetch({ max_messages: PULL_BATCH, expires: PULL_EXPIRES_MS });
          this.batch = batch;
          for await (const msg of batch) {
            await this.handleJetStream(msg);
            handled++;
          }
        } catch (error) {
          if (this.closing) break;
          failed = true;
          this.logger.debug({ err: error }, 'taskflow: JetStream pull interrupted; pulling again');
        }
        if (this.closing) break;
        // A failed pull while connected (missed heartbeats: the consumer may be gone) checks stream and consumer.
        if (failed && this.connected) consumer = (await this.recover()) ?? consumer;
        // A pull that ended at once with nothing is not retried in a tight loop.
        if (handled === 0 && Date.now() - began < PULL_EXPIRES_MS / 2) await sleep(PULL_RETRY_MS);
      }
    })();
  }

  /** After a failed pull: the stream or consumer may be gone (deleted, or a server that lost its store). Recreate them. */
  private async recover(): Promise<Consumer | undefined> {
    // Not at once: a server still removing a deleted stream's files can corrupt one recreated under the same name.
    await sleep(RECOVER_DELAY_MS);
    if (!this.connected || !this.nc || this.closing) return undefined;
    try {
      await this.covering?.catch(() => undefined);
      await this.ensureStream();
      await this.ensureConsumer();
      return await jetstream(this.nc).consumers.get(this.streamName, this.durableName);
    } catch (error) {
      this.logger.warn({ err: error }, 'taskflow: JetStream stream or consumer not reachable yet');
      return undefined;
    }
  }

  private async handleJetStream(msg: JsMsg): Promise<void> {
    const outcome = await this.handle(msg.subject, msg.data, msg.headers, `nats:${this.streamName}:${this.streamCreated}:${msg.seq}`);
    if (outcome === 'done') msg.ack();
    else if (outcome === 'malformed') msg.term(); // no reason: servers before 2.10 ignore "+TERM <reason>"
    else msg.nak(RETRY_DELAY_MS);
  }

  private subscribeCore(subject: string): void {
    if (this.subscriptions.has(subject) || !this.nc) return;
    const sub = this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) {
          this.logger.warn({ err: error, subject }, 'taskflow: NATS subscription error');
          return;
        }
        this.coreQueue = this.coreQueue
          .then(() => this.handleCore(msg))
          .catch((failure: unknown) => this.logger.error({ err: failure, subject }, 'taskflow: handling a NATS message failed'));
      },
    });
    this.subscriptions.set(subject, sub);
  }

  private async handleCore(msg: Msg): Promise<void> {
    const outcome = await this.handle(msg.subject, msg.data, msg.headers, undefined);
    if (outcome === 'retry') this.logger.error({ subject: msg.subject }, 'taskflow: an event was lost (core NATS is at-most-once)');
  }

  /** Hands one message to the engine. `done` once its transaction committed (or it needs nothing). */
  private async handle(subject: string, data: Uint8Array, hdrs: MsgHdrs | undefined, fallbackId: string | undefined): Promise<'done' | 'malformed' | 'retry'> {
    if (subject.startsWith(`${LIFECYCLE_PREFIX}.`)) return 'done';
    const message: InboundMessage = { subject, data, header: (name) => headerValue(hdrs, name) };
    const parsed = parseInbound(message, this.resumeSubject);
    if (!parsed.ok) {
      this.logger.warn({ subject, reason: parsed.reason }, 'taskflow: malformed NATS message dropped');
      return 'malformed';
    }
    const delivery = parsed.delivery;
    if (delivery.eventId === undefined && fallbackId !== undefined) delivery.eventId = fallbackId;
    try {
      const result = await this.runtime.deliver(delivery);
      if (parsed.flowId !== undefined && !result.duplicate && !result.kept && !result.resumed.includes(parsed.flowId)) {
        this.logger.debug({ flowId: parsed.flowId, resumed: result.resumed }, 'taskflow: taskflow.resume named a flow the event did not resume');
      }
      this.logger.debug({ subject, correlationId: delivery.correlationId, ...result }, 'taskflow: NATS event delivered');
      return 'done';
    } catch (error) {
      if (FlowError.isInstance(error) && error.code === 'invalid_input') {
        this.logger.warn({ subject, err: error }, 'taskflow: malformed NATS message dropped');
        return 'malformed';
      }
      this.logger.error({ subject, err: error }, 'taskflow: delivering a NATS event failed; it will be retried');
      return 'retry';
    }
  }

  /** Covers the pending topics: one stream update for all of them, or one subscription each. */
  private coverPending(): Promise<void> {
    if (this.covering) {
      this.coverAgain = true;
      return this.covering;
    }
    this.covering = (async () => {
      try {
        do {
          this.coverAgain = false;
          if (this.pending.size === 0 || !this.nc || this.closing) break;
          if (this.currentMode === 'jetstream') {
            await this.ensureStream();
          } else if (this.currentMode === 'core') {
            const topics = [...this.pending];
            this.pending.clear();
            for (const topic of topics) this.subscribeCore(topic);
            await this.nc.flush();
          }
        } while (this.coverAgain);
      } catch (error) {
        this.logger.warn({ err: error, pending: this.pending.size }, 'taskflow: covering new topics failed; retrying');
        this.scheduleRetry();
        throw error;
      } finally {
        this.covering = undefined;
      }
    })();
    return this.covering;
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closing) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.coverPending().catch(() => undefined);
    }, RETRY_DELAY_MS);
    this.retryTimer.unref?.();
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') this.connected = false;
      if (status.type === 'disconnect') this.logger.warn({ server: status.server }, 'taskflow: NATS disconnected; reconnecting');
      else if (status.type === 'reconnect') {
        this.connected = true;
        this.logger.info({ server: status.server }, 'taskflow: NATS reconnected');
        if (this.pending.size > 0) void this.coverPending().catch(() => undefined);
      } else if (status.type === 'error') this.logger.warn({ err: status.error }, 'taskflow: NATS error');
    }
  }
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

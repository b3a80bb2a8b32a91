import type { Duration } from '../duration.js';
import type { StartOrDeliverInput } from '../start-or-deliver-input.js';

/**
 * The NATS options and status as the runtime's public types see them. This file
 * imports nothing from the NATS packages, so the declarations of `openTaskflow`
 * stand alone for apps that do not install them (NATS is an optional peer).
 */

/** The `nats` option of `openTaskflow`: where the bridge connects and what it covers. */
export interface NatsOptions {
  /** One server URL or several, e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /**
   * Subject patterns this runtime owns on the bus, e.g. `['payments.>', 'orders.*.paid']`.
   * With JetStream they are captured by the runtime's stream: an event on them is
   * kept while the runtime is down or disconnected, and one that arrives before any
   * flow waits goes to the inbox for a later wait. Each must start with a literal
   * token outside `$…`, `_INBOX…` and `taskflow.…`. Do not declare subjects a
   * request/reply service answers on: the stream would answer its requests too.
   */
  subjects?: string[];
  /**
   * `'auto'` (default): JetStream when the server has it, else core NATS.
   * `true`: JetStream or fail at start. `false`: core NATS (at-most-once).
   */
  jetstream?: 'auto' | boolean;
  /** The JetStream stream over the declared subjects; created (work-queue, file storage) when absent. Default `TASKFLOW`. */
  stream?: string;
  /** The durable pull consumer on that stream, and the queue group of the subscriptions. Default `taskflow`. */
  durable?: string;
  /**
   * The reference subject, `{ flow_id?, topic, correlation_id, payload? }`. Default
   * `taskflow.resume`. Two deployments with their own streams on one server each
   * need their own: JetStream refuses streams whose subjects overlap.
   */
  resumeSubject?: string;
  /**
   * Start or deliver over NATS: an event on a subject matching a rule's `subject`
   * (a pattern within `subjects`, so the stream captures it) goes to
   * `tf.startOrDeliver` instead of `engine.deliver`, with the flow `flowFor` names
   * for it: the first event for an invoice starts its flow, later ones are
   * delivered to it, in one commit each. The first matching rule applies.
   */
  startOrDeliver?: NatsStartRule[];
  /** Publish `taskflow.flow.<id>.<waiting|resumed|finished|failed|cancelled>` after each such move. Default false. */
  publishLifecycle?: boolean;
  /** How often topic subscriptions no flow waits on are removed. Default `60s`. */
  topicSweep?: Duration;
  /**
   * Extra connection options: credentials (`user`/`pass`, `token`, or an
   * `authenticator` such as `nkeyAuthenticator(seed)` or `credsAuthenticator(creds)`),
   * `tls` (`{ caFile }`, `{ certFile, keyFile }`), `name`, reconnect timing. The
   * bridge reconnects forever unless `maxReconnectAttempts` says otherwise, and
   * then connects again from scratch with backoff.
   */
  connection?: NatsConnectionOptions;
}

/**
 * Connection options handed to `connect()` of `@nats-io/transport-node` (its
 * `NodeConnectionOptions` without `servers`). The common ones are typed here;
 * any other option of that package passes through as is.
 */
export interface NatsConnectionOptions {
  /** The client name the server shows. */
  name?: string;
  user?: string;
  pass?: string;
  token?: string;
  /** An `Authenticator` (or several) from `@nats-io/transport-node`, e.g. `credsAuthenticator(...)`. */
  authenticator?: unknown;
  tls?: { ca?: string; caFile?: string; cert?: string; certFile?: string; key?: string; keyFile?: string; handshakeFirst?: boolean } | null;
  /** Connection timeout, ms. */
  timeout?: number;
  reconnect?: boolean;
  maxReconnectAttempts?: number;
  reconnectTimeWait?: number;
  reconnectJitter?: number;
  pingInterval?: number;
  maxPingOut?: number;
  noEcho?: boolean;
  inboxPrefix?: string;
  /** Any other option of `NodeConnectionOptions`. */
  [option: string]: unknown;
}

/** An event as a {@link NatsStartRule} sees it. */
export interface NatsStartEvent {
  topic: string;
  correlationId: string;
  payload?: unknown;
  eventId?: string;
}

/** One subject pattern whose events start their flow when none exists (`nats.startOrDeliver`). */
export interface NatsStartRule {
  /** A subject pattern within `nats.subjects`, e.g. `invoices.*.created`. */
  subject: string;
  /**
   * The flow an event belongs to: its owner, idempotency key, create input and
   * optional first wait (default: the event's own key, so a new flow resumes at
   * once with it). Throw a `FlowError('invalid_input')` to refuse an event.
   */
  flowFor(event: NatsStartEvent): Omit<StartOrDeliverInput, 'event'>;
}

/** Which delivery guarantee the bridge runs with on the declared subjects. */
export type NatsBridgeMode = 'jetstream' | 'core';

/**
 * Where the bridge stands. `idle` before start; `connecting` until the first
 * connection is up and set up (retried in the background with backoff);
 * `connected` while events flow; `reconnecting` after the connection dropped;
 * `closed` after close.
 */
export type NatsBridgeState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** A wait topic the bus refused to deliver to this runtime (a permissions violation). */
export interface TopicRefusal {
  topic: string;
  reason: string;
}

/** What a host can listen to with {@link NatsBridge.on}. */
export interface NatsBridgeEvents {
  /** The state changed; `error` is the last connection failure, when there is one. */
  state: (state: NatsBridgeState, error: unknown) => void;
  /** The server refused a topic's subscription after its wait was stored (found on reconnection). */
  refused: (refusal: TopicRefusal) => void;
}

/**
 * What the runtime shows of its NATS bridge (`tf.bridge`): the bridge's public
 * accessors, without its connection (`nexo-taskflow/nats` has the full class).
 */
export interface NatsBridgeStatus {
  /** `jetstream` or `core` once connected; undefined before. */
  readonly mode: NatsBridgeMode | undefined;
  readonly state: NatsBridgeState;
  /** Why the last connection attempt or set-up failed, while not connected. */
  readonly lastError: unknown;
  readonly resumeSubject: string;
  /** `nats.subjects` as declared. */
  readonly declaredSubjects: readonly string[];
  /** Every subject the bridge covers. */
  coveredSubjects(): string[];
  on<K extends keyof NatsBridgeEvents>(event: K, listener: NatsBridgeEvents[K]): () => void;
  canCover(topic: string): string | undefined;
  isDeclared(topic: string): boolean;
  foreignStreamFor(topic: string): string | undefined;
  isCovered(topic: string): boolean;
  sweepTopics(): Promise<string[]>;
}

import type { Msg, NatsConnection } from '@nats-io/transport-node';
import type { Flow } from '../flow.js';
import { coverRefusal, isFixed, needsOwnSubscription, waitedTopics, type CoveragePlan } from './coverage-rule.js';
import { subjectMatches } from './subject.js';
import { TopicSubscriptions } from './subscriptions.js';

/** Options of {@link TopicCoverage}. */
export interface TopicCoverageOptions {
  plan: CoveragePlan;
  /** `nats.subjects`, minimal. */
  declared: readonly string[];
  /** The queue group of the subscriptions (the durable's name). */
  queue: string;
  /** How long {@link TopicCoverage.cover} waits for the server to confirm, ms. */
  coverTimeout: number;
  /** Whether the bridge is connected (and set up) now. */
  isConnected(): boolean;
  onMessage(msg: Msg): void;
  onRefused(topic: string, reason: string): void;
}

/**
 * What the bridge covers: the fixed subjects (the stream on JetStream, pinned
 * subscriptions on core NATS) and a plain subscription per wait topic that
 * {@link needsOwnSubscription}. The subscriptions' own states (wanted,
 * subscribed, refused, swept) live in {@link TopicSubscriptions}; this unit
 * decides which topics go there.
 */
export class TopicCoverage {
  private readonly options: TopicCoverageOptions;
  private readonly plan: CoveragePlan;
  private readonly subs: TopicSubscriptions;

  constructor(options: TopicCoverageOptions) {
    this.options = options;
    this.plan = options.plan;
    this.subs = new TopicSubscriptions({ queue: options.queue, onMessage: options.onMessage, onRefused: options.onRefused });
  }

  /** How many wait topics are subscribed. */
  get topicCount(): number {
    return this.subs.topicCount;
  }

  /** Every subject covered: the fixed ones first, then the subscribed wait topics. */
  subjects(): string[] {
    return [...this.plan.fixedSubjects, ...this.subs.topics()];
  }

  /** See {@link coverRefusal}. */
  canCover(topic: string): string | undefined {
    return coverRefusal(this.plan, topic);
  }

  /** Whether `topic` falls under a declared pattern (captured by the stream, so durable on JetStream). */
  isDeclared(topic: string): boolean {
    return this.options.declared.some((pattern) => subjectMatches(pattern, topic));
  }

  /**
   * Whether events on `topic` reach the runtime now. True as well while the bridge
   * is not connected: nothing can be confirmed then, and the topic is covered on
   * connection.
   */
  isCovered(topic: string): boolean {
    if (isFixed(this.plan, topic)) return true;
    if (!this.options.isConnected()) return true;
    return this.subs.isCovered(topic);
  }

  /**
   * Covers wait topics, each confirmed by the server (bounded by the cover
   * timeout). Resolves with the topics the server refused and why.
   */
  cover(topics: readonly string[]): Promise<Map<string, string>> {
    return this.subs.cover(
      topics.filter((topic) => needsOwnSubscription(this.plan, topic)),
      this.options.coverTimeout,
    );
  }

  /** Keeps the topics of committed waits subscribed (a wait stored while the bus was away is subscribed here). */
  keep(writes: readonly { readonly flow: Pick<Flow, 'status' | 'wait'> }[]): void {
    for (const write of writes) {
      for (const topic of waitedTopics(write)) if (needsOwnSubscription(this.plan, topic)) this.subs.want(topic);
    }
  }

  /**
   * Binds the subscriptions to a fresh connection: the fixed subjects pinned when
   * no stream captures them (`pinFixed`, core NATS), the topics flows wait on
   * (`waiting`, from the database) wanted, then everything subscribed.
   */
  attach(nc: NatsConnection, pinFixed: boolean, waiting: readonly string[]): void {
    if (pinFixed) for (const subject of this.plan.fixedSubjects) this.subs.pin(subject);
    for (const topic of waiting) if (needsOwnSubscription(this.plan, topic)) this.subs.want(topic);
    this.subs.attach(nc);
  }

  /** Forgets the connection; what is wanted stays wanted for the next one. */
  detach(): void {
    this.subs.detach();
  }

  /**
   * One sweep against `waited`, the topics flows wait on (the database's view):
   * those not subscribed here (waits set by another process) are subscribed, and
   * those no flow waited on for a whole sweep period are unsubscribed. Returns the
   * topics removed.
   */
  sweep(waited: ReadonlySet<string>): string[] {
    for (const topic of waited) {
      if (needsOwnSubscription(this.plan, topic) && !this.subs.isCovered(topic)) this.subs.want(topic);
    }
    return this.subs.sweep(waited);
  }
}

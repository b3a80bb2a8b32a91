import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';

/** Options of {@link TopicSubscriptions}. */
export interface TopicSubscriptionsOptions {
  /** The queue group: processes sharing it share the messages (one of them gets each). */
  queue: string;
  /** Every message on a covered subject, in arrival order. */
  onMessage(msg: Msg): void;
  /** The server refused a subscription (a permissions violation): the subject is not covered. */
  onRefused(subject: string, reason: string): void;
}

/**
 * The plain (core NATS) subscriptions of the bridge, one per subject, each in the
 * bridge's queue group. Two kinds: pinned subjects (the declared patterns and the
 * resume subject on a server without JetStream) live as long as the bridge; wait
 * topics come and go with the waits: {@link sweep} removes those no flow waited on
 * for a whole sweep period. A subscription costs the server one interest entry and
 * changes nothing for other clients: a request/reply service on the subject keeps
 * answering, and nothing captures its traffic. Each subject succeeds or fails on
 * its own. Survives reconnects (the client re-subscribes) and new connections
 * ({@link attach}).
 */
export class TopicSubscriptions {
  private readonly options: TopicSubscriptionsOptions;
  private nc: NatsConnection | undefined;
  private readonly subs = new Map<string, Subscription>();
  private readonly pinned = new Set<string>();
  /** Wait topics by the sweep epoch in which a wait last needed them. */
  private readonly wanted = new Map<string, number>();
  /** Subjects the server refused, with its reason. */
  private readonly refusals = new Map<string, string>();
  private epoch = 0;
  /** Subjects a {@link cover} call is confirming: their refusal is its caller's to report. */
  private readonly confirming = new Map<string, number>();

  constructor(options: TopicSubscriptionsOptions) {
    this.options = options;
  }

  /** How many wait topics are subscribed (pinned subjects not counted). */
  get topicCount(): number {
    let count = 0;
    for (const subject of this.subs.keys()) if (!this.pinned.has(subject)) count++;
    return count;
  }

  /** Whether a subscription on `subject` is live on the current connection. */
  isCovered(subject: string): boolean {
    return this.subs.has(subject);
  }

  /** The server's reason for refusing `subject`, if it did. */
  refusal(subject: string): string | undefined {
    return this.refusals.get(subject);
  }

  /** Every subscribed wait topic, sorted. */
  topics(): string[] {
    return [...this.subs.keys()].filter((s) => !this.pinned.has(s)).sort();
  }

  /** Subscribes everything wanted on a new connection. */
  attach(nc: NatsConnection): void {
    this.nc = nc;
    this.subs.clear();
    for (const subject of this.pinned) this.subscribe(subject);
    for (const subject of this.wanted.keys()) this.subscribe(subject);
  }

  /** Forgets the connection (closed or being replaced); what is wanted stays wanted. */
  detach(): void {
    this.nc = undefined;
    this.subs.clear();
  }

  /** A subject covered as long as the bridge runs (never swept). */
  pin(subject: string): void {
    this.pinned.add(subject);
    this.subscribe(subject);
  }

  /**
   * Marks `subject` as needed by a wait now (so the next sweep keeps it) and
   * subscribes it when it is not. A subject the server refused before is tried again.
   */
  want(subject: string): void {
    this.wanted.set(subject, this.epoch);
    if (this.refusals.delete(subject)) this.subs.delete(subject);
    this.subscribe(subject);
  }

  /**
   * Subscribes `subjects` and waits (at most `timeoutMs`) for the server to have
   * seen them. Resolves with the subjects it refused and why; a subject whose
   * answer did not come in time is not in the map (it stays subscribed).
   */
  async cover(subjects: readonly string[], timeoutMs: number): Promise<Map<string, string>> {
    const refused = new Map<string, string>();
    for (const subject of subjects) this.confirming.set(subject, (this.confirming.get(subject) ?? 0) + 1);
    try {
      for (const subject of subjects) this.want(subject);
      const nc = this.nc;
      if (!nc) return refused;
      // The server answers a refused SUB with -ERR before the PONG of this flush.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([nc.flush().catch(() => undefined), timeout]);
      clearTimeout(timer);
      for (const subject of subjects) {
        const reason = this.refusals.get(subject);
        if (reason !== undefined) refused.set(subject, reason);
      }
      return refused;
    } finally {
      for (const subject of subjects) {
        const left = (this.confirming.get(subject) ?? 1) - 1;
        if (left > 0) this.confirming.set(subject, left);
        else this.confirming.delete(subject);
      }
      // A refused topic no wait holds is not kept wanted.
      for (const subject of refused.keys()) this.wanted.delete(subject);
    }
  }

  /**
   * One sweep: a wait topic no flow waits on (`waited`, the database's view) and
   * that no wait asked for since the previous sweep is unsubscribed. Returns the
   * subjects removed. A wait being set while the sweep runs asked for its topic
   * in this period, so it is kept until the next one, when its flow is in `waited`.
   */
  sweep(waited: ReadonlySet<string>): string[] {
    const previous = this.epoch;
    this.epoch++;
    const removed: string[] = [];
    for (const [subject, lastWanted] of this.wanted) {
      if (waited.has(subject)) {
        this.wanted.set(subject, this.epoch);
        continue;
      }
      if (lastWanted >= previous) continue;
      this.wanted.delete(subject);
      this.refusals.delete(subject);
      const sub = this.subs.get(subject);
      this.subs.delete(subject);
      if (sub && !this.pinned.has(subject)) {
        try {
          sub.unsubscribe();
        } catch {
          // A closed connection has no subscription left to remove.
        }
      }
      removed.push(subject);
    }
    return removed;
  }

  private subscribe(subject: string): void {
    const nc = this.nc;
    if (!nc || this.subs.has(subject) || nc.isClosed() || nc.isDraining()) return;
    const sub = nc.subscribe(subject, {
      queue: this.options.queue,
      callback: (error, msg) => {
        if (error) {
          // The client calls back with the server's -ERR and closes the subscription.
          if (this.subs.get(subject) === sub) this.subs.delete(subject);
          const reason = error.message;
          this.refusals.set(subject, reason);
          if (!this.confirming.has(subject)) this.options.onRefused(subject, reason);
          return;
        }
        this.options.onMessage(msg);
      },
    });
    this.subs.set(subject, sub);
  }
}

import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { FlowError } from '../errors.js';
import type { Logger } from '../logger.js';
import { subjectMatches } from './subject.js';

/** Options of {@link JetStreamIntake}. */
export interface JetStreamIntakeOptions {
  stream: string;
  durable: string;
  /** Exactly the subjects the stream captures: the resume subject and the declared patterns. */
  subjects: readonly string[];
  logger: Logger;
  /**
   * Handles a batch of messages (committed in one transaction) and acks, naks or
   * terminates each once that transaction settled. Never rejects.
   */
  handleBatch(msgs: JsMsg[]): Promise<void>;
  /** Whether the connection is up right now (a failed pull then means the consumer may be gone). */
  isConnected(): boolean;
}

const ACK_WAIT_MS = 30_000;
/** Messages one pull request asks for. */
const PULL_BATCH = 512;
/** Messages committed in one transaction at most. */
const COMMIT_BATCH = 256;
/** Messages held for a commit before the pull loop waits for one to finish. */
const MAX_HELD = 4 * COMMIT_BATCH;
/** The shortest expiry a pull request may have; also the longest a close waits for the last one. */
const PULL_EXPIRES_MS = 1_000;
const PULL_RETRY_MS = 100;
const RECOVER_DELAY_MS = 500;

/** Another stream on the server that captures a subject, by name. */
export interface ForeignStream {
  name: string;
  subjects: string[];
}

/**
 * The JetStream half of the bridge: a work-queue stream over exactly the declared
 * subjects (created, or its subject list set, on {@link setUp}), a durable pull
 * consumer, and the loop that pulls from it. Per-wait topics never enter the
 * stream: a server checks a stream's subjects against one another and against
 * every other stream's on each update (measured on nats-server 2.9: 284 ms per
 * update at 1,000 subjects, timeouts at 2,000), so the list stays as short as the
 * host's declaration.
 */
export class JetStreamIntake {
  private readonly nc: NatsConnection;
  private readonly jsm: JetStreamManager;
  private readonly options: JetStreamIntakeOptions;
  private consuming: Promise<void> | undefined;
  private batch: ConsumerMessages | undefined;
  private stopping = false;
  /** Messages pulled and not yet handed to a commit. */
  private held: JsMsg[] = [];
  /** The commit loop, while it runs: one batch at a time, in arrival order. */
  private committing: Promise<void> | undefined;
  /** The stream's creation time: with the sequence, an event id stable across redeliveries. */
  created = '';

  constructor(nc: NatsConnection, jsm: JetStreamManager, options: JetStreamIntakeOptions) {
    this.nc = nc;
    this.jsm = jsm;
    this.options = options;
  }

  /** Creates the stream and the consumer, or brings the stream's subjects to the declared ones. */
  async setUp(): Promise<void> {
    await this.ensureStream();
    await this.ensureConsumer();
  }

  /** The other streams on the server and the subjects they capture. */
  async foreignStreams(): Promise<ForeignStream[]> {
    const found: ForeignStream[] = [];
    for await (const info of this.jsm.streams.list()) {
      if (info.config.name === this.options.stream) continue;
      found.push({ name: info.config.name, subjects: [...(info.config.subjects ?? [])] });
    }
    return found;
  }

  /** Starts the pull loop. */
  start(): void {
    if (this.consuming) return;
    this.consuming = this.pullLoop();
  }

  /**
   * Stops pulling. Connected: the last pull request ends within its expiry and every
   * message it brought is handled and acked. Disconnected (or stuck): the pull is
   * stopped; what it held is redelivered after the ack wait. Bounded either way.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    const consuming = this.consuming;
    if (!consuming) return;
    if (!this.options.isConnected()) await this.batch?.close().catch(() => undefined);
    const ended = await Promise.race([consuming.then(() => true), sleep(PULL_EXPIRES_MS + 1_000).then(() => false)]);
    if (!ended) {
      await this.batch?.close().catch(() => undefined);
      await Promise.race([consuming, sleep(1_000)]);
    }
  }

  private async ensureStream(): Promise<void> {
    const { stream, subjects } = this.options;
    let info: StreamInfo | undefined;
    try {
      info = await this.jsm.streams.info(stream);
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    }
    try {
      if (!info) {
        info = await this.jsm.streams.add({
          name: stream,
          subjects: [...subjects],
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          duplicate_window: nanos(2 * 60_000),
        });
        this.options.logger.info({ stream }, 'taskflow: JetStream stream created');
      } else if (!sameSet(info.config.subjects ?? [], subjects)) {
        // Exactly the declared subjects: topics an older version added one by one are dropped
        // (their waits are covered by subscriptions now); messages already stored stay.
        info = await this.jsm.streams.update(stream, { subjects: [...subjects] });
        this.options.logger.info({ stream, subjects }, 'taskflow: JetStream stream subjects set');
      }
    } catch (error) {
      if (error instanceof JetStreamApiError) throw await this.overlapError(error);
      throw error;
    }
    this.created = String(Date.parse(info.created) || info.created);
  }

  /** A refused stream change, explained: which other stream holds which subject, and what to change. */
  private async overlapError(error: JetStreamApiError): Promise<Error> {
    const { stream, subjects } = this.options;
    const holders = await this.foreignStreams().catch(() => []);
    const clashes = holders.flatMap((other) =>
      other.subjects.filter((held) => subjects.some((s) => subjectMatches(s, held) || subjectMatches(held, s))).map((held) => `${held} (stream ${other.name})`),
    );
    if (clashes.length === 0 && !/overlap/i.test(error.message)) return error;
    return new FlowError(
      'invalid_input',
      `cannot set up JetStream stream ${stream}: ${error.message}. Its subjects overlap another stream's` +
        (clashes.length > 0 ? `: ${clashes.join(', ')}` : '') +
        `. Reuse that stream's name (nats.stream), or give this runtime subjects of its own (nats.resumeSubject, nats.subjects)`,
      { cause: error },
    );
  }

  private async ensureConsumer(): Promise<void> {
    const { stream, durable } = this.options;
    try {
      await this.jsm.consumers.info(stream, durable);
      return;
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound)) throw error;
    }
    await this.jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ACK_WAIT_MS),
      max_deliver: -1,
    });
  }

  /**
   * Pulls in batches (`fetch`, each pull request expiring after {@link PULL_EXPIRES_MS})
   * rather than with an open-ended `consume`: on stop the last pull request is
   * waited out and every message it brought is handled and acked, so none is left
   * delivered-but-unacked on the server until its ack wait runs out.
   *
   * Messages go to the commit loop ({@link commitHeld}), which commits what has
   * arrived meanwhile in one transaction: one message alone when events trickle
   * in (no added latency), up to {@link COMMIT_BATCH} at a time under load. The
   * next pull is asked for while a commit runs.
   */
  private async pullLoop(): Promise<void> {
    const { stream, durable, logger } = this.options;
    let consumer: Consumer | undefined;
    try {
      while (!this.stopping && !this.nc.isClosed()) {
        const began = Date.now();
        let handled = 0;
        let failed = false;
        try {
          consumer ??= await jetstream(this.nc).consumers.get(stream, durable);
          const batch = await consumer.fetch({ max_messages: PULL_BATCH, expires: PULL_EXPIRES_MS });
          this.batch = batch;
          for await (const msg of batch) {
            this.held.push(msg);
            handled++;
            // Nothing more arrived yet (or enough for a batch): commit what is held.
            if (batch.getPending() === 0 || this.held.length >= COMMIT_BATCH) this.commitHeld();
            if (this.held.length >= MAX_HELD) await this.committing;
          }
        } catch (error) {
          if (this.stopping) break;
          failed = true;
          logger.debug({ err: error }, 'taskflow: JetStream pull interrupted; pulling again');
        } finally {
          this.commitHeld();
        }
        if (this.stopping) break;
        // A failed pull while connected (missed heartbeats: the consumer may be gone) checks stream and consumer.
        if (failed && this.options.isConnected()) {
          await this.committing;
          if (await this.recover()) consumer = undefined;
        } else if (failed) {
          await sleep(PULL_RETRY_MS);
        }
        // A pull that ended at once with nothing is not retried in a tight loop.
        if (handled === 0 && Date.now() - began < PULL_EXPIRES_MS / 2) await sleep(PULL_RETRY_MS);
      }
    } finally {
      // Every message pulled is committed and acked (or nak'd) before the loop ends.
      this.commitHeld();
      await this.committing;
    }
  }

  /** Starts the commit loop unless it runs: it takes the held messages, a batch at a time, until none is left. */
  private commitHeld(): void {
    if (this.committing || this.held.length === 0) return;
    this.committing = (async () => {
      try {
        while (this.held.length > 0) {
          // One turn of the event loop first: messages already read from the socket join this batch.
          await new Promise<void>((resolve) => setImmediate(resolve));
          const batch = this.held.splice(0, COMMIT_BATCH);
          await this.options.handleBatch(batch).catch((error: unknown) => this.options.logger.error({ err: error }, 'taskflow: handling NATS messages failed'));
        }
      } finally {
        this.committing = undefined;
      }
    })();
  }

  /** After a failed pull: the stream or consumer may be gone (deleted, or a server that lost its store). Recreates them. */
  private async recover(): Promise<boolean> {
    // Not at once: a server still removing a deleted stream's files can corrupt one recreated under the same name.
    await sleep(RECOVER_DELAY_MS);
    if (!this.options.isConnected() || this.stopping) return false;
    try {
      await this.setUp();
      return true;
    } catch (error) {
      this.options.logger.warn({ err: error }, 'taskflow: JetStream stream or consumer not reachable yet');
      return false;
    }
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  return left.size === new Set(b).size && b.every((s) => left.has(s));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { systemClock, type Clock } from '../clock.js';
import { FlowError } from '../errors.js';
import { inboxDrop, InboxPressure, resolveInboxLimits, type InboxDrop, type InboxDropCounts, type InboxLimits } from '../inbox.js';
import type { Flow } from '../flow.js';
import { defaultLogger, errorText, type Logger } from '../logger.js';
import type { CommitInfo } from '../store/commit-observer.js';
import { cancelMove, resumeMove } from '../moves.js';
import { recurringResumeMove } from '../recurring/moves.js';
import type { BatchCommit, BatchOutcome, ClaimedNotification, Committed, Decision, EventKey, FlowStore, FlowWrite, Loaded, LoadRequest } from '../store/contract.js';
import { NO_TELEMETRY, type EngineTelemetry } from '../telemetry.js';
import { parseInstant } from '../instant.js';
import { normaliseKey, optionalKey, readInput } from '../text.js';
import { checkFlowId, checkJsonValue, DEFAULT_STATE_LIMIT, inputObject, optionsObject, sizedWrite } from '../validate.js';
import { wakeAtOf } from '../wait.js';
import { dueWakeFor, eventWakeFor, signalConditionFor } from '../any-of.js';
import { HeartbeatWriter } from '../doctor/heartbeat.js';
import type { BridgeCover } from '../store/diagnostics.js';
import { checkFirstWait, planStartOrDeliver, startOrDeliverLoad, type PreparedStartOrDeliver, type StartOrDeliverResult } from './start-or-deliver.js';
import type { Wake } from '../wake.js';

/** Called once per resume, at least once, until it resolves. Throw to have it retried with backoff. */
export type ResumeHandler = (flow: Flow, wake: Wake) => Promise<void> | void;

/** Counters of one {@link WaitEngine.tick}. */
export interface TickResult {
  /** Flows resumed because their timer was due. */
  resumed: number;
  /** Waiting flows with a cancel request that were cancelled. */
  cancelled: number;
  /** Flows resumed because their event or manual wait timed out. */
  timedOut: number;
  errors: number;
}

/** An external event for {@link WaitEngine.deliver}. */
export interface EventDelivery {
  topic: string;
  correlationId: string;
  payload?: unknown;
  /**
   * A stable id, unique per topic: a second delivery with the same id on the
   * same topic (within the retention) does nothing. The same id on another
   * topic is another event and is delivered (producers need not coordinate
   * ids across topics). The NATS bridge passes a message's `Nats-Msg-Id` here
   * (from JetStream, without one: its stream and sequence).
   */
  eventId?: string;
  /**
   * When set, only this flow may resume, and only if it waits on (topic,
   * correlationId); otherwise nothing resumes and the event is not kept.
   */
  flowId?: string;
}

/** What became of a delivered event. */
export interface DeliveryResult {
  /** Ids of the flows the event resumed. */
  resumed: string[];
  /** True when no flow waited: the event is kept in the inbox for a later wait. */
  kept: boolean;
  /** True when the event id was seen before: nothing happened. */
  duplicate: boolean;
  /** Set when no flow waited and the inbox was full for the key or in all: the event was dropped (its id not remembered). */
  dropped?: InboxDrop;
}

/** What became of one event of {@link WaitEngine.deliverBatch}: its result, or why it alone was refused. */
export type DeliveryOutcome = { ok: true; result: DeliveryResult } | { ok: false; error: unknown };

/** A manual signal for {@link WaitEngine.signal}. */
export interface SignalInput {
  /** Must match the wait's signal name when the wait names one. */
  signal?: string;
  payload?: unknown;
}

export interface WaitEngineOptions {
  store: FlowStore;
  clock?: Clock;
  /** Default {@link defaultLogger}: warnings and errors to stderr. */
  logger?: Logger;
  onResume?: ResumeHandler;
  /** Safety sweep period in ms. Default 5000. */
  tickInterval?: number;
  /** How long a claimed notification is leased to its handler, in ms. Default 30000. */
  resumeLease?: number;
  /** How long an unmatched event (and a seen event id) is kept, in ms. Default 7 days. */
  eventRetention?: number;
  /** Flows resumed per transaction when many are due at once. Default 500. */
  batchSize?: number;
  /**
   * `onResume` handlers running at once. Each notification is handled on its own:
   * a slow handler holds one slot, and one still running after its lease frees it.
   * Default {@link DEFAULT_RESUME_CONCURRENCY}.
   */
  resumeConcurrency?: number;
  /**
   * Deliveries of one notification (failures and expired leases) before it is
   * parked as dead: kept with its last error, never claimed again until
   * {@link WaitEngine.requeueDead}. Default {@link DEFAULT_MAX_RESUME_ATTEMPTS}.
   */
  maxResumeAttempts?: number;
  /** Background work that fails on the store retries after `initialMs`, doubling up to `maxMs`. Default 100 ms and 30 s. */
  storageBackoff?: { initialMs?: number; maxMs?: number };
  /** Caps of the inbox of unmatched events. Default 10 per key, 10,000 in all. */
  inbox?: Partial<InboxLimits>;
  /** Bytes of JSON state a flow may hold: an event or signal payload that would take it over is refused. Default 1 MiB. */
  stateLimit?: number;
  /** Spans of resumes and deliveries, counts of attempts and dead notifications. Default none. */
  telemetry?: EngineTelemetry;
  /**
   * What the runtime's NATS bridge covers, recorded with the heartbeat the started
   * engine writes at most every 5 s (`taskflow doctor` reads it). Default: no bridge.
   */
  heartbeat?: () => BridgeCover | null;
}

/** Default of {@link WaitEngineOptions.resumeConcurrency}. */
export const DEFAULT_RESUME_CONCURRENCY = 16;
/** Default of {@link WaitEngineOptions.maxResumeAttempts}. */
export const DEFAULT_MAX_RESUME_ATTEMPTS = 10;

const MAX_HOST_DELAY = 2_147_483_647;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 5 * 60_000;
const NOTIFICATION_BATCH = 100;
/** Flows in the first batch of a tick: their handlers start after a small commit; later batches grow to `batchSize`. */
const FIRST_DUE_BATCH = 16;
/** Due batches committing at once (SKIP LOCKED gives each its own rows). */
const DUE_BATCHES_IN_FLIGHT = 2;
/** How long delivered notifications wait to be removed together. */
const FLUSH_DELAY_MS = 100;
/** First delay of a host timer re-armed because the last one found nothing to do; it doubles up to the sweep period. */
const IDLE_REARM_MS = 20;

/**
 * Wakes waiting flows: timers at their deadline (one host timer, armed for the
 * earliest wake time read by index), events by (topic, correlation id), manual
 * signals, wait timeouts; and hands every resume to `onResume`, at least once,
 * each notification on its own with at most `resumeConcurrency` handlers at once.
 *
 * Background work (the sweep, the host timers, deliveries) that fails on the
 * store backs off exponentially and logs once when it starts failing and once
 * when it recovers. A started engine keeps the process alive until {@link stop}.
 */
export class WaitEngine {
  private readonly store: FlowStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onResume: ResumeHandler | undefined;
  private readonly telemetry: EngineTelemetry;
  private readonly tickInterval: number;
  private readonly resumeLease: number;
  private readonly eventRetention: number;
  private readonly batchSize: number;
  private readonly resumeConcurrency: number;
  private readonly maxResumeAttempts: number;
  private readonly backoffInitial: number;
  private readonly backoffMax: number;
  private readonly inbox: InboxPressure;
  private readonly stateLimit: number;
  private readonly heartbeat: HeartbeatWriter;

  private running = false;
  /** The one ref'd handle while running: it keeps the process alive. */
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  /** The clock time the wake timer checks at. */
  private armedAt: number | undefined;
  /** Consecutive wake-timer firings before the clock reached the time armed for (a ManualClock never does by itself). */
  private earlyWakes = 0;
  /** The wake timer fired at a time the clock reached: the next tick skips its "anything due?" read. */
  private dueKnown = false;
    /** Consecutive ticks that found due flows yet resumed none (rows locked by another engine). */
  private stillDue = 0;
  private notifyTimer: NodeJS.Timeout | undefined;
  private notifyArmedAt: number | undefined;
  /** Consecutive claim rounds that claimed nothing. */
  private idleRounds = 0;
  private ticking: Promise<void> | undefined;
  private tickAgain = false;
  private delivering: Promise<Promise<void>[]> | undefined;
  private deliverAgain = false;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private unwatch: (() => void) | undefined;
  /** Handlers running within their lease, by notification id: each holds a slot, and is not claimed again meanwhile. */
  private readonly active = new Map<number, Promise<void>>();
  /** Slots promised to a claim in flight. */
  private reserved = 0;
  /**
   * Notifications claimed ahead of a free slot (see `prefetchRoom`), in claim order:
   * a burst is claimed in the commits that resume it, not in one commit per slot.
   * Each starts when a slot frees, unless half its lease is gone (it is then left
   * to be redelivered when the lease ends).
   */
  private readonly pending: { notification: ClaimedNotification; leaseEnd: number; settle: () => void }[] = [];
  private readonly prefetch: number;
  /** Recent duration of a successful handler, in ms (-1 until one has finished). */
  private handlerMs = -1;
  /** Due notifications were left unclaimed for want of a slot: a finishing handler claims again. */
  private backlog = false;
  /** Delivered notifications not yet removed: they ride along with the next commit, or a flush. */
  private readonly delivered: number[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  /** Storage state of the background work, as logged: failing since the first failure, until a whole sweep succeeds. */
  private failing = false;
  /** The host timers stay disarmed until the next retry sweep: it does their work. */
  private backingOff = false;
  private failureCount = 0;
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(options: WaitEngineOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? defaultLogger;
    this.onResume = options.onResume;
    this.telemetry = options.telemetry ?? NO_TELEMETRY;
    this.tickInterval = options.tickInterval ?? 5_000;
    this.resumeLease = options.resumeLease ?? 30_000;
    this.eventRetention = options.eventRetention ?? 7 * 86_400_000;
    this.batchSize = options.batchSize ?? 500;
    this.resumeConcurrency = positiveInteger(options.resumeConcurrency ?? DEFAULT_RESUME_CONCURRENCY, 'resumeConcurrency');
    this.maxResumeAttempts = positiveInteger(options.maxResumeAttempts ?? DEFAULT_MAX_RESUME_ATTEMPTS, 'maxResumeAttempts');
    this.backoffInitial = options.storageBackoff?.initialMs ?? 100;
    this.backoffMax = options.storageBackoff?.maxMs ?? 30_000;
    this.inbox = new InboxPressure(resolveInboxLimits(options.inbox), this.logger);
    this.stateLimit = options.stateLimit ?? DEFAULT_STATE_LIMIT;
    this.heartbeat = new HeartbeatWriter(this.store, this.clock, this.logger, options.heartbeat ?? (() => null));
    this.prefetch = 2 * this.batchSize + 4 * this.resumeConcurrency;
  }

  /** Unmatched events dropped because the inbox was full, by reason, since this engine was made. */
  get inboxDrops(): InboxDropCounts {
    return this.inbox.dropped;
  }

  /**
   * Told of every committed write (through `observeCommits`): a new wait with a
   * wake time re-arms the timer when it is earlier; notifications queued but not
   * claimed by this engine are delivered at once.
   */
  committed(writes: readonly FlowWrite[], info: CommitInfo): void {
    for (const { flow } of writes) {
      const wakeAt = flow.status === 'waiting' && flow.wait ? wakeAtOf(flow.wait) : undefined;
      if (wakeAt) this.arm(wakeAt.getTime());
    }
    if (!info.claimed && writes.some((write) => write.wake !== undefined)) this.kickNotifications();
  }

  /**
   * Re-arms the timer from the database, starts the sweep, delivers due
   * notifications, and watches for writes committed by other processes. From
   * here until {@link stop} the engine keeps the process alive, as a listening
   * server does. A store that fails now does not fail the start: the engine
   * backs off and carries on once it answers.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      this.unwatch = this.store.watchForeignCommits(() => this.foreignCommit());
    } catch (error) {
      this.logger.warn({ err: error }, 'taskflow: watching for commits of other processes failed; they are seen at the next sweep');
    }
    this.sweepTimer = setInterval(() => {
      if (!this.retryTimer) void this.sweep();
    }, this.tickInterval);
    await this.sweep();
  }

  /**
   * Stops every host timer and waits for the work in progress, including running
   * `onResume` handlers, for at most one `resumeLease` in all (a handler still
   * running then is redelivered after its lease, by whichever engine runs next).
   * Nothing of the engine keeps the process alive afterwards.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.unwatch?.();
    this.unwatch = undefined;
    clearInterval(this.sweepTimer);
    for (const timer of [this.wakeTimer, this.notifyTimer, this.retryTimer]) clearTimeout(timer);
    this.sweepTimer = this.wakeTimer = this.notifyTimer = this.retryTimer = undefined;
    this.armedAt = this.notifyArmedAt = undefined;
    // Claimed but not started: redelivered when their lease ends.
    for (const waiting of this.pending.splice(0)) waiting.settle();
    let leaseTimer: NodeJS.Timeout | undefined;
    const leaseEnd = new Promise<void>((resolve) => {
      leaseTimer = setTimeout(resolve, this.resumeLease);
      leaseTimer.unref?.();
    });
    const atMostOneLease = (work: Promise<unknown>) => Promise.race([work.then(() => undefined), leaseEnd]);
    try {
      await atMostOneLease(Promise.allSettled([this.sweeping, this.ticking, this.delivering, this.refreshing]));
      await atMostOneLease(Promise.allSettled([...this.active.values()]));
      await atMostOneLease(
        this.flushDelivered().catch((error: unknown) => this.logger.warn({ err: error }, 'taskflow: removing delivered notifications failed; they will be delivered again')),
      );
    } finally {
      clearTimeout(leaseTimer);
    }
  }

  /**
   * Resumes every flow whose timer or timeout is due at `now`, by indexed query,
   * in batches of `batchSize` flows per transaction.
   */
  async tick(now: number | Date = this.clock.now()): Promise<TickResult> {
    const at = parseInstant(now, 'tick time').getTime();
    const { result, error } = await this.resumeDue(at);
    if (error !== undefined) this.logger.error({ err: error }, 'taskflow: resuming due flows failed');
    return result;
  }

  /**
   * {@link tick}'s work; a failed batch ends it and is returned, not logged.
   * Batches start small (their handlers start as soon as the first few flows are
   * committed) and grow to `batchSize`; two are in flight at once, each taking
   * rows the other has not locked, so one commits while the next is written.
   */
  private async resumeDue(at: number): Promise<{ result: TickResult; error?: unknown }> {
    const total: TickResult = { resumed: 0, cancelled: 0, timedOut: 0, errors: 0 };
    // An indexed read answers "nothing due" without taking the write lock (unless the host timer just said so).
    const known = this.dueKnown;
    this.dueKnown = false;
    if (!known) {
      const next = await this.store.nextWakeAt();
      if (next === undefined || next > at) return { result: total };
    }
    let size = Math.min(this.batchSize, FIRST_DUE_BATCH);
    let more = true;
    let failure: { error: unknown } | undefined;
    const inFlight = new Set<Promise<void>>();
    const launch = (limit: number): void => {
      const batch = this.commitWakes({ due: { now: at, limit } }, (loaded) => this.planDue(loaded.flows, at)).then(
        (done) => {
          total.resumed += done.resumed;
          total.cancelled += done.cancelled;
          total.timedOut += done.timedOut;
          total.errors += done.errors;
          if (done.size < limit) more = false;
        },
        (error: unknown) => {
          total.errors++;
          failure ??= { error };
          more = false;
        },
      );
      inFlight.add(batch);
      void batch.finally(() => inFlight.delete(batch));
    };
    while (more) {
      launch(size);
      size = Math.min(this.batchSize, size * 4);
      // The first batch alone (a lone due timer costs one transaction), then two at a time.
      if (inFlight.size >= DUE_BATCHES_IN_FLIGHT || total.resumed + total.cancelled + total.timedOut === 0) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return failure ? { result: total, error: failure.error } : { result: total };
  }

  private planDue(flows: Flow[], nowMs: number): Decision<TickResult & { size: number }> {
    const now = new Date(nowMs);
    const result = { resumed: 0, cancelled: 0, timedOut: 0, errors: 0, size: flows.length };
    const writes: FlowWrite[] = [];
    for (const flow of flows) {
      if (flow.cancelRequested) {
        writes.push(cancelMove(flow, now));
        result.cancelled++;
      } else if (flow.wait?.kind === 'recurring') {
        writes.push(recurringResumeMove(flow, now));
        result.resumed++;
      } else {
        const wake = dueWakeFor(flow.wait, now);
        writes.push(resumeMove(flow, now, wake));
        if (wake.reason === 'timer') result.resumed++;
        else result.timedOut++;
      }
    }
    return { result, writes };
  }


  /**
   * Resumes every flow waiting on the event's (topic, correlation id) with
   * `state.resume_event = payload`. When none waits, the event is kept in the
   * inbox for a later wait. A repeated `eventId` does nothing. With `flowId`, only
   * that flow resumes, if it waits on this key; the event is never kept.
   */
  async deliver(event: EventDelivery): Promise<DeliveryResult> {
    return this.telemetry.deliver(event, () => this.deliverNow(event));
  }

  private async deliverNow(event: EventDelivery): Promise<DeliveryResult> {
    const { load, plan, key } = this.planDelivery(event);
    const result = await this.commitWakes(load, plan);
    if (result.dropped) this.inbox.drop(result.dropped, key);
    return result;
  }

  /**
   * Delivers several events in one transaction (one fsync), as {@link deliver}
   * would one after the other: each sees what the ones before it wrote (a repeated
   * event id is a duplicate, a flow the first resumed no longer waits for the
   * second). An event refused on its own (a bad key, a payload over the state
   * limit) fails alone, written nothing; the others commit. Rejects, with nothing
   * written, when the store fails (the whole batch may then be delivered again).
   * Outcomes in input order.
   */
  async deliverBatch(events: readonly EventDelivery[]): Promise<DeliveryOutcome[]> {
    // One telemetry span per event, each ending once the batch settled.
    const settles: { resolve(result: DeliveryResult): void; reject(error: unknown): void }[] = [];
    const results = events.map(() => new Promise<DeliveryResult>((resolve, reject) => settles.push({ resolve, reject })));
    const spans = events.map((event, index) =>
      this.telemetry.deliver(event, () => results[index]!).then(
        (result): DeliveryOutcome => ({ ok: true, result }),
        (error: unknown): DeliveryOutcome => ({ ok: false, error }),
      ),
    );
    const planned: { index: number; key: EventKey; item: BatchCommit<DeliveryResult> }[] = [];
    const refusals = new Map<number, unknown>();
    events.forEach((event, index) => {
      try {
        const { load, plan, key } = this.planDelivery(event);
        planned.push({ index, key, item: { load, plan } });
      } catch (error) {
        refusals.set(index, error);
      }
    });
    let committed: BatchOutcome<DeliveryResult>[];
    try {
      committed = planned.length === 0 ? [] : await this.commitWakesBatch(planned.map((p) => p.item));
    } catch (error) {
      for (const settle of settles) settle.reject(error);
      await Promise.all(spans);
      throw error;
    }
    for (const [index, error] of refusals) settles[index]!.reject(error);
    planned.forEach(({ index, key }, i) => {
      const outcome = committed[i]!;
      if (!outcome.ok) return settles[index]!.reject(outcome.error);
      if (outcome.result.dropped) this.inbox.drop(outcome.result.dropped, key);
      settles[index]!.resolve(outcome.result);
    });
    return Promise.all(spans);
  }

  /** Checks an event and plans its delivery; throws `invalid_input` for a malformed one. */
  private planDelivery(event: EventDelivery): { load: LoadRequest; plan: (loaded: Loaded) => Decision<DeliveryResult>; key: EventKey } {
    const { topic, correlationId, eventId, onlyFlow, payload } = readInput('event', () => {
      const e = inputObject(event, 'event');
      return {
        topic: normaliseKey(e.topic, 'topic'),
        correlationId: normaliseKey(e.correlationId, 'correlationId'),
        eventId: optionalKey(e.eventId, 'eventId'),
        onlyFlow: optionalKey(e.flowId, 'flowId')?.toLowerCase(),
        payload: checkJsonValue(e.payload, this.stateLimit, 'the event payload')?.value,
      };
    });
    const nowMs = this.clock.now();
    const now = new Date(nowMs);
    const expiresAt = new Date(nowMs + this.eventRetention);
    const key = { topic, correlationId };
    const load: LoadRequest = { waitingOn: key, inboxFill: true, ...(eventId ? { eventId: { id: eventId, now: nowMs } } : {}) };
    const plan = (loaded: Loaded): Decision<DeliveryResult> => {
      if (loaded.eventSeen) return { result: { resumed: [], kept: false, duplicate: true } };
      const dropped = loaded.flows.length === 0 && loaded.inbox ? inboxDrop(loaded.inbox, this.inbox.limits) : undefined;
      if (dropped) return { result: { resumed: [], kept: false, duplicate: false, dropped } };
      const decision: Decision<DeliveryResult> = { result: { resumed: [], kept: false, duplicate: false } };
      if (eventId) decision.rememberEventId = { id: eventId, expiresAt };
      // An event naming its flow is for that flow alone: never kept for another waiter.
      const flows = onlyFlow === undefined ? loaded.flows : loaded.flows.filter((flow) => flow.id === onlyFlow);
      if (onlyFlow !== undefined && flows.length === 0) return decision;
      if (flows.length === 0) {
        decision.keepEvent = { key, payload, receivedAt: now, expiresAt, ...(eventId ? { eventId } : {}) };
        decision.result.kept = true;
        return decision;
      }
      const wake: Wake = { reason: 'event', at: now, topic, correlationId };
      if (payload !== undefined) wake.payload = payload;
      // One flow whose state the payload would take over the limit refuses the whole delivery (invalid_input).
      decision.writes = flows.map((flow) => sizedWrite(resumeMove(flow, now, eventWakeFor(flow.wait, wake)), flow.state, this.stateLimit, 'the event payload'));
      decision.result.resumed = flows.map((flow) => flow.id);
      return decision;
    };
    return { load, plan, key };
  }

  /** Records this engine's heartbeat now, if it runs (the runtime calls it when its bridge connects). */
  async heartbeatNow(): Promise<void> {
    if (this.running) await this.heartbeat.beat(true);
  }

  /**
   * `tf.startOrDeliver` after its input was checked: one commit that starts the
   * flow of an idempotency key when the owner has none and delivers the event by
   * its key (see {@link planStartOrDeliver}).
   */
  async startOrDeliver(input: PreparedStartOrDeliver): Promise<StartOrDeliverResult> {
    checkFirstWait(input.wait, input.event);
    let result: StartOrDeliverResult | undefined;
    await this.telemetry.deliver(input.event, async () => {
      const nowMs = this.clock.now();
      const rules = { retention: this.eventRetention, inbox: this.inbox.limits, stateLimit: this.stateLimit };
      result = await this.commitWakes(startOrDeliverLoad(input, nowMs), (loaded) => planStartOrDeliver(input, loaded, nowMs, rules));
      return result.delivery;
    });
    if (result!.delivery.dropped) this.inbox.drop(result!.delivery.dropped, input.event);
    return result!;
  }

  /**
   * Resumes a flow on a manual wait. A wait that names a signal accepts only that
   * name; a wait on something else, or a flow not waiting, refuses the signal.
   */
  async signal(flowId: string, input: SignalInput = {}): Promise<Flow> {
    const id = checkFlowId(flowId);
    const { name, payload } = readInput('signal input', () => {
      const i = optionsObject(input, 'signal input');
      return { name: optionalKey(i.signal, 'signal'), payload: checkJsonValue(i.payload, this.stateLimit, 'the signal payload')?.value };
    });
    const now = new Date(this.clock.now());
    const flow = await this.commitWakes({ flowIds: [id] }, (loaded): Decision<Flow> => {
      const current = loaded.flows[0];
      if (!current) throw new FlowError('not_found', `no flow with id ${id}`);
      if (current.status !== 'waiting' || !current.wait) {
        throw new FlowError('illegal_transition', `flow ${id} is ${current.status}, not waiting: a signal cannot resume it`);
      }
      const wait = current.wait;
      // An any-of wait: the signal must be one of its conditions, which then wins.
      const condition = wait.kind === 'any' ? signalConditionFor(id, wait, name) : undefined;
      if (wait.kind !== 'manual' && wait.kind !== 'any') {
        throw new FlowError('invalid_input', `flow ${id} waits for ${wait.kind === 'timer' ? 'a timer' : wait.kind === 'recurring' ? 'an occurrence of its schedule' : 'an external event'}, not a signal`);
      }
      if (wait.kind === 'manual' && wait.signal !== undefined && wait.signal !== name) {
        throw new FlowError('invalid_input', `flow ${id} waits for the signal "${wait.signal}", not ${name === undefined ? 'an unnamed one' : `"${name}"`}`);
      }
      const wake: Wake = { reason: 'signal', at: now };
      if (name !== undefined) wake.signal = name;
      if (payload !== undefined) wake.payload = payload;
      if (condition !== undefined) wake.condition = condition;
      const write = sizedWrite(resumeMove(current, now, wake), current.state, this.stateLimit, 'the signal payload');
      return { result: write.flow, writes: [write] };
    });
    return flow;
  }

  /** The earliest timer or timeout among waiting flows. */
  async nextDueAt(): Promise<Date | undefined> {
    const at = await this.store.nextWakeAt();
    return at === undefined ? undefined : new Date(at);
  }

  /**
   * Puts a flow's dead notifications (those parked after `maxResumeAttempts`) back
   * in the queue, due now with their attempts reset, and delivers them; with
   * `notificationId`, only that one. Returns how many were re-queued (0 when the
   * flow has none dead). The CLI's `taskflow requeue` does the same.
   */
  async requeueDead(flowId: string, options: { notificationId?: number } = {}): Promise<number> {
    const id = checkFlowId(flowId);
    const { notificationId } = options;
    if (notificationId !== undefined && (!Number.isSafeInteger(notificationId) || notificationId < 1)) {
      throw new FlowError('invalid_input', 'notificationId must be a positive integer');
    }
    const count = await this.store.requeueDead(id, this.clock.now(), notificationId);
    if (count > 0) this.kickNotifications();
    return count;
  }

  /**
   * Claims due notifications into the free handler slots and starts their
   * handlers; resolves once the handlers it started have settled and the
   * delivered ones are removed. The engine's own deliveries never wait on
   * handlers: each runs on its own.
   */
  async deliverNotifications(): Promise<void> {
    const started = await this.claimRounds();
    await Promise.allSettled(started);
    await this.flushDelivered();
  }

  /** One claim loop at a time; a request during one runs one more round in it. */
  private claimRounds(): Promise<Promise<void>[]> {
    if (this.delivering) {
      this.deliverAgain = true;
      return this.delivering;
    }
    this.delivering = this.claimLoop().finally(() => {
      this.delivering = undefined;
    });
    return this.delivering;
  }

  private async claimLoop(): Promise<Promise<void>[]> {
    const started: Promise<void>[] = [];
    if (!this.onResume) return started;
    let claimedAny = false;
    do {
      this.deliverAgain = false;
      const free = this.freeSlots();
      if (free <= 0) {
        // Every slot is busy: the next handler to finish (or overrun its lease) claims again.
        this.backlog = true;
        return started;
      }
      const limit = Math.min(NOTIFICATION_BATCH, free);
      this.reserved += limit;
      let claimed: ClaimedNotification[];
      const leaseEnd = this.clock.now() + this.resumeLease;
      try {
        claimed = await this.store.claimNotifications(this.clock.now(), this.resumeLease, limit);
      } finally {
        this.reserved -= limit;
      }
      for (const notification of claimed) {
        const handler = this.dispatch(notification, leaseEnd);
        if (handler) started.push(handler);
      }
      if (claimed.length > 0) claimedAny = true;
      if (claimed.length === limit) this.deliverAgain = true;
    } while (this.deliverAgain && this.running);
    await this.armNotifications(claimedAny);
    return started;
  }

  /** Notifications this engine may still claim: free handler slots plus room to claim ahead. */
  private freeSlots(): number {
    return this.resumeConcurrency + this.prefetchRoom() - this.active.size - this.pending.length - this.reserved;
  }

  /**
   * How many to claim ahead of a free slot: as many as the slots start within a
   * quarter of the lease at the handlers' recent pace (so none waits out half its
   * lease), at most `prefetch`; one round of slots until a handler has finished.
   */
  private prefetchRoom(): number {
    if (this.handlerMs < 0) return Math.min(this.prefetch, this.resumeConcurrency);
    const fit = Math.floor((this.resumeConcurrency * this.resumeLease) / 4 / Math.max(this.handlerMs, 0.01));
    return Math.min(this.prefetch, fit);
  }

  /** Folds a handler's duration into the recent pace (an exponential moving average). */
  private handlerTook(ms: number): void {
    this.handlerMs = this.handlerMs < 0 ? ms : 0.8 * this.handlerMs + 0.2 * ms;
  }

  /** Starts the handler of a claimed notification now if a slot is free, else when one frees. */
  private dispatch(notification: ClaimedNotification, leaseEnd: number): Promise<void> | undefined {
    if (this.active.size < this.resumeConcurrency && this.pending.length === 0) return this.startHandler(notification);
    return new Promise<void>((settle) => this.pending.push({ notification, leaseEnd, settle }));
  }

  /** Starts claimed-ahead notifications while slots are free. */
  private startPending(): void {
    while (this.active.size < this.resumeConcurrency && this.pending.length > 0) {
      const { notification, leaseEnd, settle } = this.pending.shift()!;
      // Half its lease gone while it waited: leave it to the redelivery after the lease.
      if (!this.running || this.clock.now() > leaseEnd - this.resumeLease / 2) {
        settle();
        continue;
      }
      const handler = this.startHandler(notification);
      if (handler) void handler.then(settle);
      else settle();
    }
  }

  /**
   * Commits a plan whose resumes this process delivers itself: their notifications
   * are queued already claimed (as many as there are free slots), handed to
   * `onResume` at once, and removed later in bulk. Notifications delivered since
   * the last commit are removed in this one.
   */
  private async commitWakes<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    if (!this.running || !this.onResume) return this.store.commit(load, plan);
    const done = this.delivered.splice(0);
    let wakes = 0;
    const withDone = (loaded: Loaded): Decision<T> => {
      const decision = plan(loaded);
      wakes = decision.writes?.filter((write) => write.wake !== undefined).length ?? 0;
      return done.length === 0 ? decision : { ...decision, completeNotifications: done };
    };
    // A due batch claims at most its own size, leaving slots for the batch beside it.
    const limit = Math.max(0, Math.min(load.due?.limit ?? Infinity, this.freeSlots()));
    this.reserved += limit;
    let committed: Committed<T>;
    const leaseEnd = this.clock.now() + this.resumeLease;
    try {
      committed = await this.store.commitClaiming(load, withDone, leaseEnd, limit);
    } catch (error) {
      this.delivered.unshift(...done);
      throw error;
    } finally {
      this.reserved -= limit;
    }
    for (const notification of committed.claimed) void this.dispatch(notification, leaseEnd);
    if (wakes > committed.claimed.length) {
      // Queued unclaimed for want of a slot: claim them now if one freed meanwhile, else when one does.
      if (this.freeSlots() > 0) this.kickNotifications();
      else this.backlog = true;
    }
    return committed.result;
  }

  /**
   * {@link commitWakes} for a batch: one transaction, the wakes of all its items
   * claimed (as many as there are free slots) and handed to `onResume` at once.
   */
  private async commitWakesBatch<T>(items: readonly BatchCommit<T>[]): Promise<BatchOutcome<T>[]> {
    if (!this.running || !this.onResume) return this.store.commitBatch(items);
    const done = this.delivered.splice(0);
    const wakes: number[] = items.map(() => 0);
    const counted = items.map(
      (item, i): BatchCommit<T | undefined> => ({
        load: item.load,
        plan: (loaded) => {
          const decision = item.plan(loaded);
          wakes[i] = decision.writes?.filter((write) => write.wake !== undefined).length ?? 0;
          return decision;
        },
      }),
    );
    // Notifications delivered since the last commit are removed in this one, in an item of their own.
    const all: BatchCommit<T | undefined>[] = done.length === 0 ? counted : [{ load: {}, plan: () => ({ result: undefined, completeNotifications: done }) }, ...counted];
    const limit = Math.max(0, this.freeSlots());
    this.reserved += limit;
    let outcomes: BatchOutcome<T | undefined>[];
    try {
      outcomes = await this.store.commitBatch(all, { leaseUntil: this.clock.now() + this.resumeLease, limit });
    } catch (error) {
      this.delivered.unshift(...done);
      throw error;
    } finally {
      this.reserved -= limit;
    }
    if (done.length > 0 && !outcomes.shift()!.ok) this.delivered.unshift(...done);
    let queued = 0;
    let claimed = 0;
    outcomes.forEach((outcome, i) => {
      if (!outcome.ok) return;
      queued += wakes[i]!;
      claimed += outcome.claimed.length;
      for (const notification of outcome.claimed) this.startHandler(notification);
    });
    if (queued > claimed) {
      if (this.freeSlots() > 0) this.kickNotifications();
      else this.backlog = true;
    }
    return outcomes as BatchOutcome<T>[];
  }

  /**
   * Runs the handler of one claimed notification on its own, holding one slot for
   * at most one lease. A delivered notification (or one whose flow is gone) is
   * queued for removal; a failure is recorded with its error and retried with
   * backoff, or parked as dead after `maxResumeAttempts`.
   */
  private startHandler(notification: ClaimedNotification): Promise<void> | undefined {
    const { id, flow, flowId, wake, attempts } = notification;
    // Still running here within its lease (a clock moved by hand made it due again).
    if (this.active.has(id)) return undefined;
    if (!flow) {
      this.complete(id);
      return undefined;
    }
    if (attempts > this.maxResumeAttempts) {
      const reason = `onResume did not finish within its lease (${this.resumeLease} ms) on its last attempt`;
      return this.park(notification, reason, undefined);
    }
    let overdue = false;
    let lease: NodeJS.Timeout | undefined;
    let handler: Promise<void> | undefined;
    // The handler goes on after its first await, so `lease` and `handler` are set before its `finally` runs.
    handler = (async () => {
      const began = performance.now();
      try {
        await this.telemetry.resume({ ...notification, flow }, () => this.onResume!(flow, wake));
        this.handlerTook(performance.now() - began);
        this.complete(id);
      } catch (error) {
        await this.handlerFailed(notification, error);
      } finally {
        clearTimeout(lease);
        if (this.active.get(id) === handler) this.active.delete(id);
        if (!overdue) this.slotFreed();
      }
    })();
    lease = setTimeout(() => {
      overdue = true;
      if (this.active.get(id) === handler) this.active.delete(id);
      if (!this.running) return;
      this.logger.warn(
        { flowId, notificationId: id, attempts, leaseMs: this.resumeLease },
        'taskflow: onResume still running after its lease; it no longer holds a slot and will be delivered again',
      );
      this.slotFreed();
    }, this.resumeLease);
    lease.unref?.();
    this.active.set(id, handler);
    return handler;
  }

  private async handlerFailed(notification: ClaimedNotification, error: unknown): Promise<void> {
    const { id, flowId, attempts } = notification;
    const text = error instanceof Error ? (error.stack ?? errorText(error)) : errorText(error);
    if (attempts >= this.maxResumeAttempts) return this.park(notification, text, error);
    const delay = Math.min(RETRY_BASE_MS * 2 ** (attempts - 1), RETRY_MAX_MS);
    this.logger.warn(
      { err: error, flowId, notificationId: id, attempts, maxAttempts: this.maxResumeAttempts, retryInMs: delay },
      'taskflow: onResume failed; will retry',
    );
    const dueAt = this.clock.now() + delay;
    try {
      await this.store.retryNotification(id, dueAt, text);
    } catch (failure) {
      // Unrecorded, the notification is redelivered when its lease ends.
      this.storageFailed(failure, 'recording a failed delivery');
      return;
    }
    this.armNotifyTimer(dueAt, delay);
  }

  /** Parks a notification as dead, loudly: it stays, with its last error, until an operator requeues it. */
  private async park(notification: ClaimedNotification, text: string, error: unknown): Promise<void> {
    const { id, flowId, attempts } = notification;
    this.logger.error(
      { err: error ?? text, flowId, notificationId: id, attempts },
      `taskflow: onResume failed on all ${this.maxResumeAttempts} attempts; the notification is parked as dead (re-queue it with \`taskflow requeue ${flowId}\` or engine.requeueDead)`,
    );
    this.telemetry.dead(notification);
    try {
      await this.store.parkNotification(id, this.clock.now(), text);
    } catch (failure) {
      this.storageFailed(failure, 'parking a dead notification');
    }
  }

  private complete(id: number): void {
    this.delivered.push(id);
    this.scheduleFlush();
  }

  private slotFreed(): void {
    this.startPending();
    if (!this.backlog || !this.running) return;
    this.backlog = false;
    this.kickNotifications();
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.delivered.length === 0 || !this.running || this.backingOff) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flushDelivered().catch((error: unknown) => this.storageFailed(error, 'removing delivered notifications'));
    }, FLUSH_DELAY_MS);
    this.flushTimer.unref?.();
  }

  /** Removes delivered notifications in one transaction. Losing this write only means one redelivery. */
  private async flushDelivered(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const done = this.delivered.splice(0);
    if (done.length === 0) return;
    try {
      await this.store.completeNotifications(done);
    } catch (error) {
      this.delivered.unshift(...done);
      throw error;
    }
  }

  private kickNotifications(): void {
    if (!this.running || !this.onResume || this.backingOff) return;
    void this.claimRounds().catch((error: unknown) => this.storageFailed(error, 'claiming notifications'));
  }

  /**
   * Arms the notification timer for the earliest due one. Due already, yet the
   * round claimed nothing (another engine holds it, or the clock is not the
   * host's), it looks again later and later, never at once.
   */
  private async armNotifications(claimedAny: boolean): Promise<void> {
    if (!this.running || this.backingOff) return;
    const at = await this.store.nextNotificationAt();
    if (at === undefined) return;
    const remaining = at - this.clock.now();
    if (claimedAny) this.idleRounds = 0;
    else this.idleRounds++;
    this.armNotifyTimer(at, this.idleRounds <= 1 ? remaining : Math.max(remaining, this.idleDelay(this.idleRounds - 1)));
  }

  private armNotifyTimer(at: number, delayMs: number): void {
    if (!this.running || this.backingOff || !this.onResume) return;
    if (this.notifyTimer && this.notifyArmedAt !== undefined && this.notifyArmedAt <= at) return;
    clearTimeout(this.notifyTimer);
    this.notifyArmedAt = at;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      this.notifyArmedAt = undefined;
      this.kickNotifications();
    }, hostDelay(delayMs));
    this.notifyTimer.unref?.();
  }

  /** `IDLE_REARM_MS` doubling with each idle round, at most the sweep period. */
  private idleDelay(rounds: number): number {
    return Math.min(IDLE_REARM_MS * 2 ** Math.min(rounds - 1, 20), this.tickInterval);
  }

  /** Arms the host timer for `at` unless an earlier one is armed. */
  private arm(at: number): void {
    if (!this.running || this.backingOff) return;
    if (this.armedAt !== undefined && this.armedAt <= at) return;
    this.earlyWakes = 0;
    this.armWakeTimer(at, at - this.clock.now());
  }

  private armWakeTimer(at: number, delayMs: number): void {
    clearTimeout(this.wakeTimer);
    this.armedAt = at;
    this.wakeTimer = setTimeout(() => this.onWakeTimer(at), hostDelay(delayMs));
    this.wakeTimer.unref?.();
  }

  private onWakeTimer(at: number): void {
    this.armedAt = undefined;
    this.wakeTimer = undefined;
    if (!this.running || this.backingOff) return;
    const remaining = at - this.clock.now();
    if (remaining > 0) {
      // A host timer may fire a little early, and long delays are clamped: look
      // again for the rest. A clock that keeps not getting there (a ManualClock
      // moves only when told) is looked at less and less often, never in a loop.
      this.earlyWakes++;
      this.armWakeTimer(at, this.earlyWakes <= 1 ? remaining : Math.max(remaining, this.idleDelay(this.earlyWakes - 1)));
      return;
    }
    this.earlyWakes = 0;
    // Armed for a wake time the clock has reached: the tick need not ask whether something is due.
    this.dueKnown = true;
    void this.runTick();
  }

  /**
   * A write committed by another process or connection: re-read the next wake
   * time and re-arm, and deliver the notifications that are due.
   */
  private foreignCommit(): void {
    if (!this.running || this.backingOff) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        try {
          const next = await this.store.nextWakeAt();
          if (next !== undefined) this.arm(next);
          const due = await this.store.nextNotificationAt();
          if (due !== undefined && due <= this.clock.now()) this.kickNotifications();
          else if (due !== undefined) this.armNotifyTimer(due, due - this.clock.now());
        } catch (error) {
          this.storageFailed(error, 'reading what another process committed');
          return;
        }
      } while (this.refreshAgain && this.running);
    })().finally(() => {
      this.refreshing = undefined;
    });
  }

  /** The periodic safety sweep, also the retry after a storage failure: a sweep with no failure ends the failing state. */
  private sweep(): Promise<void> {
    if (this.sweeping) return this.sweeping;
    this.sweeping = this.sweepOnce().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    const failuresBefore = this.failureCount;
    // This sweep re-arms the host timers (a failure in it disarms them again).
    this.backingOff = false;
    await this.runTick();
    // A beat says "this engine ticked": none while the store fails.
    if (this.running && this.failureCount === failuresBefore) await this.heartbeat.beat();
    try {
      await this.store.purgeExpiredEvents(this.clock.now());
    } catch (error) {
      this.storageFailed(error, 'purging expired events');
    }
    this.inbox.settle();
    try {
      await this.flushDelivered();
    } catch (error) {
      this.storageFailed(error, 'removing delivered notifications');
    }
    if (this.onResume && this.running) {
      try {
        await this.claimRounds();
      } catch (error) {
        this.storageFailed(error, 'claiming notifications');
      }
    }
    if (this.failureCount !== failuresBefore) return;
    this.retries = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.failing) return;
    this.failing = false;
    this.logger.warn({}, 'taskflow: storage recovered');
  }

  /**
   * Background work failed on the store: the first failure logs once and starts
   * the backoff; until a whole sweep succeeds, the host timers stay disarmed and
   * one retry runs after each delay (doubling, capped), logged at debug level.
   */
  private storageFailed(error: unknown, during: string): void {
    this.failureCount++;
    if (!this.running) {
      this.logger.debug({ err: error, during }, 'taskflow: background work failed while stopping');
      return;
    }
    const first = !this.failing;
    this.failing = true;
    this.backingOff = true;
    clearTimeout(this.wakeTimer);
    clearTimeout(this.notifyTimer);
    this.wakeTimer = this.notifyTimer = undefined;
    this.armedAt = this.notifyArmedAt = undefined;
    if (this.retryTimer) {
      this.logger.debug({ err: error, during }, 'taskflow: storage still failing');
      return;
    }
    const delay = Math.min(this.backoffInitial * 2 ** Math.min(this.retries, 30), this.backoffMax);
    this.retries++;
    if (first) this.logger.warn({ err: error, during, retryInMs: delay }, 'taskflow: storage failing, backing off');
    else this.logger.debug({ err: error, during, retryInMs: delay }, 'taskflow: storage still failing; retrying');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.sweep();
    }, delay);
    this.retryTimer.unref?.();
  }

  /** One tick at a time; a request during a tick runs one more after it, then re-arms. */
  private runTick(): Promise<void> {
    if (this.ticking) {
      this.tickAgain = true;
      return this.ticking;
    }
    this.ticking = this.tickLoop().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async tickLoop(): Promise<void> {
    let progress = false;
    try {
      do {
        this.tickAgain = false;
        const { result, error } = await this.resumeDue(this.clock.now());
        if (error !== undefined) {
          this.storageFailed(error, 'resuming due flows');
          return;
        }
        if (result.resumed + result.cancelled + result.timedOut > 0) progress = true;
      } while (this.tickAgain && this.running);
      const next = await this.store.nextWakeAt();
      if (next === undefined || !this.running || this.backingOff) return;
      const now = this.clock.now();
      if (next > now || progress) {
        this.stillDue = 0;
        this.arm(next);
        return;
      }
      // Due, yet this tick resumed nothing: another engine holds those rows
      // (SKIP LOCKED). Look again later and later, not at once.
      this.stillDue++;
      const delay = this.idleDelay(this.stillDue);
      this.earlyWakes = 0;
      this.armWakeTimer(now + delay, delay);
    } catch (error) {
      this.storageFailed(error, 'reading the next wake time');
    }
  }
}

function hostDelay(ms: number): number {
  return Math.max(0, Math.min(ms, MAX_HOST_DELAY));
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new FlowError('invalid_input', `${name} must be a positive integer, not ${String(value)}`);
  return value;
}

import { systemClock, type Clock } from './clock.js';
import { FlowError } from './errors.js';
import { inboxDrop, InboxPressure, resolveInboxLimits, type InboxDrop, type InboxDropCounts, type InboxLimits } from './inbox.js';
import type { Flow } from './flow.js';
import { silentLogger, type Logger } from './logger.js';
import type { CommitInfo } from './commit-observer.js';
import { cancelMove, resumeMove } from './moves.js';
import type { ClaimedNotification, Committed, Decision, FlowStore, FlowWrite, Loaded, LoadRequest } from './store.js';
import { checkFlowId, requireText } from './validate.js';
import { wakeAtOf } from './wait.js';
import type { Wake } from './wake.js';

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
  /** A stable id: a second delivery with the same id (within the retention) does nothing. */
  eventId?: string;
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

/** A manual signal for {@link WaitEngine.signal}. */
export interface SignalInput {
  /** Must match the wait's signal name when the wait names one. */
  signal?: string;
  payload?: unknown;
}

export interface WaitEngineOptions {
  store: FlowStore;
  clock?: Clock;
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
  /** Caps of the inbox of unmatched events. Default 10 per key, 10,000 in all. */
  inbox?: Partial<InboxLimits>;
}

const MAX_HOST_DELAY = 2_147_483_647;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 5 * 60_000;
const NOTIFICATION_BATCH = 100;
/** How long delivered notifications wait to be removed together. */
const FLUSH_DELAY_MS = 100;

/**
 * Wakes waiting flows: timers at their deadline (one host timer, armed for the
 * earliest wake time read by index), events by (topic, correlation id), manual
 * signals, wait timeouts; and hands every resume to `onResume`, at least once.
 */
export class WaitEngine {
  private readonly store: FlowStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onResume: ResumeHandler | undefined;
  private readonly tickInterval: number;
  private readonly resumeLease: number;
  private readonly eventRetention: number;
  private readonly batchSize: number;
  private readonly inbox: InboxPressure;

  private running = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private armedAt: number | undefined;
  private notifyTimer: NodeJS.Timeout | undefined;
  private notifyArmedAt: number | undefined;
  private ticking: Promise<TickResult> | undefined;
  private tickAgain = false;
  private delivering: Promise<void> | undefined;
  private deliverAgain = false;
  /** Handlers running now, by notification id: not claimed again meanwhile; stop() lets them finish, for at most one lease. */
  private readonly handlers = new Map<number, Promise<void>>();
  /** Delivered notifications not yet removed: they ride along with the next commit, or a flush. */
  private readonly delivered: number[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(options: WaitEngineOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.onResume = options.onResume;
    this.tickInterval = options.tickInterval ?? 5_000;
    this.resumeLease = options.resumeLease ?? 30_000;
    this.eventRetention = options.eventRetention ?? 7 * 86_400_000;
    this.batchSize = options.batchSize ?? 500;
    this.inbox = new InboxPressure(resolveInboxLimits(options.inbox), this.logger);
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

  /** Re-arms the timer from the database, starts the sweep and delivers due notifications. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.sweepTimer = setInterval(() => void this.sweep(), this.tickInterval);
    this.sweepTimer.unref?.();
    await this.sweep();
  }

  /**
   * Stops every host timer and waits for the work in progress, including running
   * `onResume` handlers for at most one `resumeLease` (a handler still running
   * then is redelivered after its lease, by whichever engine runs next).
   */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.sweepTimer);
    clearTimeout(this.wakeTimer);
    clearTimeout(this.notifyTimer);
    this.sweepTimer = this.wakeTimer = this.notifyTimer = undefined;
    this.armedAt = this.notifyArmedAt = undefined;
    await Promise.allSettled([this.ticking, this.delivering]);
    if (this.handlers.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const leaseEnd = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.resumeLease);
        timer.unref?.();
      });
      await Promise.race([Promise.allSettled([...this.handlers.values()]), leaseEnd]);
      clearTimeout(timer);
    }
    await this.flushDelivered();
  }

  /**
   * Resumes every flow whose timer or timeout is due at `now`, by indexed query,
   * in batches of `batchSize` flows per transaction.
   */
  async tick(now: number | Date = this.clock.now()): Promise<TickResult> {
    const at = typeof now === 'number' ? now : now.getTime();
    const total: TickResult = { resumed: 0, cancelled: 0, timedOut: 0, errors: 0 };
    // An indexed read answers "nothing due" without taking the write lock.
    const next = await this.store.nextWakeAt();
    if (next === undefined || next > at) return total;
    for (;;) {
      let batch: TickResult & { size: number };
      try {
        batch = await this.commitWakes({ due: { now: at, limit: this.batchSize } }, (loaded) => this.planDue(loaded.flows, at));
      } catch (error) {
        total.errors++;
        this.logger.error({ err: error }, 'taskflow: resuming due flows failed');
        break;
      }
      total.resumed += batch.resumed;
      total.cancelled += batch.cancelled;
      total.timedOut += batch.timedOut;
      total.errors += batch.errors;
      if (batch.size < this.batchSize) break;
    }
    return total;
  }

  private planDue(flows: Flow[], nowMs: number): Decision<TickResult & { size: number }> {
    const now = new Date(nowMs);
    const result = { resumed: 0, cancelled: 0, timedOut: 0, errors: 0, size: flows.length };
    const writes: FlowWrite[] = [];
    for (const flow of flows) {
      if (flow.cancelRequested) {
        writes.push(cancelMove(flow, now));
        result.cancelled++;
      } else if (flow.wait?.kind === 'timer') {
        writes.push(resumeMove(flow, now, { reason: 'timer', at: now }));
        result.resumed++;
      } else {
        writes.push(resumeMove(flow, now, { reason: 'timeout', at: now }));
        result.timedOut++;
      }
    }
    return { result, writes };
  }

  /**
   * Resumes every flow waiting on the event's (topic, correlation id) with
   * `state.resume_event = payload`. When none waits, the event is kept in the
   * inbox for a later wait. A repeated `eventId` does nothing.
   */
  async deliver(event: EventDelivery): Promise<DeliveryResult> {
    if (typeof event !== 'object' || event === null) throw new FlowError('invalid_input', 'deliver needs an event object');
    const topic = requireText(event.topic, 'topic');
    const correlationId = requireText(event.correlationId, 'correlationId');
    const eventId = event.eventId === undefined ? undefined : requireText(event.eventId, 'eventId');
    const nowMs = this.clock.now();
    const now = new Date(nowMs);
    const expiresAt = new Date(nowMs + this.eventRetention);
    const key = { topic, correlationId };
    const result = await this.commitWakes(
      { waitingOn: key, inboxFill: true, ...(eventId ? { eventId: { id: eventId, now: nowMs } } : {}) },
      (loaded): Decision<DeliveryResult> => {
        if (loaded.eventSeen) return { result: { resumed: [], kept: false, duplicate: true } };
        const dropped = loaded.flows.length === 0 && loaded.inbox ? inboxDrop(loaded.inbox, this.inbox.limits) : undefined;
        if (dropped) return { result: { resumed: [], kept: false, duplicate: false, dropped } };
        const decision: Decision<DeliveryResult> = { result: { resumed: [], kept: false, duplicate: false } };
        if (eventId) decision.rememberEventId = { id: eventId, expiresAt };
        if (loaded.flows.length === 0) {
          decision.keepEvent = { key, payload: event.payload, receivedAt: now, expiresAt, ...(eventId ? { eventId } : {}) };
          decision.result.kept = true;
          return decision;
        }
        const wake: Wake = { reason: 'event', at: now, topic, correlationId };
        if (event.payload !== undefined) wake.payload = event.payload;
        decision.writes = loaded.flows.map((flow) => resumeMove(flow, now, wake));
        decision.result.resumed = loaded.flows.map((flow) => flow.id);
        return decision;
      },
    );
    if (result.dropped) this.inbox.drop(result.dropped, key);
    return result;
  }

  /**
   * Resumes a flow on a manual wait. A wait that names a signal accepts only that
   * name; a wait on something else, or a flow not waiting, refuses the signal.
   */
  async signal(flowId: string, input: SignalInput = {}): Promise<Flow> {
    const id = checkFlowId(flowId);
    const name = input.signal === undefined ? undefined : requireText(input.signal, 'signal');
    const now = new Date(this.clock.now());
    const flow = await this.commitWakes({ flowIds: [id] }, (loaded): Decision<Flow> => {
      const current = loaded.flows[0];
      if (!current) throw new FlowError('not_found', `no flow with id ${id}`);
      if (current.status !== 'waiting' || !current.wait) {
        throw new FlowError('illegal_transition', `flow ${id} is ${current.status}, not waiting: a signal cannot resume it`);
      }
      const wait = current.wait;
      if (wait.kind !== 'manual') {
        throw new FlowError('invalid_input', `flow ${id} waits for ${wait.kind === 'timer' ? 'a timer' : 'an external event'}, not a signal`);
      }
      if (wait.signal !== undefined && wait.signal !== name) {
        throw new FlowError('invalid_input', `flow ${id} waits for the signal "${wait.signal}", not ${name === undefined ? 'an unnamed one' : `"${name}"`}`);
      }
      const wake: Wake = { reason: 'signal', at: now };
      if (name !== undefined) wake.signal = name;
      if (input.payload !== undefined) wake.payload = input.payload;
      const write = resumeMove(current, now, wake);
      return { result: write.flow, writes: [write] };
    });
    return flow;
  }

  /** The earliest timer or timeout among waiting flows. */
  async nextDueAt(): Promise<Date | undefined> {
    const at = await this.store.nextWakeAt();
    return at === undefined ? undefined : new Date(at);
  }

  /** Delivers due resume notifications to `onResume`; resolves when this round is handled. */
  async deliverNotifications(): Promise<void> {
    if (this.delivering) {
      this.deliverAgain = true;
      return this.delivering;
    }
    this.delivering = this.deliverRounds().finally(() => {
      this.delivering = undefined;
    });
    return this.delivering;
  }

  private async deliverRounds(): Promise<void> {
    if (!this.onResume) return;
    do {
      this.deliverAgain = false;
      const claimed = await this.store.claimNotifications(this.clock.now(), this.resumeLease, NOTIFICATION_BATCH);
      const fresh = claimed.filter((n) => !this.handlers.has(n.id));
      await Promise.all(fresh.map((n) => this.handOver(n)));
      await this.flushDelivered();
      if (claimed.length === NOTIFICATION_BATCH) this.deliverAgain = true;
    } while (this.deliverAgain && this.running);
    await this.armNotifications();
  }

  /**
   * Commits a plan whose resumes this process delivers itself: their notifications
   * are queued already claimed, handed to `onResume` at once, and removed later in
   * bulk. Notifications delivered since the last commit are removed in this one.
   */
  private async commitWakes<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    if (!this.running || !this.onResume) return this.store.commit(load, plan);
    const done = this.delivered.splice(0);
    const withDone = (loaded: Loaded): Decision<T> => {
      const decision = plan(loaded);
      return done.length === 0 ? decision : { ...decision, completeNotifications: done };
    };
    let committed: Committed<T>;
    try {
      committed = await this.store.commitClaiming(load, withDone, this.clock.now() + this.resumeLease);
    } catch (error) {
      this.delivered.unshift(...done);
      throw error;
    }
    for (const notification of committed.claimed) void this.handOver(notification).then(() => this.scheduleFlush());
    return committed.result;
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.delivered.length === 0) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flushDelivered().catch((error: unknown) => this.logger.warn({ err: error }, 'taskflow: removing delivered notifications failed'));
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

  /** Runs the handler; a delivered notification (or one whose flow is gone) is queued for removal. */
  private handOver(notification: ClaimedNotification): Promise<void> {
    const { id, flow, flowId, wake, attempts } = notification;
    if (!flow) {
      this.delivered.push(id);
      return Promise.resolve();
    }
    const handler = (async () => {
      try {
        await this.onResume!(flow, wake);
        this.delivered.push(id);
      } catch (error) {
        const delay = Math.min(RETRY_BASE_MS * 2 ** (attempts - 1), RETRY_MAX_MS);
        this.logger.warn({ err: error, flowId, attempts, retryInMs: delay }, 'taskflow: onResume failed; will retry');
        await this.store.retryNotification(id, this.clock.now() + delay).catch(() => undefined);
      } finally {
        this.handlers.delete(id);
      }
    })();
    this.handlers.set(id, handler);
    return handler;
  }

  private kickNotifications(): void {
    if (!this.running || !this.onResume) return;
    void this.deliverNotifications().catch((error: unknown) => this.logger.error({ err: error }, 'taskflow: notification delivery failed'));
  }

  private async armNotifications(): Promise<void> {
    if (!this.running) return;
    const at = await this.store.nextNotificationAt();
    if (at === undefined || (this.notifyArmedAt !== undefined && this.notifyArmedAt <= at)) return;
    clearTimeout(this.notifyTimer);
    this.notifyArmedAt = at;
    this.notifyTimer = setTimeout(() => {
      this.notifyArmedAt = undefined;
      this.kickNotifications();
    }, hostDelay(at - this.clock.now()));
    this.notifyTimer.unref?.();
  }

  /** Arms the host timer for `at` unless an earlier one is armed. */
  private arm(at: number): void {
    if (!this.running) return;
    if (this.armedAt !== undefined && this.armedAt <= at) return;
    clearTimeout(this.wakeTimer);
    this.armedAt = at;
    this.wakeTimer = setTimeout(() => this.onWakeTimer(at), hostDelay(at - this.clock.now()));
    this.wakeTimer.unref?.();
  }

  private onWakeTimer(at: number): void {
    this.armedAt = undefined;
    // A host timer may fire a little early, and long delays are clamped: re-check.
    if (this.clock.now() < at) {
      this.arm(at);
      return;
    }
    void this.runTick();
  }

  private async sweep(): Promise<void> {
    await this.runTick();
    try {
      await this.store.purgeExpiredEvents(this.clock.now());
    } catch (error) {
      this.logger.warn({ err: error }, 'taskflow: purging expired events failed');
    }
    this.inbox.settle();
    this.kickNotifications();
  }

  /** One tick at a time; a request during a tick runs one more after it, then re-arms. */
  private async runTick(): Promise<void> {
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    try {
      do {
        this.tickAgain = false;
        this.ticking = this.tick();
        await this.ticking;
      } while (this.tickAgain && this.running);
      this.ticking = undefined;
      const next = await this.store.nextWakeAt();
      if (next !== undefined) this.arm(next);
    } catch (error) {
      this.logger.error({ err: error }, 'taskflow: tick failed');
    } finally {
      this.ticking = undefined;
    }
  }
}

function hostDelay(ms: number): number {
  return Math.max(0, Math.min(ms, MAX_HOST_DELAY));
}

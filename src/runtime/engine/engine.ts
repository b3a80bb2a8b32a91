import { InboxPressure, type InboxDropCounts } from '../inbox.js';
import type { Flow } from '../flow.js';
import type { CommitInfo } from '../store/commit-observer.js';
import type { BatchCommit, BatchOutcome, EventKey, FlowWrite } from '../store/contract.js';
import { parseInstant } from '../instant.js';
import { checkFlowId } from '../validate.js';
import { FlowError } from '../errors.js';
import { wakeAtOf } from '../wait.js';
import { HeartbeatWriter } from '../doctor/heartbeat.js';
import { planDelivery, planSignal, type DeliveryRules } from './delivery-plan.js';
import { DueResumer } from './due-resumer.js';
import { EngineLifecycle } from './lifecycle.js';
import { resolveEngineOptions, type EngineSettings, type WaitEngineOptions } from './options.js';
import { ResumeDispatcher } from './resume-dispatcher.js';
import { RunCoalescer } from './run-coalescer.js';
import { checkFirstWait, planStartOrDeliver, startOrDeliverLoad, type PreparedStartOrDeliver, type StartOrDeliverResult } from './start-or-deliver-plan.js';
import { StorageBackoff } from './storage-backoff.js';
import type { DeliveryOutcome, DeliveryResult, EventDelivery, SignalInput, TickResult } from '../delivery.js';

export type { DeliveryOutcome, DeliveryResult, EventDelivery, ResumeHandler, SignalInput, TickResult } from '../delivery.js';
export { DEFAULT_MAX_RESUME_ATTEMPTS, DEFAULT_RESUME_CONCURRENCY, type WaitEngineOptions } from './options.js';

/**
 * Wakes waiting flows: timers at their deadline (one host timer, armed for the
 * earliest wake time read by index), events by (topic, correlation id), manual
 * signals, wait timeouts; and hands every resume to `onResume`, at least once,
 * each notification on its own with at most `resumeConcurrency` handlers at once.
 *
 * The facade over the engine's parts: the {@link EngineLifecycle}, the
 * {@link DueResumer} and its wake timer, the {@link ResumeDispatcher} every wake
 * reaches handlers through, and the {@link StorageBackoff} of background work.
 * Background work that fails on the store backs off exponentially and logs once
 * when it starts failing and once when it recovers. A started engine keeps the
 * process alive until {@link stop}; once `stop()` resolves, no handler starts.
 */
export class WaitEngine {
  private readonly settings: EngineSettings;
  private readonly lifecycle = new EngineLifecycle();
  private readonly storage: StorageBackoff;
  private readonly dispatcher: ResumeDispatcher;
  private readonly due: DueResumer;
  private readonly foreign: RunCoalescer<boolean, void>;
  private readonly inbox: InboxPressure;
  private readonly heartbeat: HeartbeatWriter;
  private readonly rules: DeliveryRules;
  /** The one ref'd handle while running: it keeps the process alive. */
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private unwatch: (() => void) | undefined;

  constructor(options: WaitEngineOptions) {
    const settings = resolveEngineOptions(options);
    this.settings = settings;
    this.storage = new StorageBackoff(
      settings.logger,
      settings.storageBackoff,
      () => this.lifecycle.running,
      () => void this.sweep(),
      () => {
        this.due.disarm();
        this.dispatcher.disarm();
      },
    );
    this.dispatcher = new ResumeDispatcher(settings, this.lifecycle, this.storage);
    this.due = new DueResumer(settings, this.lifecycle, this.storage, (load, plan) => this.dispatcher.commit(load, plan));
    this.foreign = new RunCoalescer(
      () => this.readForeignCommit(),
      async () => undefined,
      () => this.lifecycle.running && !this.storage.backingOff,
    );
    this.inbox = new InboxPressure(settings.inbox, settings.logger);
    this.rules = { stateLimit: settings.stateLimit, retention: settings.eventRetention, inbox: settings.inbox };
    this.heartbeat = new HeartbeatWriter(settings.store, settings.clock, settings.logger, settings.heartbeat);
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
    if (!this.lifecycle.running || this.storage.backingOff) return;
    for (const { flow } of writes) {
      const wakeAt = flow.status === 'waiting' && flow.wait ? wakeAtOf(flow.wait) : undefined;
      if (wakeAt) this.due.armFor(wakeAt.getTime());
    }
    if (!info.claimed && writes.some((write) => write.wake !== undefined)) this.dispatcher.kick();
  }

  /**
   * Re-arms the timer from the database, starts the sweep, delivers due
   * notifications, and watches for writes committed by other processes. From
   * here until {@link stop} the engine keeps the process alive, as a listening
   * server does. A store that fails now does not fail the start: the engine
   * backs off and carries on once it answers.
   */
  async start(): Promise<void> {
    if (!this.lifecycle.start()) return;
    try {
      this.unwatch = this.settings.store.watchForeignCommits(() => this.foreignCommit());
    } catch (error) {
      this.settings.logger.warn({ err: error }, 'taskflow: watching for commits of other processes failed; they are seen at the next sweep');
    }
    this.sweepTimer = setInterval(() => {
      if (!this.storage.retryArmed) void this.sweep();
    }, this.settings.tickInterval);
    await this.sweep();
  }

  /**
   * Stops: no handler starts from the moment it is called. Notifications claimed
   * but not started are given back (due again, their attempt not counted), calls
   * and background work in flight finish (a claim they make is given back too),
   * running `onResume` handlers finish and their notifications are removed, all
   * within one `resumeLease` (a handler still running then is delivered again
   * after its lease, by whichever engine runs next). Nothing of the engine keeps
   * the process alive afterwards.
   */
  async stop(): Promise<void> {
    this.lifecycle.beginStop();
    this.unwatch?.();
    this.unwatch = undefined;
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.storage.stop();
    this.due.disarm();
    this.dispatcher.disarm();
    this.dispatcher.giveBackAhead();
    let leaseTimer: NodeJS.Timeout | undefined;
    const leaseEnd = new Promise<void>((resolve) => {
      leaseTimer = setTimeout(resolve, this.settings.resumeLease);
      leaseTimer.unref?.();
    });
    const atMostOneLease = (work: Promise<unknown>) => Promise.race([work.then(() => undefined), leaseEnd]);
    try {
      await atMostOneLease(this.lifecycle.settled());
      await atMostOneLease(this.dispatcher.handlersSettled());
      await atMostOneLease(this.lifecycle.settled());
      await atMostOneLease(
        this.dispatcher.completions
          .flush()
          .catch((error: unknown) => this.settings.logger.warn({ err: error }, 'taskflow: removing delivered notifications failed; they will be delivered again')),
      );
    } finally {
      clearTimeout(leaseTimer);
      this.lifecycle.endStop();
    }
  }

  /**
   * Resumes every flow whose timer or timeout is due at `now`, by indexed query,
   * in batches of `batchSize` flows per transaction.
   */
  async tick(now: number | Date = this.settings.clock.now()): Promise<TickResult> {
    const at = parseInstant(now, 'tick time').getTime();
    const { result, error } = await this.lifecycle.track(this.due.resumeDue(at));
    if (error !== undefined) this.settings.logger.error({ err: error }, 'taskflow: resuming due flows failed');
    return result;
  }

  /**
   * Resumes every flow waiting on the event's (topic, correlation id) with
   * `state.resume_event = payload`. When none waits, the event is kept in the
   * inbox for a later wait. A repeated `eventId` does nothing. With `flowId`, only
   * that flow resumes, if it waits on this key; the event is never kept.
   */
  async deliver(event: EventDelivery): Promise<DeliveryResult> {
    return this.settings.telemetry.deliver(event, () => this.lifecycle.track(this.deliverNow(event)));
  }

  private async deliverNow(event: EventDelivery): Promise<DeliveryResult> {
    const { load, plan, key } = planDelivery(event, this.rules, this.settings.clock.now());
    const result = await this.dispatcher.commit(load, plan);
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
   * Outcomes in input order. Its resumes take handler slots as single deliveries do.
   */
  async deliverBatch(events: readonly EventDelivery[]): Promise<DeliveryOutcome[]> {
    return this.lifecycle.track(this.deliverBatchNow(events));
  }

  private async deliverBatchNow(events: readonly EventDelivery[]): Promise<DeliveryOutcome[]> {
    // One telemetry span per event, each ending once the batch settled.
    const settles: { resolve(result: DeliveryResult): void; reject(error: unknown): void }[] = [];
    const results = events.map(() => new Promise<DeliveryResult>((resolve, reject) => settles.push({ resolve, reject })));
    const spans = events.map((event, index) =>
      this.settings.telemetry.deliver(event, () => results[index]!).then(
        (result): DeliveryOutcome => ({ ok: true, result }),
        (error: unknown): DeliveryOutcome => ({ ok: false, error }),
      ),
    );
    const nowMs = this.settings.clock.now();
    const planned: { index: number; key: EventKey; item: BatchCommit<DeliveryResult> }[] = [];
    const refusals = new Map<number, unknown>();
    events.forEach((event, index) => {
      try {
        const { load, plan, key } = planDelivery(event, this.rules, nowMs);
        planned.push({ index, key, item: { load, plan } });
      } catch (error) {
        refusals.set(index, error);
      }
    });
    let committed: BatchOutcome<DeliveryResult>[];
    try {
      committed = planned.length === 0 ? [] : await this.dispatcher.commitBatch(planned.map((p) => p.item));
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

  /** Records this engine's heartbeat now, if it runs (the runtime calls it when its bridge connects). */
  async heartbeatNow(): Promise<void> {
    if (this.lifecycle.running) await this.heartbeat.beat(true);
  }

  /**
   * `tf.startOrDeliver` after its input was checked: one commit that starts the
   * flow of an idempotency key when the owner has none and delivers the event by
   * its key (see {@link planStartOrDeliver}).
   */
  async startOrDeliver(input: PreparedStartOrDeliver): Promise<StartOrDeliverResult> {
    checkFirstWait(input.wait, input.event);
    let result: StartOrDeliverResult | undefined;
    await this.settings.telemetry.deliver(input.event, async () => {
      const nowMs = this.settings.clock.now();
      const rules = { retention: this.settings.eventRetention, inbox: this.settings.inbox, stateLimit: this.settings.stateLimit };
      result = await this.lifecycle.track(this.dispatcher.commit(startOrDeliverLoad(input, nowMs), (loaded) => planStartOrDeliver(input, loaded, nowMs, rules)));
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
    const { load, plan } = planSignal(flowId, input, this.settings.stateLimit, this.settings.clock.now());
    return this.lifecycle.track(this.dispatcher.commit(load, plan));
  }

  /** The earliest timer or timeout among waiting flows. */
  async nextDueAt(): Promise<Date | undefined> {
    const at = await this.settings.store.nextWakeAt();
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
    const count = await this.settings.store.requeueDead(id, this.settings.clock.now(), notificationId);
    if (count > 0) this.dispatcher.kick();
    return count;
  }

  /**
   * Claims due notifications into the free handler slots and starts their
   * handlers; resolves once the handlers it started have settled and the
   * delivered ones are removed. The engine's own deliveries never wait on
   * handlers: each runs on its own. Once the engine stopped, starts none.
   */
  async deliverNotifications(): Promise<void> {
    await this.lifecycle.track(this.dispatcher.deliverAll());
  }

  /**
   * A write committed by another process or connection: re-read the next wake
   * time and re-arm, and deliver the notifications that are due.
   */
  private foreignCommit(): void {
    if (!this.lifecycle.running || this.storage.backingOff) return;
    void this.lifecycle.track(this.foreign.run());
  }

  private async readForeignCommit(): Promise<boolean> {
    const { store, clock } = this.settings;
    try {
      const next = await store.nextWakeAt();
      if (next !== undefined) this.due.armFor(next);
      const due = await store.nextNotificationAt();
      if (due !== undefined && due <= clock.now()) this.dispatcher.kick();
      else if (due !== undefined) this.dispatcher.armFor(due);
      return true;
    } catch (error) {
      this.storage.failed(error, 'reading what another process committed');
      return false;
    }
  }

  /** The periodic safety sweep, also the retry after a storage failure: a sweep with no failure ends the failing state. */
  private sweep(): Promise<void> {
    this.sweeping ??= this.lifecycle.track(this.sweepOnce()).finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    const { store, clock, onResume } = this.settings;
    // This sweep re-arms the host timers (a failure in it disarms them again).
    const mark = this.storage.beginPass();
    await this.due.tickInBackground();
    // A beat says "this engine ticked": none while the store fails.
    if (this.lifecycle.running && this.storage.cleanSince(mark)) await this.heartbeat.beat();
    try {
      await store.purgeExpiredEvents(clock.now());
    } catch (error) {
      this.storage.failed(error, 'purging expired events');
    }
    this.inbox.settle();
    try {
      await this.dispatcher.completions.flush();
    } catch (error) {
      this.storage.failed(error, 'removing delivered notifications');
    }
    if (onResume && this.lifecycle.running) {
      try {
        await this.dispatcher.claimRounds();
      } catch (error) {
        this.storage.failed(error, 'claiming notifications');
      }
    }
    this.storage.endPass(mark);
  }
}

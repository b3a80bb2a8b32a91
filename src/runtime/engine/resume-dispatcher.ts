import { backoffDelay } from '../backoff.js';
import { errorText } from '../logger.js';
import type { BatchCommit, BatchOutcome, ClaimedNotification, Committed, Decision, Loaded, LoadRequest, NotificationClaim } from '../store/contract.js';
import { CompletionBuffer } from './completions.js';
import { DeadlineTimer } from './deadline-timer.js';
import type { EngineLifecycle } from './lifecycle.js';
import type { EngineSettings } from './options.js';
import { RunCoalescer } from './run-coalescer.js';
import type { StorageBackoff } from './storage-backoff.js';

/** Notifications claimed per claim round, at most. */
const CLAIM_ROUND = 100;

/** One claim round: the handlers it started (or queued for a slot), and whether it claimed anything. */
interface ClaimPass {
  started: Promise<void>[];
  claimedAny: boolean;
  /** Every slot was busy: the next handler to finish claims again. */
  full: boolean;
}

/**
 * The one path from a wake to `onResume`. Every source of wakes (a due batch, a
 * delivered event, a signal, start-or-deliver, a notification another process
 * queued) commits through {@link commit} or {@link commitBatch}, or is claimed by a
 * claim round; its claims are then handed to handlers here, at most
 * `resumeConcurrency` at once.
 *
 * A notification this engine claimed:
 *   claimed ──slot free──▶ running ──resolves──▶ completed (removed with the next commit, or soon after)
 *   claimed ──no slot free──▶ claimed ahead ──a slot frees──▶ running
 *   claimed ahead ──half its lease gone, or the engine stops──▶ given back: due again, its attempt not counted
 *   running ──throws──▶ retried after a backoff, or parked dead after `maxResumeAttempts`
 *   running ──outlives its lease──▶ its slot freed; the next claim (any engine's) delivers it again
 * Completing, retrying, parking and giving back act only on the claim this engine holds.
 */
export class ResumeDispatcher {
  /** Handlers running within their lease, by notification id: each holds a slot. */
  private readonly active = new Map<number, Promise<void>>();
  /** Claimed ahead of a free slot, in claim order; `settle` resolves once it ran or was given back. */
  private readonly ahead: { claim: ClaimedNotification; settle: () => void }[] = [];
  /** Slots promised to a claim in flight. */
  private reserved = 0;
  /** Recent duration of a successful handler, in ms (-1 until one has finished). */
  private handlerMs = -1;
  /** Due notifications were left unclaimed for want of a slot: a finishing handler claims again. */
  private backlog = false;
  /** Consecutive claim rounds that claimed nothing. */
  private idleRounds = 0;
  private readonly rounds: RunCoalescer<ClaimPass, Promise<void>[]>;
  private readonly timer: DeadlineTimer;
  readonly completions: CompletionBuffer;

  constructor(
    private readonly settings: EngineSettings,
    private readonly lifecycle: EngineLifecycle,
    private readonly storage: StorageBackoff,
  ) {
    const background = () => this.lifecycle.running && !this.storage.backingOff && this.settings.onResume !== undefined;
    this.timer = new DeadlineTimer(settings.clock, settings.idleBackoff, background, () => this.kick());
    this.completions = new CompletionBuffer(settings.store, () => this.lifecycle.running && !this.storage.backingOff, (error) =>
      this.storage.failed(error, 'removing delivered notifications'),
    );
    this.rounds = new RunCoalescer(
      () => this.claimPass(),
      (passes) => this.afterRounds(passes),
      () => this.lifecycle.running,
    );
  }

  /**
   * One commit whose wakes this engine hands to `onResume` itself: they are
   * claimed in the same transaction (as many as there are free slots) and
   * dispatched at once; notifications delivered since the last commit are removed
   * in it. Before the engine runs, or without a handler, a plain commit.
   */
  async commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    const { store, clock, resumeLease, onResume } = this.settings;
    if (!this.lifecycle.running || !onResume) return store.commit(load, plan);
    const done = this.completions.take();
    let wakes = 0;
    const withDone = (loaded: Loaded): Decision<T> => {
      const decision = plan(loaded);
      wakes = countWakes(decision);
      return done.length === 0 ? decision : { ...decision, completeNotifications: done };
    };
    // A due batch claims at most its own size, leaving slots for the batch beside it.
    const limit = Math.max(0, Math.min(load.due?.limit ?? Infinity, this.freeSlots()));
    this.reserved += limit;
    let committed: Committed<T>;
    try {
      committed = await store.commitClaiming(load, withDone, clock.now() + resumeLease, limit);
    } catch (error) {
      this.completions.restore(done);
      throw error;
    } finally {
      this.reserved -= limit;
    }
    this.accept(committed.claimed);
    this.unclaimed(wakes - committed.claimed.length);
    return committed.result;
  }

  /** {@link commit} for several commits in one transaction; their wakes go the same way. */
  async commitBatch<T>(items: readonly BatchCommit<T>[]): Promise<BatchOutcome<T>[]> {
    const { store, clock, resumeLease, onResume } = this.settings;
    if (!this.lifecycle.running || !onResume) return store.commitBatch(items);
    const done = this.completions.take();
    const wakes = items.map(() => 0);
    const counted = items.map(
      (item, i): BatchCommit<T | undefined> => ({
        load: item.load,
        plan: (loaded) => {
          const decision = item.plan(loaded);
          wakes[i] = countWakes(decision);
          return decision;
        },
      }),
    );
    // Notifications delivered since the last commit are removed in this one, in an item of their own.
    const all: BatchCommit<T | undefined>[] =
      done.length === 0 ? counted : [{ load: {}, plan: () => ({ result: undefined, completeNotifications: done }) }, ...counted];
    const limit = Math.max(0, this.freeSlots());
    this.reserved += limit;
    let outcomes: BatchOutcome<T | undefined>[];
    try {
      outcomes = await store.commitBatch(all, { leaseUntil: clock.now() + resumeLease, limit });
    } catch (error) {
      this.completions.restore(done);
      throw error;
    } finally {
      this.reserved -= limit;
    }
    if (done.length > 0 && !outcomes.shift()!.ok) this.completions.restore(done);
    let queued = 0;
    const claimed: ClaimedNotification[] = [];
    outcomes.forEach((outcome, i) => {
      if (!outcome.ok) return;
      queued += wakes[i]!;
      claimed.push(...outcome.claimed);
    });
    this.accept(claimed);
    this.unclaimed(queued - claimed.length);
    return outcomes as BatchOutcome<T>[];
  }

  /** Claims due notifications in the background (a commit queued some unclaimed, a retry came due, another process queued some). */
  kick(): void {
    if (!this.lifecycle.running || !this.settings.onResume || this.storage.backingOff) return;
    void this.lifecycle.track(this.claimRounds()).catch((error: unknown) => this.storage.failed(error, 'claiming notifications'));
  }

  /** Claim rounds until nothing due is left or every slot is busy; resolves with the handlers they started, once claimed. */
  claimRounds(): Promise<Promise<void>[]> {
    return this.rounds.run();
  }

  /**
   * Claims due notifications into the free slots and runs their handlers;
   * resolves once those handlers settled and the delivered notifications are removed.
   */
  async deliverAll(): Promise<void> {
    await Promise.allSettled(await this.claimRounds());
    await this.completions.flush();
  }

  /** Arms the notification timer for a notification due at `at`. */
  armFor(at: number): void {
    this.timer.arm(at);
  }

  /** The background claim rounds in progress, if any. */
  get claiming(): Promise<unknown> | undefined {
    return this.rounds.inProgress;
  }

  disarm(): void {
    this.timer.disarm();
    this.completions.stop();
  }

  /** Gives back every notification claimed ahead (the engine stops): due again at once, for the next engine. */
  giveBackAhead(): void {
    const ahead = this.ahead.splice(0);
    this.giveBack(ahead.map((entry) => entry.claim));
    for (const entry of ahead) entry.settle();
  }

  /** Resolves once every running handler settled. */
  async handlersSettled(): Promise<void> {
    await Promise.allSettled([...this.active.values()]);
  }

  private async claimPass(): Promise<ClaimPass> {
    const { store, clock, resumeLease, onResume } = this.settings;
    if (!onResume || !this.lifecycle.handlersMayStart) return { started: [], claimedAny: false, full: false };
    const free = this.freeSlots();
    if (free <= 0) {
      this.backlog = true;
      return { started: [], claimedAny: false, full: true };
    }
    const limit = Math.min(CLAIM_ROUND, free);
    this.reserved += limit;
    let claimed: ClaimedNotification[];
    try {
      claimed = await store.claimNotifications(clock.now(), resumeLease, limit);
    } finally {
      this.reserved -= limit;
    }
    if (claimed.length === limit) this.rounds.again();
    return { started: this.accept(claimed), claimedAny: claimed.length > 0, full: false };
  }

  private async afterRounds(passes: ClaimPass[]): Promise<Promise<void>[]> {
    const started = passes.flatMap((pass) => pass.started);
    if (!passes.some((pass) => pass.full)) await this.armForNext(passes.some((pass) => pass.claimedAny));
    return started;
  }

  /**
   * Arms the notification timer for the earliest due one. Due already, yet the
   * round claimed nothing (another engine holds it, or the clock is not the
   * host's), it looks again later and later, never at once.
   */
  private async armForNext(claimedAny: boolean): Promise<void> {
    if (!this.lifecycle.running || this.storage.backingOff) return;
    const at = await this.settings.store.nextNotificationAt();
    if (at === undefined) return;
    const remaining = at - this.settings.clock.now();
    this.idleRounds = claimedAny ? 0 : this.idleRounds + 1;
    this.timer.arm(at, this.idleRounds <= 1 ? remaining : Math.max(remaining, backoffDelay(this.settings.idleBackoff, this.idleRounds - 2)));
  }

  /** Wakes a commit queued unclaimed for want of a slot: claimed now if one freed meanwhile, else when one does. */
  private unclaimed(count: number): void {
    if (count <= 0) return;
    if (this.freeSlots() > 0) this.kick();
    else this.backlog = true;
  }

  /** Notifications this engine may still claim: free handler slots plus room to claim ahead. */
  private freeSlots(): number {
    return this.settings.resumeConcurrency + this.aheadRoom() - this.active.size - this.ahead.length - this.reserved;
  }

  /**
   * How many to claim ahead of a free slot: as many as the slots start within a
   * quarter of the lease at the handlers' recent pace (so none waits out half its
   * lease), at most `prefetch`; one round of slots until a handler has finished.
   */
  private aheadRoom(): number {
    const { resumeConcurrency, resumeLease, prefetch } = this.settings;
    if (this.handlerMs < 0) return Math.min(prefetch, resumeConcurrency);
    return Math.min(prefetch, Math.floor((resumeConcurrency * resumeLease) / 4 / Math.max(this.handlerMs, 0.01)));
  }

  /** Hands claims to handlers: started now when a slot is free, else when one frees; given back once the engine stops. */
  private accept(claimed: readonly ClaimedNotification[]): Promise<void>[] {
    if (claimed.length === 0) return [];
    if (!this.lifecycle.handlersMayStart) {
      this.giveBack(claimed);
      return [];
    }
    const started: Promise<void>[] = [];
    for (const claim of claimed) {
      if (this.active.size < this.settings.resumeConcurrency && this.ahead.length === 0) {
        const handler = this.startHandler(claim);
        if (handler) started.push(handler);
      } else {
        started.push(new Promise<void>((settle) => this.ahead.push({ claim, settle })));
      }
    }
    return started;
  }

  /** Starts claimed-ahead notifications while slots are free; those that waited out half their lease are given back. */
  private startAhead(): void {
    const stale: ClaimedNotification[] = [];
    const { resumeConcurrency, resumeLease, clock } = this.settings;
    while (this.active.size < resumeConcurrency && this.ahead.length > 0) {
      const { claim, settle } = this.ahead.shift()!;
      if (!this.lifecycle.handlersMayStart || clock.now() > claim.leaseUntil - resumeLease / 2) {
        stale.push(claim);
        settle();
        continue;
      }
      const handler = this.startHandler(claim);
      if (handler) void handler.then(settle);
      else settle();
    }
    this.giveBack(stale);
  }

  /** Gives claims back in one write: due again now, their attempts not counted. A failure leaves them to their lease. */
  private giveBack(claims: readonly NotificationClaim[]): void {
    if (claims.length === 0) return;
    const { store, clock } = this.settings;
    const released = store.releaseNotifications(claims.map(({ id, leaseUntil }) => ({ id, leaseUntil })), clock.now()).then(
      () => {
        if (this.lifecycle.running) this.kick();
      },
      (error: unknown) => this.storage.failed(error, 'giving back claimed notifications'),
    );
    void this.lifecycle.track(released);
  }

  /**
   * Runs the handler of one claim on its own, holding one slot for at most one
   * lease. A delivered notification (or one whose flow is gone) is completed; a
   * failure is retried with backoff, or parked as dead after `maxResumeAttempts`.
   */
  private startHandler(claim: ClaimedNotification): Promise<void> | undefined {
    const { id, flow, flowId, wake, attempts } = claim;
    const { onResume, maxResumeAttempts, resumeLease, telemetry, logger } = this.settings;
    // Still running here within its lease (a clock moved by hand made it due again).
    if (this.active.has(id) || !onResume) return undefined;
    if (!flow) {
      this.completions.add(claim);
      return undefined;
    }
    if (attempts > maxResumeAttempts) {
      return this.park(claim, `onResume did not finish within its lease (${resumeLease} ms) on its last attempt`, undefined);
    }
    let overdue = false;
    let lease: NodeJS.Timeout | undefined;
    let handler: Promise<void> | undefined;
    // The handler goes on after its first await, so `lease` and `handler` are set before its `finally` runs.
    handler = (async () => {
      const began = performance.now();
      try {
        await telemetry.resume({ ...claim, flow }, () => onResume(flow, wake));
        this.handlerTook(performance.now() - began);
        this.completions.add(claim);
      } catch (error) {
        await this.handlerFailed(claim, error);
      } finally {
        clearTimeout(lease);
        if (this.active.get(id) === handler) this.active.delete(id);
        if (!overdue) this.slotFreed();
      }
    })();
    lease = setTimeout(() => {
      overdue = true;
      if (this.active.get(id) === handler) this.active.delete(id);
      if (!this.lifecycle.running) return;
      logger.warn(
        { flowId, notificationId: id, attempts, leaseMs: resumeLease },
        'taskflow: onResume still running after its lease; it no longer holds a slot and will be delivered again',
      );
      this.slotFreed();
    }, resumeLease);
    lease.unref?.();
    this.active.set(id, handler);
    return handler;
  }

  /** Folds a handler's duration into the recent pace (an exponential moving average). */
  private handlerTook(ms: number): void {
    this.handlerMs = this.handlerMs < 0 ? ms : 0.8 * this.handlerMs + 0.2 * ms;
  }

  private slotFreed(): void {
    this.startAhead();
    if (!this.backlog || !this.lifecycle.running) return;
    this.backlog = false;
    this.kick();
  }

  private async handlerFailed(claim: ClaimedNotification, error: unknown): Promise<void> {
    const { id, flowId, attempts } = claim;
    const { maxResumeAttempts, retryBackoff, logger, store, clock } = this.settings;
    const text = error instanceof Error ? (error.stack ?? errorText(error)) : errorText(error);
    if (attempts >= maxResumeAttempts) return this.park(claim, text, error);
    const delay = backoffDelay(retryBackoff, attempts - 1);
    logger.warn({ err: error, flowId, notificationId: id, attempts, maxAttempts: maxResumeAttempts, retryInMs: delay }, 'taskflow: onResume failed; will retry');
    const dueAt = clock.now() + delay;
    try {
      if (!(await store.retryNotification(claim, dueAt, text))) return this.lostClaim(claim, 'retry');
    } catch (failure) {
      // Unrecorded, the notification is redelivered when its lease ends.
      this.storage.failed(failure, 'recording a failed delivery');
      return;
    }
    this.timer.arm(dueAt, delay);
  }

  /** Parks a notification as dead, loudly: it stays, with its last error, until an operator requeues it. */
  private async park(claim: ClaimedNotification, text: string, error: unknown): Promise<void> {
    const { id, flowId, attempts } = claim;
    const { maxResumeAttempts, logger, telemetry, store, clock } = this.settings;
    try {
      if (!(await store.parkNotification(claim, clock.now(), text))) return this.lostClaim(claim, 'park');
    } catch (failure) {
      this.storage.failed(failure, 'parking a dead notification');
    }
    logger.error(
      { err: error ?? text, flowId, notificationId: id, attempts },
      `taskflow: onResume failed on all ${maxResumeAttempts} attempts; the notification is parked as dead (re-queue it with \`taskflow requeue ${flowId}\` or engine.requeueDead)`,
    );
    telemetry.dead(claim);
  }

  /** The lease ended and another claim holds the notification now: its holder decides. */
  private lostClaim(claim: ClaimedNotification, action: string): void {
    this.settings.logger.debug(
      { flowId: claim.flowId, notificationId: claim.id },
      `taskflow: no ${action} of a notification whose lease ended: another claim holds it now`,
    );
  }
}

function countWakes(decision: Decision<unknown>): number {
  return decision.writes?.filter((write) => write.wake !== undefined).length ?? 0;
}

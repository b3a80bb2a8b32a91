import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay } from '../src/runtime/backoff.js';
import { ManualClock } from '../src/runtime/clock.js';
import { CompletionBuffer } from '../src/runtime/engine/completions.js';
import { DeadlineTimer } from '../src/runtime/engine/deadline-timer.js';
import { EngineLifecycle } from '../src/runtime/engine/lifecycle.js';
import { RunCoalescer } from '../src/runtime/engine/run-coalescer.js';
import { StorageBackoff } from '../src/runtime/engine/storage-backoff.js';
import type { Logger } from '../src/runtime/logger.js';
import type { NotificationClaim } from '../src/runtime/store/contract.js';

/** Each stateful part of the engine alone, on a fake clock and fake storage functions. */

function recordingLogger() {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (_fields: object, message: string) => void lines.push({ level, message });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it('doubles from the initial delay and stops at the cap', () => {
    const backoff = { initialMs: 100, maxMs: 1_000 };
    expect([0, 1, 2, 3, 4, 5].map((step) => backoffDelay(backoff, step))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('never overflows on a huge step, and treats a negative one as the first', () => {
    expect(backoffDelay({ initialMs: 20, maxMs: 5_000 }, 10_000)).toBe(5_000);
    expect(backoffDelay({ initialMs: 20, maxMs: 5_000 }, -3)).toBe(20);
  });
});

describe('DeadlineTimer (the wake timer)', () => {
  const idle = { initialMs: 20, maxMs: 5_000 };

  it('fires once the clock reaches the moment armed for', () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    const timer = new DeadlineTimer(clock, idle, () => true, (at) => fired.push(at));
    timer.arm(100);
    clock.set(100);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([100]);
    expect(timer.at).toBeUndefined();
  });

  it('keeps the earliest moment: a later arm changes nothing, an earlier one replaces it', () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    const timer = new DeadlineTimer(clock, idle, () => true, (at) => fired.push(at));
    timer.arm(500);
    timer.arm(900);
    expect(timer.at).toBe(500);
    timer.arm(200);
    expect(timer.at).toBe(200);
    clock.set(1_000);
    vi.advanceTimersByTime(1_000);
    expect(fired).toEqual([200]);
  });

  it('fired early, re-arms for the rest; a clock that never gets there is looked at less and less often', () => {
    const clock = new ManualClock(0);
    let looks = 0;
    const counting = { now: () => (looks++, clock.now()) };
    const fired: number[] = [];
    const timer = new DeadlineTimer(counting, idle, () => true, (at) => fired.push(at));
    timer.arm(100);
    looks = 0;
    vi.advanceTimersByTime(100); // the host timer fires; the manual clock is still at 0
    expect(fired).toEqual([]);
    expect(timer.at).toBe(100);
    // Then 100 ms, 20, 40, 80... ms, up to 5 s apart: about a dozen looks in 10 s, not thousands.
    vi.advanceTimersByTime(10_000);
    expect(looks).toBeGreaterThan(5);
    expect(looks).toBeLessThan(20);
    clock.set(100);
    vi.advanceTimersByTime(5_000);
    expect(fired).toEqual([100]);
  });

  it('stays disarmed while it may not run, and disarm() cancels', () => {
    const clock = new ManualClock(0);
    let may = false;
    const fired: number[] = [];
    const timer = new DeadlineTimer(clock, idle, () => may, (at) => fired.push(at));
    timer.arm(10);
    expect(timer.at).toBeUndefined();
    may = true;
    timer.arm(10);
    timer.disarm();
    clock.set(10);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([]);
  });
});

describe('RunCoalescer', () => {
  it('runs one pass at a time; requests during a run become one more pass, not a run beside it', async () => {
    let running = 0;
    let most = 0;
    let passes = 0;
    const gates: (() => void)[] = [];
    const runner = new RunCoalescer(
      async () => {
        running++;
        most = Math.max(most, running);
        passes++;
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        return passes;
      },
      async (results) => results,
      () => true,
    );
    const first = runner.run();
    const second = runner.run();
    const third = runner.run();
    expect(second).toBe(first);
    expect(third).toBe(first);
    gates.shift()!();
    await vi.waitFor(() => expect(gates).toHaveLength(1));
    gates.shift()!();
    expect(await first).toEqual([1, 2]);
    expect(most).toBe(1);
    expect(runner.inProgress).toBeUndefined();
  });

  it('a pass may ask for another itself; keepGoing false ends the run after the current pass', async () => {
    let keep = true;
    let passes = 0;
    const runner: RunCoalescer<number, number> = new RunCoalescer(
      async () => {
        passes++;
        if (passes === 3) keep = false;
        runner.again();
        return passes;
      },
      async (results) => results.length,
      () => keep,
    );
    expect(await runner.run()).toBe(3);
  });
});

describe('StorageBackoff', () => {
  function backoff(running = true) {
    const { logger, lines } = recordingLogger();
    let retries = 0;
    let backOffs = 0;
    const part = new StorageBackoff(logger, { initialMs: 100, maxMs: 400 }, () => running, () => void retries++, () => void backOffs++);
    return { part, lines, retries: () => retries, backOffs: () => backOffs };
  }

  it('warns once when failing starts, retries after doubling delays, and warns once when a clean pass recovers', () => {
    const { part, lines, retries } = backoff();
    part.failed(new Error('disk I/O error'), 'resuming due flows');
    expect(part.backingOff).toBe(true);
    expect(part.retryArmed).toBe(true);
    vi.advanceTimersByTime(99);
    expect(retries()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(retries()).toBe(1);
    // The retry's pass fails again: the next delay doubles.
    let mark = part.beginPass();
    part.failed(new Error('disk I/O error'), 'resuming due flows');
    part.endPass(mark);
    vi.advanceTimersByTime(199);
    expect(retries()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(retries()).toBe(2);
    mark = part.beginPass();
    expect(part.backingOff).toBe(false);
    part.endPass(mark);
    expect(part.retryArmed).toBe(false);
    expect(lines.filter((line) => line.level === 'warn').map((line) => line.message)).toEqual([
      'taskflow: storage failing, backing off',
      'taskflow: storage recovered',
    ]);
  });

  it('a second failure while a retry is armed arms no second retry', () => {
    const { part, retries, backOffs } = backoff();
    part.failed(new Error('a'), 'x');
    part.failed(new Error('b'), 'y');
    vi.advanceTimersByTime(1_000);
    expect(retries()).toBe(1);
    expect(backOffs()).toBe(2);
  });

  it('while the engine is not running, a failure is only logged at debug level', () => {
    const { part, lines, retries } = backoff(false);
    part.failed(new Error('closed'), 'claiming notifications');
    vi.advanceTimersByTime(1_000);
    expect(retries()).toBe(0);
    expect(part.backingOff).toBe(false);
    expect(lines.map((line) => line.level)).toEqual(['debug']);
  });
});

describe('CompletionBuffer', () => {
  const claim = (id: number): NotificationClaim => ({ id, leaseUntil: 1_000 + id });

  it('removes delivered claims together, once, after a short delay', async () => {
    const writes: NotificationClaim[][] = [];
    const buffer = new CompletionBuffer({ completeNotifications: async (claims) => void writes.push([...claims]) }, () => true, () => undefined);
    buffer.add(claim(1));
    buffer.add(claim(2));
    expect(writes).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(writes).toEqual([[claim(1), claim(2)]]);
  });

  it('claims taken by a commit are not written again; a failed write puts them back', async () => {
    let fail = true;
    const writes: NotificationClaim[][] = [];
    const failures: unknown[] = [];
    const buffer = new CompletionBuffer(
      {
        completeNotifications: async (claims) => {
          if (fail) throw new Error('database is locked');
          writes.push([...claims]);
        },
      },
      () => true,
      (error) => void failures.push(error),
    );
    buffer.add(claim(1));
    expect(buffer.take()).toEqual([claim(1)]);
    buffer.add(claim(2));
    await vi.advanceTimersByTimeAsync(100);
    expect(failures).toHaveLength(1);
    fail = false;
    await buffer.flush();
    expect(writes).toEqual([[claim(2)]]);
  });

  it('arms no delayed write while it may not flush', async () => {
    const writes: NotificationClaim[][] = [];
    const buffer = new CompletionBuffer({ completeNotifications: async (claims) => void writes.push([...claims]) }, () => false, () => undefined);
    buffer.add(claim(1));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(writes).toEqual([]);
    await buffer.flush();
    expect(writes).toEqual([[claim(1)]]);
  });
});

describe('EngineLifecycle', () => {
  it('lets handlers start before the first start and while running, never once a stop began', () => {
    const lifecycle = new EngineLifecycle();
    expect(lifecycle.handlersMayStart).toBe(true);
    expect(lifecycle.running).toBe(false);
    expect(lifecycle.start()).toBe(true);
    expect(lifecycle.start()).toBe(false);
    lifecycle.beginStop();
    expect(lifecycle.handlersMayStart).toBe(false);
    lifecycle.endStop();
    expect(lifecycle.state).toBe('stopped');
    expect(lifecycle.handlersMayStart).toBe(false);
    expect(lifecycle.start()).toBe(true);
  });

  it('settled() waits for tracked work, including work tracked while it waits', async () => {
    vi.useRealTimers();
    const lifecycle = new EngineLifecycle();
    const order: string[] = [];
    let finishSecond!: () => void;
    void lifecycle.track(
      new Promise<void>((resolve) =>
        setTimeout(() => {
          order.push('first');
          void lifecycle.track(new Promise<void>((r) => (finishSecond = r)).then(() => void order.push('second')));
          resolve();
          setTimeout(() => finishSecond(), 10);
        }, 10),
      ),
    );
    await lifecycle.settled();
    expect(order).toEqual(['first', 'second']);
  });
});

import { describe, expect, it } from 'vitest';
import { SLICE_MS } from '../src/runtime/event-loop-slice.js';
import { PacedSettlement } from '../src/runtime/paced-settlement.js';
import { GroupCommitter } from '../src/runtime/store/postgres/commit-queue.js';
import type { BatchOutcome } from '../src/runtime/store/contract.js';

/**
 * Callers of one shared transaction are told their results a slice's worth per
 * turn of the event loop, so the host's timers run between them.
 */

/** Keeps the thread busy for `ms`, as a caller planning its next commit does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** Counts the turns of the event loop (immediates that ran) until stopped. */
function turns(): { stop(): number } {
  let count = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    count++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    stop() {
      running = false;
      return count;
    },
  };
}

describe('PacedSettlement', () => {
  it('tells every caller, in order, and lets the loop turn between slices', async () => {
    const pacing = new PacedSettlement();
    const told: number[] = [];
    const loop = turns();
    await pacing.settle(40, (i) => {
      told.push(i);
      busy(0.2);
    });
    const turned = loop.stop();
    expect(told).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // 40 callers of 0.2 ms are 8 ms of work: at most a slice of it per turn.
    expect(turned).toBeGreaterThanOrEqual(Math.floor((40 * 0.2) / SLICE_MS / 2));
  });

  it('tells a lone caller at once, in the same turn', async () => {
    const pacing = new PacedSettlement();
    let told = false;
    const loop = turns();
    const settled = pacing.settle(1, () => (told = true));
    expect(told).toBe(true);
    await settled;
    expect(loop.stop()).toBe(0);
  });
});

describe('PostgreSQL group commit', () => {
  it("resolves a group's callers paced: the loop turns before the last of 32 is told", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const ok = <T>(): BatchOutcome<T> => ({ ok: true, result: undefined as T, claimed: [] });
    // One slot: the first commit holds it, the next 32 queue and go as one group.
    const group = new GroupCommitter(
      1,
      async <T>() => {
        await held;
        return ok<T>();
      },
      async (items) => items.map(() => ok()),
    );
    const item = { load: {}, plan: () => ({ result: undefined }), limit: 0 };
    const first = group.commit(item);
    let loopTurnedWhileTelling = false;
    let toldSoFar = 0;
    const grouped = Array.from({ length: 32 }, () =>
      group.commit(item).then(() => {
        toldSoFar++;
        busy(0.1);
      }),
    );
    release();
    await first;
    await new Promise<void>((resolve) => {
      const check = () => {
        if (toldSoFar > 0 && toldSoFar < 32) loopTurnedWhileTelling = true;
        if (toldSoFar < 32) setImmediate(check);
        else resolve();
      };
      setImmediate(check);
    });
    await Promise.all(grouped);
    expect(loopTurnedWhileTelling).toBe(true);
  });
});

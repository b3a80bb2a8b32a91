import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FlowError, openTaskflow, silentLogger } from '../src/index.js';
import { openSqliteStore } from '../src/runtime/store/sqlite/open.js';
import { WalSync } from '../src/runtime/store/sqlite/wal-sync.js';
import { newFlow } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';

/**
 * `synchronous: 'full'` on the main thread: a crowded group commit is written at
 * NORMAL and the write-ahead log fsynced on libuv's thread pool before any of its
 * callers hears of its commit; one fsync covers every commit written before it began.
 */

/**
 * A WalSync on a log file of its own, whose fsync the test releases (or fails)
 * by hand; `log.written` is the count of commits the store has written.
 */
function heldWalSync(written: number) {
  const path = tempDbPath();
  writeFileSync(`${path}-wal`, '');
  const calls: { release(): void; fail(error: Error): void }[] = [];
  const fsync = () =>
    new Promise<void>((resolve, reject) => {
      calls.push({ release: resolve, fail: reject });
    });
  const log = { written };
  return { sync: new WalSync(path, () => log.written, fsync), calls, log };
}

/** Waits (a few ms at most) until the held fsync has been asked for `count` times. */
async function fsyncsAsked(calls: readonly unknown[], count: number): Promise<void> {
  for (let i = 0; i < 500 && calls.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(calls).toHaveLength(count);
}

const settledYet = async (promise: Promise<unknown>): Promise<boolean> => {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
};

describe('WalSync: durable commits with the fsync off the thread', () => {
  it('covers every commit written before its fsync began with that one fsync', async () => {
    const { sync, calls } = heldWalSync(3);
    const waits = [sync.covering(1)!, sync.covering(2)!, sync.covering(3)!];
    await fsyncsAsked(calls, 1);
    await expect(settledYet(Promise.all(waits))).resolves.toBe(false);
    calls[0]!.release();
    await Promise.all(waits);
    expect(calls).toHaveLength(1);
    await sync.close();
  });

  it('makes a commit written while an fsync is under way wait for the next one', async () => {
    const { sync, calls, log } = heldWalSync(1);
    const first = sync.covering(1)!;
    await fsyncsAsked(calls, 1);
    log.written = 2; // written after the first fsync began: not covered by it
    const second = sync.covering(2)!;
    calls[0]!.release();
    await first;
    await fsyncsAsked(calls, 2);
    await expect(settledYet(second)).resolves.toBe(false);
    calls[1]!.release();
    await second;
    await sync.close();
  });

  it('fails the waits of a failed fsync, and every later one, with storage', async () => {
    const { sync, calls, log } = heldWalSync(1);
    const first = sync.covering(1)!;
    await fsyncsAsked(calls, 1);
    calls[0]!.fail(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    await expect(first).rejects.toSatisfy((error: unknown) => FlowError.isInstance(error) && error.code === 'storage' && /fsync of its write-ahead log failed/.test(error.message));
    log.written = 2;
    await expect(sync.covering(2)!).rejects.toThrow(/reopen the store/);
    expect(calls).toHaveLength(1);
    await sync.close();
  });
});

describe('the main-thread store at synchronous FULL', () => {
  it('commits a crowded group at NORMAL, syncing the log itself, and is back at FULL for the next lone commit', async () => {
    const path = tempDbPath();
    const store = openSqliteStore({ path, synchronous: 'full' });
    const modes: number[] = [];
    const tf = await openTaskflow({ store, logger: silentLogger });
    const flows = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const flow = await tf.manager.createAndStart({ ...newFlow, wait: { kind: 'manual', signal: 'go' } });
        modes.push(store.sqlite.pragma('synchronous', { simple: true }) as number);
        return flow;
      }),
    );
    expect(new Set(modes)).toEqual(new Set([2])); // FULL whenever a caller looks
    await tf.close();
    const reopened = openSqliteStore({ path });
    for (const flow of flows) expect((await reopened.getFlow(flow.id))?.status).toBe('waiting');
    await reopened.close();
  });

  it('keeps SQLite FULL itself where nothing else would sync: a store opened with migrate: false (the CLI)', async () => {
    const path = tempDbPath();
    await (openSqliteStore({ path })).close();
    const store = openSqliteStore({ path, migrate: false });
    expect(store.sqlite.pragma('synchronous', { simple: true })).toBe(2); // FULL
    await store.close();
  });
});

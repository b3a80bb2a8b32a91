import { describe, expect, it } from 'vitest';
import { openTaskflow, type Taskflow } from '../src/index.js';
import { holdWriteLock } from './support/sqlite-faults.js';
import { newFlow } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';
import { until } from './support/until.js';

/**
 * `watchForeignCommits` on SQLite: a commit by another connection (a second
 * handle on the same file, another process) reaches the listener within a few
 * checks of `PRAGMA data_version`, long before any sweep; the store's own commits
 * are not reported (observeCommits sees those).
 */

const quiet = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function twoHandles(): Promise<{ mine: Taskflow; other: Taskflow; close: () => Promise<void> }> {
  const path = tempDbPath();
  const mine = await openTaskflow({ database: path });
  const other = await openTaskflow({ database: path });
  return { mine, other, close: async () => (await mine.close(), await other.close()) };
}

describe('SQLite: commits made by another connection', () => {
  it('a commit through a second handle on the same file calls the listener', async () => {
    const { mine, other, close } = await twoHandles();
    let calls = 0;
    const unsubscribe = mine.store.watchForeignCommits(() => calls++);
    await other.manager.createManaged(newFlow);
    await until(() => calls > 0, 2_000);
    unsubscribe();
    await close();
  });

  it('a commit by another process calls the listener', async () => {
    const path = tempDbPath();
    const tf = await openTaskflow({ database: path });
    let calls = 0;
    const unsubscribe = tf.store.watchForeignCommits(() => calls++);
    const holder = holdWriteLock(path);
    await holder.locked;
    expect(calls).toBe(0); // a lock taken is not a commit
    await holder.release();
    await until(() => calls > 0, 2_000);
    unsubscribe();
    await tf.close();
  });

  it("the store's own commits are not reported", async () => {
    const { mine, close } = await twoHandles();
    let calls = 0;
    const unsubscribe = mine.store.watchForeignCommits(() => calls++);
    const flow = await mine.manager.createManaged(newFlow);
    await mine.manager.startRunning(flow.id);
    await quiet(200); // twenty checks
    expect(calls).toBe(0);
    unsubscribe();
    await close();
  });

  it('every listener hears of a commit, and one that unsubscribed no longer does', async () => {
    const { mine, other, close } = await twoHandles();
    const heard = { first: 0, second: 0 };
    const stopFirst = mine.store.watchForeignCommits(() => heard.first++);
    const stopSecond = mine.store.watchForeignCommits(() => {
      heard.second++;
      throw new Error('a failing listener harms nobody');
    });
    await other.manager.createManaged(newFlow);
    await until(() => heard.first > 0 && heard.second > 0, 2_000);
    stopFirst();
    const before = { ...heard };
    await other.manager.createManaged(newFlow);
    await until(() => heard.second > before.second, 2_000);
    expect(heard.first).toBe(before.first);
    stopSecond();
    await close();
  });
});

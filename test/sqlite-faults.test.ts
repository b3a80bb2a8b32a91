import { openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlowError, openTaskflow, type Taskflow } from '../src/index.js';
import { openSqliteStore } from '../src/runtime/store/sqlite/open.js';
import { canMountSmallDisk, fillDisk, holdWriteLock, makeReadOnly, smallDisk, watchEventLoop } from './support/sqlite-faults.js';
import { newFlow } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';
import { sqlitePragma } from './support/sqlite-pragma.js';

/**
 * The SQLite store under real storage faults: every failure is a
 * `FlowError('storage')` that names the file and says what to do, on every call
 * while it lasts, and the same store works again once it is fixed. A lock held by
 * another process is waited for without stalling the event loop.
 */

const storageFailure = (message: RegExp) => expect.objectContaining({ code: 'storage', message: expect.stringMatching(message) });

/** What opening, then reading, a damaged file throws first. */
async function firstFailure(path: string): Promise<unknown> {
  try {
    const store = openSqliteStore({ path });
    try {
      await store.listByStatus('waiting');
      await store.listByStatus('finished');
    } finally {
      await store.close();
    }
  } catch (error) {
    return error;
  }
  return undefined;
}

async function withTaskflow<T>(tf: Taskflow, use: (tf: Taskflow) => Promise<T>): Promise<T> {
  try {
    return await use(tf);
  } finally {
    await tf.close();
  }
}

/** A state of about `bytes` bytes, so a write needs fresh pages and log space. */
const bulkyState = (bytes: number) => ({ blob: 'x'.repeat(bytes) });

describe('a file that is not a taskflow database', () => {
  it('opening a file that is not SQLite at all fails with storage, naming the file and what to do', () => {
    const path = tempDbPath();
    writeFileSync(path, 'these are my holiday notes, not a database\n'.repeat(200));
    let failure: unknown;
    try {
      openSqliteStore({ path });
    } catch (error) {
      failure = error;
    }
    expect(FlowError.isInstance(failure)).toBe(true);
    expect(failure).toEqual(storageFailure(/is not a taskflow SQLite database, or it is damaged/));
    const message = (failure as Error).message;
    expect(message).toContain(path);
    expect(message).toMatch(/Restore it from a backup/);
    expect(message).toMatch(/TASKFLOW_DB_PATH/);
  });

  it('a database damaged inside fails with the same storage error, never a raw SqliteError', async () => {
    const path = tempDbPath();
    const tf = await openTaskflow({ database: path });
    for (let i = 0; i < 50; i++) await tf.manager.createManaged({ ...newFlow, state: bulkyState(2_000) });
    await tf.close();
    // Keep the header page, overwrite every page after it with garbage.
    const size = readFileSync(path).length;
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(size - 4096, 0xa5), 0, size - 4096, 4096);
    closeSync(fd);

    const failure = await firstFailure(path);
    expect(FlowError.isInstance(failure)).toBe(true);
    expect(failure).toEqual(storageFailure(/is not a taskflow SQLite database, or it is damaged/));
    expect((failure as Error).message).toContain(path);
  });
});

describe('a read-only file or folder', () => {
  it('a store on a read-only file reads, refuses every write with storage saying so, and writes again once the file is writable', async () => {
    const path = tempDbPath();
    const before = await openTaskflow({ database: path });
    const kept = await before.manager.createManaged(newFlow);
    await before.close();
    const restore = makeReadOnly(path, 'file');

    await withTaskflow(await openTaskflow({ database: path }), async (tf) => {
      expect((await tf.manager.get(kept.id))?.goal).toBe(newFlow.goal);
      for (let attempt = 0; attempt < 3; attempt++) {
        await expect(tf.manager.createManaged(newFlow)).rejects.toEqual(storageFailure(/cannot write .* read-only.*The call changed nothing/));
      }
      await expect(tf.manager.startRunning(kept.id)).rejects.toEqual(storageFailure(new RegExp(`cannot write ${path}`)));
      expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toHaveLength(1);

      restore();
      const created = await tf.manager.createManaged(newFlow);
      expect((await tf.manager.startRunning(kept.id)).status).toBe('running');
      expect((await tf.manager.listByOwner(newFlow.ownerSessionKey)).map((flow) => flow.id).sort()).toEqual([kept.id, created.id].sort());
    });
  });

  it('opening a database in a read-only folder fails with storage saying what to check; it opens once the folder is writable', async () => {
    const path = tempDbPath();
    await (await openTaskflow({ database: path })).close(); // closed cleanly: SQLite must create its -wal and -shm again
    const restore = makeReadOnly(dirname(path), 'folder');
    for (const file of [path, join(dirname(path), 'new.db')]) {
      let failure: unknown;
      try {
        openSqliteStore({ path: file });
      } catch (error) {
        failure = error;
      }
      expect(failure).toEqual(storageFailure(/cannot open .*may read and write the file and its folder/));
      expect((failure as Error).message).toContain(file);
    }
    restore();
    const store = openSqliteStore({ path });
    expect(await store.listByStatus('waiting')).toEqual([]);
    await store.close();
  });
});

describe('a full disk', () => {
  it.runIf(canMountSmallDisk)('on a real small disk that fills up, every write fails with storage "disk is full", and the same runtime writes again once space is freed', async () => {
    const disk = smallDisk(2048)!;
    const path = join(disk.dir, 'data', 'taskflow.db');
    await withTaskflow(await openTaskflow({ database: path }), async (tf) => {
      const kept = await tf.manager.createManaged(newFlow);
      const filler = fillDisk(join(disk.dir, 'filler'));
      for (let attempt = 0; attempt < 3; attempt++) {
        await expect(tf.manager.createManaged({ ...newFlow, state: bulkyState(300_000) })).rejects.toEqual(
          storageFailure(/cannot write .*the disk is full.*The call changed nothing/),
        );
      }
      expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toHaveLength(1);

      rmSync(filler);
      const created = await tf.manager.createManaged({ ...newFlow, state: bulkyState(300_000) });
      expect((await tf.manager.get(created.id))?.state.blob).toHaveLength(300_000);
      expect((await tf.manager.get(kept.id))?.revision).toBe(0);
    });
  });

  it('a database that reaches its size limit (SQLITE_FULL through max_page_count) fails with the same error, then works once it may grow', async () => {
    const path = tempDbPath();
    await withTaskflow(await openTaskflow({ database: path }), async (tf) => {
      const pages = (await sqlitePragma(tf.store, 'page_count')) as number;
      await sqlitePragma(tf.store, `max_page_count = ${pages + 2}`);
      for (let attempt = 0; attempt < 3; attempt++) {
        await expect(tf.manager.createManaged({ ...newFlow, state: bulkyState(100_000) })).rejects.toEqual(
          storageFailure(/cannot write .*the disk is full/),
        );
      }
      expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toEqual([]);
      await sqlitePragma(tf.store, 'max_page_count = 1073741823');
      const created = await tf.manager.createManaged({ ...newFlow, state: bulkyState(100_000) });
      expect((await tf.manager.get(created.id))?.state.blob).toHaveLength(100_000);
    });
  });
});

describe('a write lock held by another process', () => {
  it('a call waits for the lock without stalling the event loop, and completes once the lock is released', async () => {
    const path = tempDbPath();
    await withTaskflow(await openTaskflow({ database: path, busyTimeout: '60s' }), async (tf) => {
      const holder = holdWriteLock(path);
      await holder.locked;
      const loop = watchEventLoop();
      let settled = false;
      const creating = tf.manager.createManaged(newFlow).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(settled).toBe(false);
      await holder.release();
      const created = await creating;
      const worst = loop.stop();
      expect((await tf.manager.get(created.id))?.goal).toBe(newFlow.goal);
      expect(worst).toBeLessThan(200);
    });
  });

  it('a call fails with storage "database is locked by another process" once the lock outlasts busyTimeout, without stalling the event loop', async () => {
    const path = tempDbPath();
    await withTaskflow(await openTaskflow({ database: path, busyTimeout: '1s' }), async (tf) => {
      const holder = holdWriteLock(path);
      await holder.locked;
      const loop = watchEventLoop();
      const started = performance.now();
      await expect(tf.manager.createManaged(newFlow)).rejects.toEqual(storageFailure(/^database is locked by another process: .*busyTimeout/));
      const waited = performance.now() - started;
      const worst = loop.stop();
      expect(waited).toBeGreaterThanOrEqual(990);
      expect(worst).toBeLessThan(200);
      await holder.release();
      expect(await tf.manager.listByOwner(newFlow.ownerSessionKey)).toEqual([]);
      expect((await tf.manager.createManaged(newFlow)).revision).toBe(0);
    });
  });

  it('reads and opening a migrated file go on while another process holds the write lock', async () => {
    const path = tempDbPath();
    const first = await openTaskflow({ database: path });
    const flow = await first.manager.createManaged(newFlow);
    await first.close();
    const holder = holdWriteLock(path);
    await holder.locked;
    await withTaskflow(await openTaskflow({ database: path, busyTimeout: 0 }), async (tf) => {
      expect((await tf.manager.get(flow.id))?.goal).toBe(newFlow.goal);
    });
    await holder.release();
  });
});

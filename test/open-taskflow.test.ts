import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDatabasePath, openTaskflow } from '../src/index.js';
import { tempDbPath } from './support/temp-db.js';
import { sqlitePragma } from './support/sqlite-pragma.js';
import { newFlow } from './support/taskflow.js';

const cwd = process.cwd();
afterEach(() => process.chdir(cwd));

describe('openTaskflow', () => {
  it('opens the database option, creating its folder and tables', async () => {
    const path = join(tempDbPath(), '..', 'nested', 'deeper', 'flows.db');
    const tf = await openTaskflow({ database: path });
    await tf.manager.createManaged(newFlow);
    await tf.close();
    expect(existsSync(path)).toBe(true);
  });

  it('falls back to TASKFLOW_DB_PATH, then ./data/taskflow.db', () => {
    expect(defaultDatabasePath({ TASKFLOW_DB_PATH: '/srv/flows.db' })).toBe('/srv/flows.db');
    const folder = mkdtempSync(join(tmpdir(), 'taskflow-cwd-'));
    try {
      process.chdir(folder);
      expect(defaultDatabasePath({})).toBe(join(process.cwd(), 'data', 'taskflow.db'));
    } finally {
      process.chdir(cwd);
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('uses ./data/taskflow.db when nothing is configured', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'taskflow-cwd-'));
    const saved = process.env.TASKFLOW_DB_PATH;
    delete process.env.TASKFLOW_DB_PATH;
    try {
      process.chdir(folder);
      const tf = await openTaskflow();
      await tf.close();
      expect(existsSync(join(folder, 'data', 'taskflow.db'))).toBe(true);
    } finally {
      if (saved !== undefined) process.env.TASKFLOW_DB_PATH = saved;
      process.chdir(cwd);
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('runs entirely in memory with :memory:', async () => {
    const tf = await openTaskflow({ database: ':memory:' });
    const flow = await tf.manager.createManaged(newFlow);
    expect((await tf.manager.get(flow.id))!.goal).toBe(newFlow.goal);
    await tf.close();
  });

  it('sets WAL, foreign keys and FULL sync by default, NORMAL on request; SQLite itself never waits for a lock (the store waits asynchronously)', async () => {
    const full = await openTaskflow({ database: tempDbPath() });
    expect(await sqlitePragma(full.store, 'journal_mode')).toBe('wal');
    expect(await sqlitePragma(full.store, 'foreign_keys')).toBe(1);
    expect(await sqlitePragma(full.store, 'synchronous')).toBe(2);
    expect(await sqlitePragma(full.store, 'busy_timeout')).toBe(0);
    await full.close();
    const normal = await openTaskflow({ database: tempDbPath(), synchronous: 'normal' });
    expect(await sqlitePragma(normal.store, 'synchronous')).toBe(1);
    await normal.close();
  });

  it('refuses a malformed duration option with a clear message', async () => {
    await expect(openTaskflow({ database: ':memory:', tickInterval: 'soon' })).rejects.toThrow(/tickInterval "soon" is not a duration/);
  });

  it('closes idempotently and refuses work after close', async () => {
    const tf = await openTaskflow({ database: tempDbPath() });
    await tf.close();
    await tf.close();
    await expect(tf.manager.createManaged(newFlow)).rejects.toThrow(/closed/);
  });
});

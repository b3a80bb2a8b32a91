import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FlowError, openTaskflow, silentLogger, type Flow } from '../src/index.js';
import { updateStateMove } from '../src/runtime/moves.js';
import type { BatchCommit } from '../src/runtime/store/contract.js';
import { checkpointThread } from '../src/runtime/store/sqlite/checkpointer.js';
import { openSqliteStore } from '../src/runtime/store/sqlite/open.js';
import type { SqliteFlowStore } from '../src/runtime/store/sqlite/store.js';
import { newFlow, T0 } from './support/taskflow.js';
import { setN } from './support/set-n-commit.js';
import { tempDbPath } from './support/temp-db.js';
import { until } from './support/until.js';

/**
 * The main-thread SQLite store's group commit: commits asked for in the same turn
 * of the event loop share one transaction (one fsync), each in a savepoint, and
 * the store lets the host's event loop turn while callers keep it busy.
 */

async function openStore(options: { groupCommit?: boolean } = {}): Promise<{ store: SqliteFlowStore; path: string }> {
  const path = await tempDbPath();
  return { store: openSqliteStore({ path, ...options }), path };
}

async function runningFlows(store: SqliteFlowStore, count: number): Promise<Flow[]> {
  const tf = await openTaskflow({ store, logger: silentLogger });
  const flows: Flow[] = [];
  for (let i = 0; i < count; i++) flows.push(await tf.manager.startRunning((await tf.manager.createManaged(newFlow)).id));
  return flows;
}

/** Counts the savepoints the store opens (each grouped commit takes one), on every better-sqlite3 statement. */
function countSavepoints(store: SqliteFlowStore): { count(): number } {
  const statementPrototype = Object.getPrototypeOf(store.sqlite.prepare('SELECT 1')) as Database.Statement;
  const run = vi.spyOn(statementPrototype, 'run');
  const exec = vi.spyOn(store.sqlite, 'exec');
  return {
    count: () =>
      run.mock.contexts.filter((statement) => (statement as Database.Statement).source.startsWith('SAVEPOINT')).length +
      exec.mock.calls.filter(([sql]) => sql.startsWith('SAVEPOINT')).length,
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('SQLite group commit (main thread)', () => {
  it('writes the commits of one turn in one transaction, a savepoint each, every caller getting its own result', async () => {
    const { store, path } = await openStore();
    const flows = await runningFlows(store, 8);
    const savepoints = countSavepoints(store);
    const results = await Promise.all(flows.map((flow, i) => store.commit(setN(flow.id, i).load, setN(flow.id, i).plan)));
    expect(results).toEqual(flows.map((flow) => flow.revision + 1));
    expect(savepoints.count()).toBe(8);
    // Durable for every reader once the callers have their results.
    const reader = new Database(path, { readonly: true });
    const states = reader.prepare('SELECT state_json AS s FROM flows ORDER BY created_at').all() as { s: string }[];
    reader.close();
    expect(states.map((row) => JSON.parse(row.s))).toEqual(flows.map((_, i) => ({ n: i })));
    await store.close();
  });

  it('gives a lone commit a plain transaction of its own (no savepoint)', async () => {
    const { store } = await openStore();
    const [flow] = await runningFlows(store, 1);
    const savepoints = countSavepoints(store);
    await store.commit(setN(flow!.id, 1).load, setN(flow!.id, 1).plan);
    expect(savepoints.count()).toBe(0);
    await store.close();
  });

  it('fails only the caller whose plan throws or whose write is refused; the others are written', async () => {
    const { store } = await openStore();
    const [a, b, c] = await runningFlows(store, 3);
    const stale: BatchCommit<number> = {
      load: { flowIds: [b!.id] },
      plan: (loaded) => {
        const write = updateStateMove(loaded.flows[0]!, new Date(T0 + 1), { n: 99 });
        return { result: 0, writes: [{ ...write, fromRevision: write.fromRevision - 1 }] };
      },
    };
    const missing = setN('00000000-0000-4000-8000-000000000000', 5);
    const settled = await Promise.allSettled([
      store.commit(setN(a!.id, 1).load, setN(a!.id, 1).plan),
      store.commit(stale.load, stale.plan),
      store.commit(missing.load, missing.plan),
      store.commit(setN(c!.id, 3).load, setN(c!.id, 3).plan),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(((settled[1] as PromiseRejectedResult).reason as FlowError).code).toBe('revision_mismatch');
    expect(((settled[2] as PromiseRejectedResult).reason as FlowError).code).toBe('not_found');
    expect((await store.getFlow(a!.id))?.state).toEqual({ n: 1 });
    expect((await store.getFlow(b!.id))?.revision).toBe(b!.revision);
    expect((await store.listEvents(b!.id)).map((e) => e.kind)).not.toContain('state_updated');
    expect((await store.getFlow(c!.id))?.state).toEqual({ n: 3 });
    await store.close();
  });

  it('waits out another process holding the write lock without stalling the loop, then writes the whole group', async () => {
    const { store, path } = await openStore();
    const flows = await runningFlows(store, 4);
    const other = new Database(path);
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const pending = Promise.all(flows.map((flow, i) => store.commit(setN(flow.id, i).load, setN(flow.id, i).plan)));
    await new Promise((resolve) => setTimeout(resolve, 150));
    other.exec('COMMIT');
    other.close();
    const revisions = await pending;
    clearInterval(timer);
    expect(revisions).toEqual(flows.map((flow) => flow.revision + 1));
    expect(ticks).toBeGreaterThan(5);
    for (const [i, flow] of flows.entries()) expect((await store.getFlow(flow.id))?.state).toEqual({ n: i });
    await store.close();
  });

  it('lets each plan of a group see what the commits before it wrote', async () => {
    const { store } = await openStore();
    const [flow] = await runningFlows(store, 1);
    const revisions = await Promise.all([1, 2, 3].map((n) => store.commit(setN(flow!.id, n).load, setN(flow!.id, n).plan)));
    expect(revisions).toEqual([flow!.revision + 1, flow!.revision + 2, flow!.revision + 3]);
    expect((await store.getFlow(flow!.id))?.state).toEqual({ n: 3 });
  });

  it('writes what was asked for before close, then refuses new commits', async () => {
    const { store, path } = await openStore();
    const [flow] = await runningFlows(store, 1);
    const pending = store.commit(setN(flow!.id, 7).load, setN(flow!.id, 7).plan);
    await store.close();
    await expect(pending).resolves.toBe(flow!.revision + 1);
    await expect(store.commit(setN(flow!.id, 8).load, setN(flow!.id, 8).plan)).rejects.toThrow(/closed/);
    const reopened = openSqliteStore({ path });
    expect((await reopened.getFlow(flow!.id))?.state).toEqual({ n: 7 });
    await reopened.close();
  });

  it('resolves every one of several closes at once only when the file is closed', async () => {
    const { store } = await openStore();
    const [flow] = await runningFlows(store, 1);
    const pending = store.commit(setN(flow!.id, 7).load, setN(flow!.id, 7).plan);
    const openWhenResolved = await Promise.all([store.close(), store.close(), store.close()].map((close) => close.then(() => store.sqlite.open)));
    expect(openWhenResolved).toEqual([false, false, false]);
    await expect(pending).resolves.toBe(flow!.revision + 1);
  });

  it('with groupCommit: false, gives every commit a transaction of its own', async () => {
    const { store } = await openStore({ groupCommit: false });
    const flows = await runningFlows(store, 4);
    const savepoints = countSavepoints(store);
    await Promise.all(flows.map((flow, i) => store.commit(setN(flow.id, i).load, setN(flow.id, i).plan)));
    expect(savepoints.count()).toBe(0);
    for (const [i, flow] of flows.entries()) expect((await store.getFlow(flow.id))?.state).toEqual({ n: i });
    await store.close();
  });

  it("keeps the host's timers running while one caller awaits calls back to back", async () => {
    const { store } = await openStore();
    const tf = await openTaskflow({ store, logger: silentLogger });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    let calls = 0;
    // Every call completes without I/O: without the slice, this loop never lets the timer run. It runs until the
    // timer has run 20 times, not for a set time: the timer runs at most once per turn of the loop, and on a
    // machine busy with other work 400 ms held only 15 turns.
    const hangGuard = performance.now() + 60_000;
    while (ticks < 20 && performance.now() < hangGuard) {
      const flow = await tf.manager.createAndStart({ ...newFlow, wait: { kind: 'manual', signal: 'approve' } });
      await tf.store.getFlow(flow.id);
      calls++;
    }
    clearInterval(timer);
    expect(ticks, `the timer ran ${ticks} times during ${calls} calls`).toBeGreaterThanOrEqual(20);
    await tf.close();
  });
});

describe('SQLite checkpoints off the main thread', () => {
  it('keeps the write-ahead log small under a steady stream of commits, and leaves no log after close', async () => {
    const { store, path } = await openStore({});
    const tf = await openTaskflow({ store, logger: silentLogger });
    let largest = 0;
    // About 3,000 commits of a dozen pages each: some 150 MiB of log if nothing checkpointed.
    for (let i = 0; i < 1_000; i++) {
      await Promise.all([1, 2, 3].map(() => tf.manager.createAndStart({ ...newFlow, wait: { kind: 'manual', signal: 'approve' } })));
      if (i % 50 === 0) largest = Math.max(largest, statSync(`${path}-wal`).size);
    }
    expect(largest).toBeLessThan(40 * 1024 * 1024);
    await tf.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reopened = openSqliteStore({ path });
    expect((await reopened.countByStatus()).waiting).toBe(3_000);
    await reopened.close();
  });

  it('lets a process that wrote much and never closed its runtime finish every write and exit by itself', async () => {
    const path = await tempDbPath();
    const script = fileURLToPath(new URL('./support/unclosed-writer.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(out).toMatch(/^wrote \S+/);
    expect(code).toBe(0);
    const reopened = openSqliteStore({ path });
    expect((await reopened.countByStatus()).waiting).toBe(4_500);
    await reopened.close();
  });
});

describe('SQLite checkpoints when the checkpoint thread dies', () => {
  it('goes back to checkpointing in its own commits: every write lands and the log stays small', async () => {
    const { store, path } = await openStore({});
    const tf = await openTaskflow({ store, logger: silentLogger });
    await tf.manager.createAndStart({ ...newFlow, wait: { kind: 'manual', signal: 'approve' } });
    const thread = checkpointThread();
    expect(thread).toBeDefined();
    await thread!.terminate();
    await until(() => store.sqlite.pragma('wal_autocheckpoint', { simple: true }) === 1000, 5_000);
    let largest = 0;
    for (let i = 0; i < 1_000; i++) {
      await Promise.all([1, 2, 3].map(() => tf.manager.createAndStart({ ...newFlow, wait: { kind: 'manual', signal: 'approve' } })));
      if (i % 50 === 0) largest = Math.max(largest, statSync(`${path}-wal`).size);
    }
    expect(largest).toBeLessThan(40 * 1024 * 1024);
    expect((await store.countByStatus()).waiting).toBe(3_001);
    await tf.close();
  });
});

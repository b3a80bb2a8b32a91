import { afterEach, describe, expect, it } from 'vitest';
import { openTaskflow, type Taskflow } from '../src/index.js';
import { openPostgresStore } from '../src/runtime/store/postgres/open.js';
import type { PostgresFlowStore } from '../src/runtime/store/postgres/store.js';
import { tempPgDatabase } from './support/pg-database.js';
import { newFlow } from './support/taskflow.js';
import { until } from './support/until.js';

/**
 * Issue 9.8 on PostgreSQL: a store hears, through LISTEN/NOTIFY, the commits of
 * other stores on the same database that give an engine something to do.
 */

const opened: { close(): Promise<void> }[] = [];

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

async function twoStores(): Promise<{ watcher: PostgresFlowStore; writer: Taskflow }> {
  const url = await tempPgDatabase();
  const watcher = await openPostgresStore({ connectionString: url });
  opened.push(watcher);
  const writer = await openTaskflow({ store: await openPostgresStore({ connectionString: url }) });
  opened.push(writer);
  return { watcher, writer };
}

/** Subscribes and waits for the call the watch makes once it listens. */
async function watching(store: PostgresFlowStore): Promise<{ calls(): number; unsubscribe(): void }> {
  let calls = 0;
  const unsubscribe = store.watchForeignCommits(() => void calls++);
  await until(() => calls > 0);
  calls = 0;
  return { calls: () => calls, unsubscribe };
}

async function running(tf: Taskflow): Promise<string> {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return flow.id;
}

describe('watchForeignCommits on PostgreSQL', () => {
  it('calls the watcher once it listens, so nothing committed before is missed', async () => {
    const { watcher } = await twoStores();
    let calls = 0;
    watcher.watchForeignCommits(() => void calls++);
    await until(() => calls === 1);
  });

  it('calls the watcher when another store commits a timer wait', async () => {
    const { watcher, writer } = await twoStores();
    const watch = await watching(watcher);
    const id = await running(writer);
    await writer.manager.setWaiting(id, { kind: 'timer', at: Date.now() + 60_000 });
    await until(() => watch.calls() === 1);
  });

  it('calls the watcher when another store queues a resume for any engine to deliver', async () => {
    const { watcher, writer } = await twoStores();
    const id = await running(writer);
    await writer.manager.setWaiting(id, { kind: 'manual' });
    const watch = await watching(watcher);
    await writer.engine.signal(id);
    await until(() => watch.calls() === 1);
  });

  it('stays silent on commits that give no engine anything to do', async () => {
    const { watcher, writer } = await twoStores();
    const watch = await watching(watcher);
    const id = await running(writer);
    await writer.manager.updateState(id, { step: 1 });
    await writer.manager.setWaiting(id, { kind: 'external_event', topic: 'invoices', correlationId: 'INV-42' });
    // Notifications arrive in commit order: once this one is heard, the earlier ones would have been.
    const other = await running(writer);
    await writer.manager.setWaiting(other, { kind: 'timer', at: Date.now() + 60_000 });
    await until(() => watch.calls() >= 1);
    expect(watch.calls()).toBe(1);
  });

  it("does not report the store's own commits to its watchers", async () => {
    const url = await tempPgDatabase();
    const tf = await openTaskflow({ store: await openPostgresStore({ connectionString: url }) });
    opened.push(tf);
    const other = await openTaskflow({ store: await openPostgresStore({ connectionString: url }) });
    opened.push(other);
    const watch = await watching(tf.store as PostgresFlowStore);
    const own = await running(tf);
    await tf.manager.setWaiting(own, { kind: 'timer', at: Date.now() + 60_000 });
    const foreign = await running(other);
    await other.manager.setWaiting(foreign, { kind: 'timer', at: Date.now() + 60_000 });
    await until(() => watch.calls() >= 1);
    expect(watch.calls()).toBe(1);
  });

  it('stops calling a watcher that unsubscribed, and keeps calling the others', async () => {
    const { watcher, writer } = await twoStores();
    const gone = await watching(watcher);
    const staying = await watching(watcher);
    gone.unsubscribe();
    const id = await running(writer);
    await writer.manager.setWaiting(id, { kind: 'timer', at: Date.now() + 60_000 });
    await until(() => staying.calls() === 1);
    expect(gone.calls()).toBe(0);
  });
});

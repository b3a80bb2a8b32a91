import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openTaskflow, silentLogger, type Taskflow } from '../src/index.js';
import { openSqliteStore } from '../src/runtime/store/sqlite/open.js';
import { newFlow, T0 } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';

/**
 * What the SQLite store writes for one agent step: a flow created and parked in
 * one decision is inserted as it ends (one row, never an insert and its update),
 * and flow ids are time-ordered, so new flows go to the end of the primary key.
 */

let tf: Taskflow | undefined;
let path: string;

afterEach(async () => {
  await tf?.close();
  tf = undefined;
});

async function open(): Promise<Taskflow> {
  path = await tempDbPath();
  tf = await openTaskflow({ store: openSqliteStore({ path }), logger: silentLogger, clock: { now: () => T0 } });
  return tf;
}

/** Counts the UPDATEs on flows from here on (a trigger in the file, read by a second connection). */
function countFlowUpdates(): () => number {
  const admin = new Database(path);
  admin.exec(`CREATE TABLE updates_seen (flow_id TEXT);
    CREATE TRIGGER count_flow_updates AFTER UPDATE ON flows BEGIN INSERT INTO updates_seen VALUES (new.id); END;`);
  return () => (admin.prepare('SELECT count(*) AS n FROM updates_seen').get() as { n: number }).n;
}

describe('SQLite row writes of one agent step', () => {
  it('inserts a flow started and parked in one step as it ends: no UPDATE, its wait keys, one audit row per move', async () => {
    const taskflow = await open();
    const updates = countFlowUpdates();
    const wait = { kind: 'any', of: [{ kind: 'external_event', topic: 'invoice.paid', correlationId: 'INV-1' }, { kind: 'timer', at: new Date(T0 + 60_000) }] } as const;
    const flow = await taskflow.manager.createAndStart({ ...newFlow, state: { invoice: 'INV-1' }, wait });
    expect(updates()).toBe(0);
    expect(flow).toMatchObject({ status: 'waiting', revision: 2 });
    expect(await taskflow.manager.get(flow.id)).toEqual(flow);
    expect((await taskflow.manager.listEvents(flow.id)).map((event) => event.kind)).toEqual(['created', 'started', 'waiting']);
    // The key of its any-of wait is found like any other waiting flow's.
    expect(await taskflow.engine.deliver({ topic: 'invoice.paid', correlationId: 'INV-1', payload: { amount: 1 } })).toMatchObject({ resumed: [flow.id] });
  });

  it('still updates a flow created earlier, and batches of many new flows write each row once', async () => {
    const taskflow = await open();
    const created = await taskflow.manager.createManaged(newFlow);
    const updates = countFlowUpdates();
    await taskflow.manager.startRunning(created.id);
    expect(updates()).toBe(1);
    const many = await taskflow.manager.createAndStartMany(Array.from({ length: 20 }, (_, i) => ({ ...newFlow, state: { i }, wait: { kind: 'timer', at: new Date(T0 + 1_000 + i) } })));
    expect(updates()).toBe(1);
    expect(many.every((flow) => flow.status === 'waiting' && flow.revision === 2)).toBe(true);
  });

  it('gives new flows time-ordered ids (UUIDv7), so each lands after the last in the primary key', async () => {
    const taskflow = await open();
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push((await taskflow.manager.createManaged(newFlow)).id);
    expect(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
  });
});

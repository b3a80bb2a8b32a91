import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openSqliteStore, openTaskflow } from '../src/index.js';
import { openPostgresStore } from '../src/postgres.js';
import { tempPgDatabase } from './support/pg-database.js';
import { tempDbPath } from './support/temp-db.js';

// The public entry points hand out stores as the dialect-neutral FlowStore; a
// host builds one and gives it to openTaskflow({ store }).
const flowInput = { controllerId: 'billing/agent', goal: 'remind Ana', ownerSessionKey: 'agent:billing:session:3' };

describe('stores from the public entry points', () => {
  it('openSqliteStore gives a store that openTaskflow runs on and that survives reopening', async () => {
    const path = tempDbPath();
    const first = await openTaskflow({ store: openSqliteStore({ path, synchronous: 'normal' }) });
    const flow = await first.manager.createManaged(flowInput);
    await first.close();
    const second = await openTaskflow({ store: openSqliteStore({ path }) });
    expect((await second.manager.get(flow.id))?.goal).toBe('remind Ana');
    await second.close();
  });

  it('nexo-taskflow/postgres opens a store on a URL that openTaskflow runs on', async () => {
    const store = await openPostgresStore({ connectionString: await tempPgDatabase() });
    expect(store.dialect).toBe('postgres');
    const tf = await openTaskflow({ store });
    const flow = await tf.manager.createManaged(flowInput);
    expect((await tf.manager.startRunning(flow.id)).status).toBe('running');
    await tf.close();
  });

  it('nexo-taskflow/postgres takes a pg.Pool the host manages and leaves it open on close', async () => {
    const pool = new pg.Pool({ connectionString: await tempPgDatabase(), max: 2 });
    try {
      const tf = await openTaskflow({ store: await openPostgresStore({ pool }) });
      await tf.manager.createManaged(flowInput);
      await tf.close();
      const { rows } = await pool.query<{ count: string }>('SELECT count(*) FROM flows');
      expect(rows[0]!.count).toBe('1');
    } finally {
      await pool.end();
    }
  });
});

import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { openTaskflow } from '../src/index.js';
import { sendAll } from '../src/runtime/store/postgres/pipeline.js';
import { openPostgresStore } from '../src/runtime/store/postgres/open.js';
import { tempPgDatabase } from './support/pg-database.js';

/**
 * A commit's statements reach PostgreSQL back to back (pg's pipeline mode) as
 * prepared statements: one round trip for its load, one for its write and COMMIT,
 * and a statement text planned once per connection, not on every commit.
 */

const opened: { close?(): Promise<void>; end?(): Promise<void> }[] = [];

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await (item.close ?? item.end)!.call(item);
});

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: await tempPgDatabase() });
  await c.connect();
  opened.push(c);
  return c;
}

describe('statements sent back to back (PostgreSQL)', () => {
  it('answers each statement in order and leaves the client as it found it', async () => {
    const c = await client();
    const results = await sendAll(c, [{ text: 'BEGIN' }, { text: 'SELECT $1::int AS n', values: [1], prepare: true }, { text: 'SELECT $1::int AS n', values: [2], prepare: true }, { text: 'COMMIT' }]);
    expect(results.map((r) => r.command)).toEqual(['BEGIN', 'SELECT', 'SELECT', 'COMMIT']);
    expect(results[2]!.rows).toEqual([{ n: 2 }]);
    expect(c.pipeline).toBe(false);
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('throws the error of the first statement that failed, and a COMMIT behind it commits nothing', async () => {
    const c = await client();
    await c.query('CREATE TABLE t (id int PRIMARY KEY)');
    const sent = sendAll(c, [{ text: 'BEGIN' }, { text: 'INSERT INTO t VALUES (1)' }, { text: 'SELECT 1 / $1::int', values: [0], prepare: true }, { text: 'INSERT INTO t VALUES (2)' }, { text: 'COMMIT' }]);
    await expect(sent).rejects.toMatchObject({ code: '22012' });
    expect((await c.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 0 }]);
    // The statement prepared before the failure is still there for the next call.
    expect((await sendAll(c, [{ text: 'SELECT 1 / $1::int', values: [1], prepare: true }]))[0]!.rows).toEqual([{ '?column?': 1 }]);
  });

  it('plans the statements of an event delivery once per connection', async () => {
    const url = await tempPgDatabase();
    const store = await openPostgresStore({ connectionString: url, maxConnections: 1 });
    const tf = await openTaskflow({ store, onResume: () => undefined });
    opened.push(tf);
    await tf.start();
    for (let i = 0; i < 8; i++) {
      const flow = await tf.manager.createManaged({ controllerId: 'test', goal: 'wait for a payment', ownerSessionKey: 'agent:test:session:1' });
      await tf.manager.startRunning(flow.id);
      await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'invoice.paid', correlationId: `INV-${i}` });
      expect((await tf.engine.deliver({ topic: 'invoice.paid', correlationId: `INV-${i}` })).resumed).toEqual([flow.id]);
    }
    const { rows } = await store.pool.query<{ statement: string; runs: number }>(
      'SELECT statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements',
    );
    const lock = rows.find((row) => row.statement.startsWith('SELECT pg_advisory_xact_lock'));
    expect(lock?.runs).toBeGreaterThanOrEqual(8);
  });
});

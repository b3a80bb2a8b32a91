import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle as sqliteDrizzle } from 'drizzle-orm/better-sqlite3';
import { migrate as sqliteMigrate } from 'drizzle-orm/better-sqlite3/migrator';
import { drizzle as pgDrizzle } from 'drizzle-orm/node-postgres';
import { migrate as pgMigrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openTaskflow, type Taskflow } from '../src/index.js';
import { SEEN_SQL } from '../src/runtime/store/postgres/load-sql.js';
import { T0, dialect, newFlow, openTestTaskflow, tempDatabase } from './support/taskflow.js';

/**
 * An event id is unique per topic: two producers that number their events on
 * their own topics never hide each other's events; a redelivery on the same
 * topic is still a duplicate.
 */

const paid = { topic: 'payments.received', correlationId: 'INV-1' };
const refunded = { topic: 'refunds.issued', correlationId: 'INV-1' };

async function waitingOn(tf: Taskflow, key: { topic: string; correlationId: string }) {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, { kind: 'external_event', ...key });
}

describe('event ids are unique per topic', () => {
  it('the same event id on two topics resumes the flows of both', async () => {
    const tf = await openTestTaskflow();
    const onPaid = await waitingOn(tf, paid);
    const onRefunded = await waitingOn(tf, refunded);
    expect(await tf.engine.deliver({ ...paid, eventId: 'evt-1', payload: 'paid' })).toEqual({ resumed: [onPaid.id], kept: false, duplicate: false });
    expect(await tf.engine.deliver({ ...refunded, eventId: 'evt-1', payload: 'refunded' })).toEqual({ resumed: [onRefunded.id], kept: false, duplicate: false });
    expect((await tf.manager.get(onRefunded.id))!.state.resume_event).toBe('refunded');
  });

  it('the same event id on two topics is kept twice when nobody waits', async () => {
    const tf = await openTestTaskflow();
    expect((await tf.engine.deliver({ ...paid, eventId: 'evt-1' })).kept).toBe(true);
    expect((await tf.engine.deliver({ ...refunded, eventId: 'evt-1' })).kept).toBe(true);
    expect((await tf.store.listInbox()).map((k) => k.topic).sort()).toEqual([paid.topic, refunded.topic]);
  });

  it('the same event id on the same topic is delivered once, whatever its correlation id', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingOn(tf, paid);
    expect((await tf.engine.deliver({ ...paid, eventId: 'evt-1' })).resumed).toEqual([flow.id]);
    const again = await waitingOn(tf, paid);
    expect(await tf.engine.deliver({ ...paid, eventId: 'evt-1' })).toEqual({ resumed: [], kept: false, duplicate: true });
    expect(await tf.engine.deliver({ topic: paid.topic, correlationId: 'INV-2', eventId: 'evt-1' })).toMatchObject({ kept: false, duplicate: true });
    expect((await tf.manager.get(again.id))!.status).toBe('waiting');
    expect(await tf.store.listInbox()).toEqual([]);
  });

  it('a batch with one id on two topics delivers both, and its repeat on one topic once', async () => {
    const tf = await openTestTaskflow();
    const onPaid = await waitingOn(tf, paid);
    const onRefunded = await waitingOn(tf, refunded);
    const outcomes = await tf.engine.deliverBatch([
      { ...paid, eventId: 'evt-1' },
      { ...refunded, eventId: 'evt-1' },
      { ...refunded, eventId: 'evt-1' },
    ]);
    expect(outcomes.map((o) => (o.ok ? o.result : o.error))).toEqual([
      { resumed: [onPaid.id], kept: false, duplicate: false },
      { resumed: [onRefunded.id], kept: false, duplicate: false },
      { resumed: [], kept: false, duplicate: true },
    ]);
  });

  it('startOrDeliver with one id on two topics delivers both', async () => {
    const tf = await openTestTaskflow();
    const flow = { controllerId: 'billing/invoice', goal: 'follow INV-1' };
    const first = await tf.startOrDeliver({ owner: 'billing', idempotencyKey: 'paid:INV-1', flow, event: { ...paid, eventId: 'evt-1' } });
    const second = await tf.startOrDeliver({ owner: 'billing', idempotencyKey: 'refund:INV-1', flow, event: { ...refunded, eventId: 'evt-1' } });
    expect(first.delivery).toEqual({ resumed: [first.flow.id], kept: false, duplicate: false });
    expect(second.delivery).toEqual({ resumed: [second.flow.id], kept: false, duplicate: false });
    const repeat = await tf.startOrDeliver({ owner: 'billing', idempotencyKey: 'refund:INV-1', flow, event: { ...refunded, eventId: 'evt-1' } });
    expect(repeat.delivery.duplicate).toBe(true);
  });

  it.runIf(dialect === 'sqlite')('on the SQLite worker thread too: one id on two topics is two events', async () => {
    const tf = await openTaskflow({ database: await tempDatabase(), sqlite: { thread: 'worker' } });
    try {
      expect((await tf.engine.deliver({ ...paid, eventId: 'evt-1' })).kept).toBe(true);
      expect((await tf.engine.deliver({ ...refunded, eventId: 'evt-1' })).kept).toBe(true);
      expect((await tf.engine.deliver({ ...refunded, eventId: 'evt-1' })).duplicate).toBe(true);
    } finally {
      await tf.close();
    }
  });
});

describe.runIf(dialect === 'postgres')('seen event ids on PostgreSQL: query plan', () => {
  it('finds an id on its topic (and among ids seen before scoping) by the primary key', async () => {
    const tf = await openTestTaskflow();
    const client = new pg.Client({ connectionString: tf.path });
    await client.connect();
    try {
      await client.query(`INSERT INTO seen_events (topic, event_id, expires_at)
        SELECT (ARRAY['', 'payments.received', 'refunds.issued'])[1 + i % 3], 'evt-' || i, 1e15 FROM generate_series(1, 30000) AS i`);
      await client.query('ANALYZE seen_events');
      const plan = (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${SEEN_SQL}`, ['payments.received', 'evt-7', T0])).rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/Index (Only )?Scan using seen_events_topic_event_id_pk on seen_events/);
      expect(plan).not.toMatch(/Seq Scan/);
    } finally {
      await client.end();
    }
  });
});

/** A database at the schema before event ids were scoped by topic (every migration but 0007). */
async function databaseBeforeScopedIds(): Promise<{ database: string; sql: (text: string) => Promise<void> }> {
  const source = dialect === 'postgres' ? 'drizzle/pg' : 'drizzle/sqlite';
  const folder = mkdtempSync(join(tmpdir(), 'taskflow-migrations-'));
  try {
    cpSync(source, folder, { recursive: true });
    const journalPath = join(folder, 'meta', '_journal.json');
    const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { idx: number; tag: string }[] };
    journal.entries = journal.entries.filter((entry) => entry.idx < 7);
    writeFileSync(journalPath, JSON.stringify(journal));
    const database = await tempDatabase();
    if (dialect === 'postgres') {
      const pool = new pg.Pool({ connectionString: database, max: 1 });
      try {
        await pgMigrate(pgDrizzle(pool), { migrationsFolder: folder });
      } finally {
        await pool.end();
      }
      return {
        database,
        sql: async (text) => {
          const client = new pg.Client({ connectionString: database });
          await client.connect();
          try {
            await client.query(text);
          } finally {
            await client.end();
          }
        },
      };
    }
    const sqlite = new Database(database);
    try {
      sqliteMigrate(sqliteDrizzle(sqlite), { migrationsFolder: folder });
    } finally {
      sqlite.close();
    }
    return {
      database,
      sql: async (text) => {
        const db = new Database(database);
        try {
          db.exec(text);
        } finally {
          db.close();
        }
      },
    };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

describe('a database from before event ids were scoped by topic', () => {
  it('migrates; an id seen before is still a duplicate, a kept event still resumes its waiter, and new ids are scoped', async () => {
    const { database, sql } = await databaseBeforeScopedIds();
    const until = T0 + 86_400_000;
    await sql(
      `INSERT INTO seen_events (event_id, expires_at) VALUES ('old-1', ${until}); ` +
        `INSERT INTO event_inbox (topic, correlation_id, event_id, payload_json, received_at, expires_at) ` +
        `VALUES ('payments.received', 'INV-9', 'old-2', '{"amount":9}', ${T0 - 1000}, ${until})`,
    );
    const tf = await openTestTaskflow({ database });
    // Remembered before the upgrade, when an id was unique in the database: still seen, on every topic, until it expires.
    expect((await tf.engine.deliver({ ...paid, eventId: 'old-1' })).duplicate).toBe(true);
    expect((await tf.engine.deliver({ ...refunded, eventId: 'old-1' })).duplicate).toBe(true);
    const waiter = await waitingOn(tf, { topic: 'payments.received', correlationId: 'INV-9' });
    expect(waiter).toMatchObject({ status: 'running', state: { resume_event: { amount: 9 } } });
    expect((await tf.engine.deliver({ ...paid, eventId: 'new-1' })).kept).toBe(true);
    expect((await tf.engine.deliver({ ...refunded, eventId: 'new-1' })).kept).toBe(true);
    expect((await tf.engine.deliver({ ...refunded, eventId: 'new-1' })).duplicate).toBe(true);
    // The purge removes the old rows with the new, once expired.
    tf.clock.set(until + 86_400_000 * 8);
    expect(await tf.store.purgeExpiredEvents(tf.clock.now())).toBe(5);
    expect((await tf.engine.deliver({ ...refunded, eventId: 'old-1' })).duplicate).toBe(false);
  });
});

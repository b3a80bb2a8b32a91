import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { is, Placeholder } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/runtime/store/sqlite/open.js';
import type { SqliteFlowStore } from '../src/runtime/store/sqlite/store.js';
import { prepareStatements, type SqliteStatements } from '../src/runtime/store/sqlite/statements.js';
import { WAITING_TOPICS_SQL } from '../src/runtime/store/sqlite/waiters.js';
import { tempDbPath } from './support/temp-db.js';

/**
 * The hot queries, as the store sends them (the SQL comes from the drizzle
 * prepared statements), must be answered by their index: never a full SCAN of
 * flows, never a sort in a temporary b-tree. Checked on a real file with rows,
 * without ANALYZE (plain indexes must win on their own) and after it.
 */

const NOW = Date.parse('2026-01-01T00:00:00.000Z');
const DAY = 86_400_000;

interface Expected {
  /** The statement's name in prepareStatements(). */
  statement: keyof SqliteStatements;
  /** Placeholder values. */
  values: Record<string, unknown>;
  table: string;
  /** The index that must answer it, and the constraint it must apply (as SQLite prints it). */
  uses: string;
  /** `SCAN` only where an ordered index walk with LIMIT 1 is the point (the earliest due time). */
  access?: 'SEARCH' | 'SCAN';
}

const hotQueries: Expected[] = [
  { statement: 'dueFlows', values: { now: NOW, limit: 500 }, table: 'flows', uses: 'INDEX flows_status_wake_at (status=? AND wake_at<?)' },
  { statement: 'nextWakeAt', values: {}, table: 'flows', uses: 'COVERING INDEX flows_status_wake_at (status=? AND wake_at>?)' },
  {
    statement: 'flowsWaitingOn',
    values: { topic: 'invoice.paid', correlationId: 'INV-7' },
    table: 'flows',
    uses: 'INDEX flows_status_topic_correlation (status=? AND wait_topic=? AND wait_correlation_id=?)',
  },
  // Any-of waits on a key: their keys in flow_wait_keys, each flow then by its primary key.
  {
    statement: 'flowsWaitingOnAnyOf',
    values: { topic: 'invoice.paid', correlationId: 'INV-7' },
    table: 'flow_wait_keys',
    uses: 'COVERING INDEX flow_wait_keys_key (topic=? AND correlation_id=?)',
  },
  {
    statement: 'clearWaitKeys',
    values: { flowId: 'x' },
    table: 'flow_wait_keys',
    uses: 'COVERING INDEX sqlite_autoindex_flow_wait_keys_1 (flow_id=?)',
  },
  {
    statement: 'keptEventFor',
    values: { topic: 'invoice.paid', correlationId: 'INV-7', now: NOW },
    table: 'event_inbox',
    uses: 'INDEX event_inbox_key (topic=? AND correlation_id=?)',
  },
  {
    statement: 'countKeptForKey',
    values: { topic: 'invoice.paid', correlationId: 'INV-7' },
    table: 'event_inbox',
    uses: 'COVERING INDEX event_inbox_key (topic=? AND correlation_id=?)',
  },
  { statement: 'seenEvent', values: { topic: 'invoice.paid', id: 'evt-8', now: NOW }, table: 'seen_events', uses: 'INDEX sqlite_autoindex_seen_events_1 (topic=? AND event_id=?)' },
  // Dead notifications sit apart in the index (dead_at IS NOT NULL): the claim never reads them.
  {
    statement: 'dueNotifications',
    values: { now: NOW, limit: 100 },
    table: 'resume_notifications',
    uses: 'INDEX resume_notifications_due (dead_at=? AND due_at<?)',
  },
  { statement: 'nextNotificationAt', values: {}, table: 'resume_notifications', uses: 'COVERING INDEX resume_notifications_due (dead_at=?)' },
  {
    statement: 'deadNotifications',
    values: { limit: 50 },
    table: 'resume_notifications',
    uses: 'INDEX resume_notifications_due (dead_at>?)',
  },
  // What a claim does with its notification: by primary key, checked against the claim's lease end.
  { statement: 'completeNotification', values: { id: 7, leaseUntil: NOW }, table: 'resume_notifications', uses: 'INTEGER PRIMARY KEY (rowid=?)' },
  {
    statement: 'retryNotification',
    values: { id: 7, leaseUntil: NOW, dueAt: NOW + 1000, error: 'boom' },
    table: 'resume_notifications',
    uses: 'INTEGER PRIMARY KEY (rowid=?)',
  },
  { statement: 'parkNotification', values: { id: 7, leaseUntil: NOW, at: NOW, error: 'boom' }, table: 'resume_notifications', uses: 'INTEGER PRIMARY KEY (rowid=?)' },
  { statement: 'releaseNotification', values: { id: 7, leaseUntil: NOW, now: NOW }, table: 'resume_notifications', uses: 'INTEGER PRIMARY KEY (rowid=?)' },
  // The inspector: timers due soon, and the flow list's keyset pages (as fast at page 10,000 as at page 1).
  { statement: 'wakingFlows', values: { limit: 20 }, table: 'flows', uses: 'INDEX flows_status_wake_at (status=? AND wake_at>?)' },
  { statement: 'flowsPageFirst', values: { status: 'waiting', limit: 50 }, table: 'flows', uses: 'INDEX flows_status_updated (status=?)' },
  {
    statement: 'flowsPageAfter',
    values: { status: 'waiting', limit: 50, updatedAt: NOW, id: 'x' },
    table: 'flows',
    uses: 'INDEX flows_status_updated (status=? AND updated_at<?)',
  },
  { statement: 'notificationsOfFlow', values: { flowId: 'x' }, table: 'resume_notifications', uses: 'INDEX resume_notifications_flow (flow_id=?)' },
  { statement: 'flowById', values: { id: 'x' }, table: 'flows', uses: 'INDEX sqlite_autoindex_flows_1 (id=?)' },
  {
    statement: 'updateFlow',
    values: {
      id: 'x', fromRevision: 1, currentStep: 's', stateJson: '{}', waitJson: null, status: 'running',
      cancelRequested: 0, revision: 2, wakeAt: null, waitTopic: null, waitCorrelationId: null, scheduleJson: null, updatedAt: NOW,
    },
    table: 'flows',
    uses: 'INDEX sqlite_autoindex_flows_1 (id=?)',
  },
  {
    statement: 'flowByIdempotencyKey',
    values: { owner: 'agent:3', key: 'k-3' },
    table: 'flows',
    uses: 'INDEX flows_owner_idempotency (owner_session_key=? AND idempotency_key=?)',
  },
  {
    statement: 'lastEventOfKind',
    values: { flowId: 'x', kind: 'resumed' },
    table: 'flow_events',
    uses: 'INDEX flow_events_flow_kind (flow_id=? AND kind=?)',
  },
  { statement: 'purgeKeptEvents', values: { now: NOW }, table: 'event_inbox', uses: 'INDEX event_inbox_expires (expires_at<?)' },
  { statement: 'purgeSeenEvents', values: { now: NOW }, table: 'seen_events', uses: 'INDEX seen_events_expires (expires_at<?)' },
];

/** Fills a store with a realistic mix: most flows waiting (timers and events), some finished, and side tables. */
function seed(sqlite: Database.Database): void {
  const flow = sqlite.prepare(
    `INSERT INTO flows (id, controller_id, goal, owner_session_key, current_step, state_json, wait_json, status,
       cancel_requested, revision, idempotency_key, wake_at, wait_topic, wait_correlation_id, created_at, updated_at)
     VALUES (?, 'c', 'g', ?, 's', '{}', ?, ?, 0, 2, ?, ?, ?, ?, ?, ?)`,
  );
  const inbox = sqlite.prepare(
    `INSERT INTO event_inbox (topic, correlation_id, event_id, payload_json, received_at, expires_at) VALUES ('invoice.paid', ?, ?, '{}', ?, ?)`,
  );
  const seen = sqlite.prepare('INSERT INTO seen_events (topic, event_id, expires_at) VALUES (?, ?, ?)');
  const waitKey = sqlite.prepare('INSERT INTO flow_wait_keys (flow_id, topic, correlation_id) VALUES (?, ?, ?)');
  const notification = sqlite.prepare(`INSERT INTO resume_notifications (flow_id, wake_json, due_at, created_at) VALUES (?, '{}', ?, ?)`);
  const deadNotification = sqlite.prepare(
    `INSERT INTO resume_notifications (flow_id, wake_json, due_at, created_at, attempts, last_error, dead_at) VALUES (?, '{}', ?, ?, 10, 'Error: boom', ?)`,
  );
  sqlite.transaction(() => {
    for (let i = 0; i < 3_000; i++) {
      const id = randomUUID();
      const owner = `agent:${i % 50}`;
      const key = i % 3 === 0 ? `k-${i}` : null;
      if (i % 10 === 9) {
        flow.run(id, owner, null, 'finished', key, null, null, null, NOW - DAY, NOW - DAY);
      } else if (i % 7 === 0) {
        // an any-of wait on two keys and a timer
        flow.run(id, owner, '{"kind":"any"}', 'waiting', key, NOW + i * 1000, null, null, NOW, NOW);
        waitKey.run(id, 'invoice.paid', `INV-${i}`);
        waitKey.run(id, 'invoice.refunded', `INV-${i}`);
      } else if (i % 5 === 0) {
        flow.run(id, owner, '{"kind":"external_event"}', 'waiting', key, i % 2 === 0 ? NOW + i * 1000 : null, 'invoice.paid', `INV-${i}`, NOW, NOW);
      } else {
        flow.run(id, owner, '{"kind":"timer"}', 'waiting', key, NOW + (i - 1_500) * 1000, null, null, NOW, NOW);
      }
      if (i % 3 === 0) inbox.run(`INV-K-${i}`, `evt-k-${i}`, NOW - 1000, NOW + (i - 1_500) * 1000);
      // event ids by topic, and a few remembered before they were scoped (topic '')
      if (i % 2 === 0) seen.run(i % 20 === 0 ? '' : i % 4 === 0 ? 'invoice.paid' : 'invoice.refunded', `evt-${i}`, NOW + (i - 1_500) * 1000);
      if (i % 4 === 0) notification.run(id, NOW + (i - 1_500) * 1000, NOW);
      if (i % 8 === 0) deadNotification.run(id, NOW - 1000, NOW, NOW - 500);
    }
  })();
}

/** The plan's detail lines for one prepared statement, its placeholders filled in. */
function planOf(sqlite: Database.Database, statements: SqliteStatements, name: keyof SqliteStatements, values: Record<string, unknown>): string[] {
  const query = statements[name].getQuery();
  const params = query.params.map((param) => {
    if (!is(param, Placeholder)) return param;
    if (!(param.name in values)) throw new Error(`no value for placeholder ${param.name} of ${name}`);
    return values[param.name];
  });
  return planOfSql(sqlite, query.sql, params);
}

function planOfSql(sqlite: Database.Database, sql: string, params: unknown[]): string[] {
  const rows = sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>;
  return rows.map((row) => row.detail);
}

/** Plan lines that read a whole table without an index, or sort outside an index. */
function fullScans(plan: string[]): string[] {
  return plan.filter((line) => /^SCAN \w+$/.test(line) || /TEMP B-TREE/.test(line));
}

describe.each([
  { when: 'without ANALYZE', analyze: false },
  { when: 'after ANALYZE', analyze: true },
])('hot query plans ($when)', ({ analyze }) => {
  let store: SqliteFlowStore;
  let statements: SqliteStatements;

  beforeEach(() => {
    store = openSqliteStore({ path: tempDbPath() });
    seed(store.sqlite);
    if (analyze) store.sqlite.exec('ANALYZE');
    statements = prepareStatements(store.db);
  });

  afterEach(async () => {
    await store.close();
  });

  it.each(hotQueries)('$statement is answered by $uses', ({ statement, values, table, uses, access = 'SEARCH' }) => {
    const plan = planOf(store.sqlite, statements, statement, values);
    expect(plan, plan.join('\n')).toContain(`${access} ${table} USING ${uses}`);
    expect(fullScans(plan), plan.join('\n')).toEqual([]);
    expect(plan.filter((line) => line.startsWith('SCAN flows')), plan.join('\n')).toEqual([]);
  });

  it('the topics waits declare are read by one index seek per topic (a loose index scan), never a scan of flows', () => {
    const plan = planOfSql(store.sqlite, WAITING_TOPICS_SQL, []);
    const onFlows = plan.filter((line) => / flows | f /.test(` ${line} `) || line.startsWith('SCAN flows'));
    expect(onFlows, plan.join('\n')).toEqual([
      'SEARCH flows USING COVERING INDEX flows_status_topic_correlation (status=? AND wait_topic>?)',
      'SEARCH f USING COVERING INDEX flows_status_topic_correlation (status=? AND wait_topic>?)',
    ]);
    // The topics of any-of waits: likewise, one seek per topic on flow_wait_keys_key.
    const onKeys = plan.filter((line) => / flow_wait_keys | k /.test(` ${line} `));
    expect(onKeys, plan.join('\n')).toEqual([
      'SEARCH flow_wait_keys USING COVERING INDEX flow_wait_keys_key',
      'SEARCH k USING COVERING INDEX flow_wait_keys_key (topic>?)',
    ]);
  });

  it('flows waiting on a key among others are each read by primary key after the key seek, never by a scan', () => {
    const plan = planOf(store.sqlite, statements, 'flowsWaitingOnAnyOf', { topic: 'invoice.paid', correlationId: 'INV-7' });
    expect(plan, plan.join('\n')).toEqual([
      'SEARCH flow_wait_keys USING COVERING INDEX flow_wait_keys_key (topic=? AND correlation_id=?)',
      'SEARCH flows USING INDEX sqlite_autoindex_flows_1 (id=?)',
    ]);
  });

  it("pruning finds each pruned flow's notifications, events and steps by its flow id, never by reading the whole outbox", () => {
    const plan = planOf(store.sqlite, statements, 'pruneTerminal', { cutoff: NOW, limit: 500 });
    expect(plan, plan.join('\n')).toEqual(
      expect.arrayContaining([
        'SEARCH flows USING INDEX flows_status_updated (status=? AND updated_at<?)',
        'SEARCH resume_notifications USING COVERING INDEX resume_notifications_flow (flow_id=?)',
        'SEARCH flow_events USING COVERING INDEX flow_events_flow (flow_id=?)',
        'SEARCH flow_steps USING COVERING INDEX flow_steps_flow_run (flow_id=?)',
      ]),
    );
    expect(fullScans(plan), plan.join('\n')).toEqual([]);
  });

  it('the check catches a query that scans flows (a wait found through wait_json)', () => {
    const plan = planOfSql(store.sqlite, `SELECT * FROM flows WHERE wait_json LIKE ?`, ['%INV-7%']);
    expect(fullScans(plan)).toEqual(['SCAN flows']);
  });
});

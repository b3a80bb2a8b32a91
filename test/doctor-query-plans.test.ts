import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/runtime/store/sqlite/open.js';
import { HEARTBEATS_SQL } from '../src/runtime/store/diagnostics-sql.js';
import { WAITING_KEYS_SQL } from '../src/runtime/store/sqlite/waiters.js';
import { tempDbPath } from './support/temp-db.js';

/** The doctor's reads are answered by their index (no full scan, no temporary sort), like the hot queries. */
describe('doctor queries use their index', () => {
  it.each([
    ['waiting keys of a topic: single event waits', WAITING_KEYS_SQL, [{ topic: 'invoice.paid', limit: 100 }], 'flows_status_topic_correlation (status=? AND wait_topic=? AND wait_correlation_id>?)'],
    ['waiting keys of a topic: the keys of any-of waits', WAITING_KEYS_SQL, [{ topic: 'invoice.paid', limit: 100 }], 'COVERING INDEX flow_wait_keys_key (topic=?)'],
    ['heartbeats, newest first', HEARTBEATS_SQL.list, [200], 'runtime_heartbeats_beat_at'],
    ['forgetting silent heartbeats', HEARTBEATS_SQL.forget, [0], 'runtime_heartbeats_beat_at (beat_at<?)'],
  ])('%s', async (_name, sql, params: unknown[], index) => {
    const store = openSqliteStore({ path: tempDbPath() });
    try {
      for (const analyzed of [false, true]) {
        if (analyzed) store.sqlite.exec('ANALYZE');
        const plan = (store.sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((row) => row.detail).join('\n');
        expect(plan).toContain(index);
        expect(plan).not.toMatch(/SCAN (flows|flow_wait_keys|runtime_heartbeats)$|TEMP B-TREE/m);
      }
    } finally {
      await store.close();
    }
  });
});

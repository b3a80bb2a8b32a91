import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openTaskflow } from '../src/index.js';
import { newFlow } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';

/**
 * Growth on SQLite: pruning removes terminal flows with everything hanging off
 * them, in transactions of bounded size (the costs themselves are in
 * bench/growth.ts; the indexes that keep them flat in test/query-plans.test.ts).
 */

const DAY = 86_400_000;

/** `count` finished flows, each with two audit events, a step and an undelivered resume notification. */
function seedFinished(sqlite: Database.Database, count: number, at: number): void {
  const flow = sqlite.prepare(
    `INSERT INTO flows (id, controller_id, goal, owner_session_key, current_step, state_json, status, cancel_requested, revision, created_at, updated_at)
     VALUES (?, 'c', 'g', 'agent:growth:session:1', 's', '{}', 'finished', 0, 1, ?, ?)`,
  );
  const event = sqlite.prepare(`INSERT INTO flow_events (flow_id, kind, payload_json, at) VALUES (?, ?, '{}', ?)`);
  const step = sqlite.prepare(
    `INSERT INTO flow_steps (id, flow_id, runtime, run_id, task, status, created_at, updated_at) VALUES (?, ?, 'r', 'run', 't', 'succeeded', ?, ?)`,
  );
  const notification = sqlite.prepare(`INSERT INTO resume_notifications (flow_id, wake_json, due_at, created_at) VALUES (?, '{"reason":"manual"}', ?, ?)`);
  sqlite.transaction(() => {
    for (let i = 0; i < count; i++) {
      const id = randomUUID();
      flow.run(id, at, at);
      event.run(id, 'created', at);
      event.run(id, 'finished', at);
      step.run(randomUUID(), id, at, at);
      notification.run(id, at, at);
    }
  })();
}

const countOf = (sqlite: Database.Database, table: string) => (sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('SQLite growth', () => {
  it('pruning more terminal flows than fit in one transaction removes them all, with their events, steps and notifications', async () => {
    const tf = await openTaskflow({ database: tempDbPath() });
    const sqlite = (tf.store as unknown as { sqlite: Database.Database }).sqlite;
    const now = Date.now();
    seedFinished(sqlite, 1_234, now - 2 * DAY);
    const recent = await tf.manager.finish((await tf.manager.createMirrored(newFlow)).id);
    const waiting = await tf.manager.createManaged(newFlow);

    expect(await tf.manager.pruneTerminal('1d')).toBe(1_234);
    expect(countOf(sqlite, 'resume_notifications')).toBe(0);
    expect(countOf(sqlite, 'flow_steps')).toBe(0);
    expect(countOf(sqlite, 'flows')).toBe(2);
    expect(countOf(sqlite, 'flow_events')).toBe(recent.revision + 1 + waiting.revision + 1);
    expect(await tf.manager.pruneTerminal('1d')).toBe(0);
    await tf.close();
  });
});

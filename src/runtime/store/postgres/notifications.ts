import { and, asc, desc, eq, inArray, isNotNull, isNull } from 'drizzle-orm';
import type { JsonObject } from '../../flow.js';
import { flowFromRow } from '../flow-rows.js';
import type { ClaimedNotification, NotificationClaim, ResumeNotification } from '../contract.js';
import { MAX_ERROR_LENGTH, notificationFromRow } from '../notification-rows.js';
import { wakeFromJson } from '../../wake.js';
import { COMMITS_CHANNEL } from './commit-watch.js';
import type { PgConnection } from './connection.js';
import { flowColumnsOf } from './flow-columns.js';
import { NOTIFICATION_SQL } from './notification-sql.js';
import { resumeNotifications } from './schema.js';

export async function claimNotifications(c: PgConnection, now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
  const leaseUntil = now + leaseMs;
  // One statement, one round trip (its own transaction): pick the due ones (SKIP LOCKED), push their lease, read their flows.
  return c.run('claimNotifications', async (_db, client) => {
    const { rows } = await client.query<Record<string, unknown> & { n_id: string; n_flow_id: string; n_wake_json: string; n_attempts: number; n_due_at: string }>(
      `WITH due AS (SELECT id FROM resume_notifications WHERE dead_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED),
       claimed AS (UPDATE resume_notifications n SET due_at = $2, attempts = n.attempts + 1 FROM due WHERE n.id = due.id
         RETURNING n.id AS n_id, n.flow_id AS n_flow_id, n.wake_json AS n_wake_json, n.attempts AS n_attempts)
       SELECT claimed.*, ${flowColumnsOf('f')} FROM claimed LEFT JOIN flows f ON f.id = claimed.n_flow_id ORDER BY claimed.n_id`,
      [now, leaseUntil, limit],
    );
    return rows.map((row) => ({
      id: Number(row.n_id),
      leaseUntil,
      flowId: row.n_flow_id,
      flow: row.id === null ? undefined : flowFromRow(row as unknown as Parameters<typeof flowFromRow>[0]),
      wake: wakeFromJson(JSON.parse(row.n_wake_json) as JsonObject),
      attempts: Number(row.n_attempts),
    }));
  });
}

export async function completeNotifications(c: PgConnection, claims: readonly NotificationClaim[]): Promise<void> {
  c.assertOpen();
  if (claims.length === 0) return;
  // Two array parameters, however many claims: one plan, no statement as long as the list.
  await c.run('completeNotifications', async (_db, client) => {
    await client.query(NOTIFICATION_SQL.complete, [claims.map((claim) => claim.id), claims.map((claim) => claim.leaseUntil)]);
  });
}

export async function retryNotification(c: PgConnection, claim: NotificationClaim, dueAt: number, error: string): Promise<boolean> {
  return c.run('retryNotification', async (_db, client) => {
    const { rowCount } = await client.query(NOTIFICATION_SQL.retry, [claim.id, claim.leaseUntil, dueAt, error.slice(0, MAX_ERROR_LENGTH)]);
    return rowCount === 1;
  });
}

export async function parkNotification(c: PgConnection, claim: NotificationClaim, at: number, error: string): Promise<boolean> {
  return c.run('parkNotification', async (_db, client) => {
    const { rowCount } = await client.query(NOTIFICATION_SQL.park, [claim.id, claim.leaseUntil, at, error.slice(0, MAX_ERROR_LENGTH)]);
    return rowCount === 1;
  });
}

export async function releaseNotifications(c: PgConnection, claims: readonly NotificationClaim[], now: number): Promise<void> {
  c.assertOpen();
  if (claims.length === 0) return;
  await c.run('releaseNotifications', async (_db, client) => {
    await client.query(NOTIFICATION_SQL.release, [claims.map((claim) => claim.id), claims.map((claim) => claim.leaseUntil), now, COMMITS_CHANNEL, c.id]);
  });
}

export async function requeueDead(c: PgConnection, flowId: string, now: number, notificationId?: number): Promise<number> {
  return c.transaction('requeueDead', async (tx) => {
    const dead = and(eq(resumeNotifications.flowId, flowId), isNotNull(resumeNotifications.deadAt));
    const requeued = await tx
      .update(resumeNotifications)
      .set({ deadAt: null, attempts: 0, dueAt: now })
      .where(notificationId === undefined ? dead : and(dead, eq(resumeNotifications.id, notificationId)))
      .returning({ id: resumeNotifications.id });
    // Requeued from the CLI: the running application hears of it at once.
    if (requeued.length > 0) await c.announce(tx);
    return requeued.length;
  });
}

export async function listNotifications(c: PgConnection, flowIds: readonly string[]): Promise<ResumeNotification[]> {
  c.assertOpen();
  if (flowIds.length === 0) return [];
  return c.run('listNotifications', async (db) => {
    const rows = await db
      .select()
      .from(resumeNotifications)
      .where(inArray(resumeNotifications.flowId, [...flowIds]))
      .orderBy(asc(resumeNotifications.id));
    return rows.map(notificationFromRow);
  });
}

export async function listDeadNotifications(c: PgConnection, limit: number): Promise<ResumeNotification[]> {
  return c.run('listDeadNotifications', async (db) => {
    const rows = await db
      .select()
      .from(resumeNotifications)
      .where(isNotNull(resumeNotifications.deadAt))
      .orderBy(desc(resumeNotifications.deadAt))
      .limit(limit);
    return rows.map(notificationFromRow);
  });
}

export async function nextNotificationAt(c: PgConnection): Promise<number | undefined> {
  return c.run('nextNotificationAt', async (db) => {
    const [row] = await db
      .select({ dueAt: resumeNotifications.dueAt })
      .from(resumeNotifications)
      .where(isNull(resumeNotifications.deadAt))
      .orderBy(asc(resumeNotifications.dueAt))
      .limit(1);
    return row?.dueAt;
  });
}


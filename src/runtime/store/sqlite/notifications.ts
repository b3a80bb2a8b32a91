import type { JsonObject } from '../../flow.js';
import { flowFromRow } from '../flow-rows.js';
import type { ClaimedNotification, NotificationClaim, ResumeNotification } from '../contract.js';
import { MAX_ERROR_LENGTH, notificationFromRow } from '../notification-rows.js';
import { wakeFromJson } from '../../wake.js';
import type { SqliteConnection } from './connection.js';

export async function claimNotifications(s: SqliteConnection, now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
  const leaseUntil = now + leaseMs;
  return s.write(
    ({ q, inTransaction }) =>
      inTransaction.immediate(() =>
        q.dueNotifications.all({ now, limit }).map((row) => {
          q.leaseNotification.run({ id: row.id, dueAt: leaseUntil });
          const flow = q.flowById.get({ id: row.flowId });
          return {
            id: row.id,
            leaseUntil,
            flowId: row.flowId,
            flow: flow ? flowFromRow(flow) : undefined,
            wake: wakeFromJson(JSON.parse(row.wakeJson) as JsonObject),
            attempts: row.attempts + 1,
          };
        }),
      ) as ClaimedNotification[],
  );
}

export async function completeNotifications(s: SqliteConnection, claims: readonly NotificationClaim[]): Promise<void> {
  s.assertOpen();
  if (claims.length === 0) return;
  await s.write(({ q, inTransaction }) =>
    inTransaction.immediate(() => {
      for (const { id, leaseUntil } of claims) q.completeNotification.run({ id, leaseUntil });
    }),
  );
}

export async function retryNotification(s: SqliteConnection, claim: NotificationClaim, dueAt: number, error: string): Promise<boolean> {
  const { id, leaseUntil } = claim;
  return s.write(({ q }) => q.retryNotification.run({ id, leaseUntil, dueAt, error: error.slice(0, MAX_ERROR_LENGTH) }).changes === 1);
}

export async function parkNotification(s: SqliteConnection, claim: NotificationClaim, at: number, error: string): Promise<boolean> {
  const { id, leaseUntil } = claim;
  return s.write(({ q }) => q.parkNotification.run({ id, leaseUntil, at, error: error.slice(0, MAX_ERROR_LENGTH) }).changes === 1);
}

export async function releaseNotifications(s: SqliteConnection, claims: readonly NotificationClaim[], now: number): Promise<void> {
  s.assertOpen();
  if (claims.length === 0) return;
  await s.write(({ q, inTransaction }) =>
    inTransaction.immediate(() => {
      for (const { id, leaseUntil } of claims) q.releaseNotification.run({ id, leaseUntil, now });
    }),
  );
}

export async function requeueDead(s: SqliteConnection, flowId: string, now: number, notificationId?: number): Promise<number> {
  return s.write(({ q }) =>
    notificationId === undefined
      ? q.requeueDeadOfFlow.run({ flowId, now }).changes
      : q.requeueDeadById.run({ id: notificationId, flowId, now }).changes,
  );
}

export async function listNotifications(s: SqliteConnection, flowIds: readonly string[]): Promise<ResumeNotification[]> {
  return s.read(({ q }) => flowIds.flatMap((flowId) => q.notificationsOfFlow.all({ flowId }).map(notificationFromRow)));
}

export async function listDeadNotifications(s: SqliteConnection, limit: number): Promise<ResumeNotification[]> {
  return s.read(({ q }) => q.deadNotifications.all({ limit }).map(notificationFromRow));
}

export async function nextNotificationAt(s: SqliteConnection): Promise<number | undefined> {
  return s.read(({ q }) => q.nextNotificationAt.get()?.dueAt);
}


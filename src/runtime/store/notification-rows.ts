import type { JsonObject } from '../flow.js';
import type { resumeNotifications } from './sqlite/schema.js';
import type { ResumeNotification } from './contract.js';
import { wakeFromJson } from '../wake.js';

type NotificationRow = typeof resumeNotifications.$inferSelect;

/** Longest error message kept in `last_error`: enough for a message and the top of a stack. */
export const MAX_ERROR_LENGTH = 2_000;

/** A notification row (either dialect: times may come back as strings or bigints) as a {@link ResumeNotification}. */
export function notificationFromRow(row: NotificationRow): ResumeNotification {
  return {
    id: Number(row.id),
    flowId: row.flowId,
    wake: wakeFromJson(JSON.parse(row.wakeJson) as JsonObject),
    dueAt: new Date(Number(row.dueAt)),
    attempts: Number(row.attempts),
    lastError: row.lastError,
    deadAt: row.deadAt === null ? null : new Date(Number(row.deadAt)),
    createdAt: new Date(Number(row.createdAt)),
  };
}

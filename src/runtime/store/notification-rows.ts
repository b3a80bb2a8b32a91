import type { JsonObject } from '../flow.js';
import type { ResumeNotification } from './notification.js';
import { wakeFromJson } from '../wake.js';

/** The columns read, by the names both dialects' schemas give them. */
type NotificationRow = {
  id: number;
  flowId: string;
  wakeJson: string;
  dueAt: number;
  attempts: number;
  lastError: string | null;
  deadAt: number | null;
  createdAt: number;
};

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

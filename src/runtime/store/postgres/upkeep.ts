import { and, inArray, lte } from 'drizzle-orm';
import { TERMINAL_STATUSES } from '../../flow.js';
import { HEARTBEATS_SQL, numbered } from '../diagnostics-sql.js';
import { bridgeToJson, type Heartbeat } from '../diagnostics.js';
import { MAINTENANCE_TIMEOUT_MS, type PgConnection } from './connection.js';
import { eventInbox, flows, seenEvents } from './schema.js';

export async function pruneTerminal(c: PgConnection, cutoff: number): Promise<number> {
  return c.run(
    'pruneTerminal',
    async (db) => {
      const deleted = await db
        .delete(flows)
        .where(and(inArray(flows.status, [...TERMINAL_STATUSES]), lte(flows.updatedAt, cutoff)))
        .returning({ id: flows.id });
      return deleted.length;
    },
    { timeout: Math.max(MAINTENANCE_TIMEOUT_MS, c.timeouts.queryTimeout) },
  );
}

export async function recordHeartbeat(c: PgConnection, beat: Heartbeat, forgetBefore: number): Promise<void> {
  await c.run('recordHeartbeat', async (_db, client) => {
    await client.query(numbered(HEARTBEATS_SQL.upsert), [beat.id, beat.host, beat.startedAt.getTime(), beat.beatAt.getTime(), bridgeToJson(beat.bridge)]);
    await client.query(numbered(HEARTBEATS_SQL.forget), [forgetBefore]);
  });
}

export async function purgeExpiredEvents(c: PgConnection, now: number): Promise<number> {
  return c.run('purgeExpiredEvents', async (db) => {
    const kept = await db.delete(eventInbox).where(lte(eventInbox.expiresAt, now)).returning({ id: eventInbox.id });
    const seen = await db.delete(seenEvents).where(lte(seenEvents.expiresAt, now)).returning({ id: seenEvents.eventId });
    return kept.length + seen.length;
  });
}


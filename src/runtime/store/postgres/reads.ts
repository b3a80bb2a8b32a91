import { and, asc, desc, eq, isNotNull, sql } from 'drizzle-orm';
import type { Flow, FlowEvent, FlowStatus, FlowStep } from '../../flow.js';
import { eventFromRow, flowFromRow, inboxSummaryFromRow, stepFromRow } from '../flow-rows.js';
import type { FlowPageRequest, InboxKeySummary, ListOptions } from '../contract.js';
import { inspectQueries, type InspectQueries } from '../inspect.js';
import { WAITERS_SQL } from './waiters.js';
import { HEARTBEATS_SQL, numbered } from '../diagnostics-sql.js';
import { heartbeatFromRow, type Heartbeat, type WaitingKey } from '../diagnostics.js';
import type { PgConnection } from './connection.js';
import { eventInbox, flowEvents, flows, flowSteps } from './schema.js';

const DEFAULT_PAGE = 1000;

export async function getFlow(c: PgConnection, id: string): Promise<Flow | undefined> {
  return c.run('getFlow', async (db) => {
    const [row] = await db.select().from(flows).where(eq(flows.id, id));
    return row ? flowFromRow(row) : undefined;
  });
}

export async function listByOwner(c: PgConnection, owner: string, options: ListOptions = {}): Promise<Flow[]> {
  const where =
    options.status === undefined ? eq(flows.ownerSessionKey, owner) : and(eq(flows.ownerSessionKey, owner), eq(flows.status, options.status));
  return c.run('listByOwner', async (db) => {
    const rows = await db
      .select()
      .from(flows)
      .where(where)
      .orderBy(desc(flows.createdAt), desc(flows.seq))
      .limit(options.limit ?? DEFAULT_PAGE)
      .offset(options.offset ?? 0);
    return rows.map(flowFromRow);
  });
}

export async function listByStatus(c: PgConnection, status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
  return c.run('listByStatus', async (db) => {
    const rows = await db
      .select()
      .from(flows)
      .where(eq(flows.status, status))
      .orderBy(asc(flows.updatedAt), asc(flows.seq))
      .limit(options.limit ?? DEFAULT_PAGE)
      .offset(options.offset ?? 0);
    return rows.map(flowFromRow);
  });
}

export async function listSteps(c: PgConnection, flowId: string): Promise<FlowStep[]> {
  return c.run('listSteps', async (db) => {
    const rows = await db.select().from(flowSteps).where(eq(flowSteps.flowId, flowId)).orderBy(asc(flowSteps.createdAt), asc(flowSteps.seq));
    return rows.map(stepFromRow);
  });
}

export async function listEvents(c: PgConnection, flowId: string): Promise<FlowEvent[]> {
  return c.run('listEvents', async (db) => {
    const rows = await db.select().from(flowEvents).where(eq(flowEvents.flowId, flowId)).orderBy(asc(flowEvents.id));
    return rows.map(eventFromRow);
  });
}

export async function lastEvents(c: PgConnection, flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
  c.assertOpen();
  if (flowIds.length === 0) return new Map();
  return c.run('lastEvents', async (_db, client) => {
    // One seek on flow_events_flow_kind per flow, however long its log (DISTINCT ON would read every event of the kind).
    const { rows } = await client.query<{ id: string; flow_id: string; kind: string; payload_json: string; at: string }>(
      `SELECT e.id, e.flow_id, e.kind, e.payload_json, e.at FROM unnest($1::text[]) AS f(id)
       CROSS JOIN LATERAL (SELECT * FROM flow_events WHERE flow_id = f.id AND kind = $2 ORDER BY id DESC LIMIT 1) AS e`,
      [[...flowIds], kind],
    );
    return new Map(
      rows.map((row) => [row.flow_id, eventFromRow({ id: Number(row.id), flowId: row.flow_id, kind: row.kind, payloadJson: row.payload_json, at: Number(row.at) })]),
    );
  });
}

export async function countByStatus(c: PgConnection): Promise<Partial<Record<FlowStatus, number>>> {
  return c.run('countByStatus', async (db) => {
    const rows = await db.select({ status: flows.status, count: sql<string>`count(*)` }).from(flows).groupBy(flows.status);
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
  });
}

export async function pageFlows(c: PgConnection, request: FlowPageRequest): Promise<Flow[]> {
  const after = request.after;
  return c.run('pageFlows', async (db) => {
    const rows = await db
      .select()
      .from(flows)
      .where(
        after === undefined
          ? eq(flows.status, request.status)
          : and(eq(flows.status, request.status), sql`(${flows.updatedAt}, ${flows.id}) < (${after.updatedAt}, ${after.id})`),
      )
      .orderBy(desc(flows.updatedAt), desc(flows.id))
      .limit(request.limit);
    return rows.map(flowFromRow);
  });
}

export async function listWaking(c: PgConnection, limit: number): Promise<Flow[]> {
  return c.run('listWaking', async (db) => {
    const rows = await db
      .select()
      .from(flows)
      .where(and(eq(flows.status, 'waiting'), isNotNull(flows.wakeAt)))
      .orderBy(asc(flows.wakeAt))
      .limit(limit);
    return rows.map(flowFromRow);
  });
}

export async function nextWakeAt(c: PgConnection): Promise<number | undefined> {
  return c.run('nextWakeAt', async (db) => {
    const [row] = await db
      .select({ wakeAt: flows.wakeAt })
      .from(flows)
      .where(and(eq(flows.status, 'waiting'), isNotNull(flows.wakeAt)))
      .orderBy(asc(flows.wakeAt))
      .limit(1);
    return row?.wakeAt ?? undefined;
  });
}

export async function listHeartbeats(c: PgConnection, limit: number): Promise<Heartbeat[]> {
  return c.run('listHeartbeats', async (_db, client) => {
    const { rows } = await client.query<{ id: string; host: string; startedAt: string; beatAt: string; bridgeJson: string | null }>(numbered(HEARTBEATS_SQL.list), [limit]);
    return rows.map((row) => heartbeatFromRow({ ...row, startedAt: Number(row.startedAt), beatAt: Number(row.beatAt) }));
  });
}

export async function waitingKeys(c: PgConnection, topic: string, limit: number): Promise<WaitingKey[]> {
  return c.run('waitingKeys', async (_db, client) => {
    const { rows } = await client.query<WaitingKey>(WAITERS_SQL.keysOfTopic, [topic, limit]);
    return rows;
  });
}

export async function waitingTopics(c: PgConnection): Promise<string[]> {
  return c.run('waitingTopics', async (_db, client) => {
    const { rows } = await client.query<{ topic: string }>(WAITERS_SQL.topics);
    return rows.map((row) => row.topic);
  });
}

export async function listInbox(c: PgConnection): Promise<InboxKeySummary[]> {
  return c.run('listInbox', async (db) => {
    const rows = await db
      .select({
        topic: eventInbox.topic,
        correlationId: eventInbox.correlationId,
        events: sql<string>`count(*)`,
        oldestAt: sql<string>`min(${eventInbox.receivedAt})`,
        newestAt: sql<string>`max(${eventInbox.receivedAt})`,
        expiresAt: sql<string>`min(${eventInbox.expiresAt})`,
      })
      .from(eventInbox)
      .groupBy(eventInbox.topic, eventInbox.correlationId)
      .orderBy(sql`min(${eventInbox.receivedAt})`, eventInbox.topic, eventInbox.correlationId);
    return rows.map(inboxSummaryFromRow);
  });
}

export function inspect(c: PgConnection): InspectQueries {
  return inspectQueries('postgres', (text, params) => c.run('inspect', async (_db, client) => (await client.query(text, params as unknown[])).rows as Record<string, unknown>[]));
}


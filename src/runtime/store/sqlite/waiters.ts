import { and, eq, getTableColumns, sql } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { EventKey } from '../contract.js';
import { flows, flowWaitKeys } from './schema.js';

/**
 * Who waits on an event key, on SQLite: the one source delivery and
 * start-or-deliver (the load of `waitingOn`), the doctor ({@link WAITING_KEYS_SQL})
 * and the NATS bridge's cover ({@link WAITING_TOPICS_SQL}) read. A flow waits on
 * a key by its own columns (a single event wait) or by its rows in
 * `flow_wait_keys` (an any-of wait): every answer reads both (see `../waiters-sql.ts`).
 */
export { WAITING_TOPICS_SQL } from '../waiters-sql.js';

const p = sql.placeholder;

/**
 * Flows waiting on an event of `@topic`, by correlation id, at most `@limit` (the
 * doctor's near-miss and uncovered-topic checks): a range of
 * flows_status_topic_correlation and one of flow_wait_keys_key (which holds the
 * flow id: no read of flows), both in correlation id order, merged.
 */
export const WAITING_KEYS_SQL = `SELECT id AS "flowId", wait_correlation_id AS "correlationId" FROM flows
  WHERE status = 'waiting' AND wait_topic = @topic AND wait_correlation_id IS NOT NULL
UNION ALL
SELECT flow_id AS "flowId", correlation_id AS "correlationId" FROM flow_wait_keys WHERE topic = @topic
ORDER BY 2 LIMIT @limit`;

/** The prepared statements of the flows waiting on a key, part of `prepareStatements`. */
export function prepareWaiters(db: BetterSQLite3Database) {
  return {
    /** flows_status_topic_correlation: single event waits on this key */
    flowsWaitingOn: db
      .select()
      .from(flows)
      .where(and(eq(flows.status, 'waiting'), eq(flows.waitTopic, p('topic')), eq(flows.waitCorrelationId, p('correlationId'))))
      .prepare(),
    /** flow_wait_keys_key (covering), then the primary key of flows: any-of waits on this key */
    flowsWaitingOnAnyOf: db
      .select(getTableColumns(flows))
      .from(flowWaitKeys)
      .innerJoin(flows, eq(flows.id, flowWaitKeys.flowId))
      .where(and(eq(flowWaitKeys.topic, p('topic')), eq(flowWaitKeys.correlationId, p('correlationId')), eq(flows.status, 'waiting')))
      .prepare(),
  };
}

export type SqliteWaiters = ReturnType<typeof prepareWaiters>;
type FlowRow = ReturnType<SqliteWaiters['flowsWaitingOn']['all']>[number];

/** The rows of every flow waiting on `key`: single event waits, then any-of waits. */
export function waitersOn(q: SqliteWaiters, key: EventKey): FlowRow[] {
  const single = q.flowsWaitingOn.all({ topic: key.topic, correlationId: key.correlationId });
  const anyOf = q.flowsWaitingOnAnyOf.all({ topic: key.topic, correlationId: key.correlationId });
  return anyOf.length === 0 ? single : single.length === 0 ? anyOf : [...single, ...anyOf];
}

import { WAITING_TOPICS_SQL } from '../waiters-sql.js';
import { FLOW_COLUMNS, flowColumnsOf } from './flow-columns.js';

/**
 * Who waits on an event key, on PostgreSQL: the one source delivery and
 * start-or-deliver (the load of `waitingOn`, `load-sql.ts`), the doctor
 * (`keysOfTopic`) and the NATS bridge's cover (`topics`) read. A flow waits on a
 * key by its own columns (a single event wait) or by its rows in
 * `flow_wait_keys` (an any-of wait): every answer reads both (see `../waiters-sql.ts`).
 * `$1, $2` are the key's topic and correlation id.
 */

const SINGLE_ON_KEY = `status = 'waiting' AND wait_topic = $1 AND wait_correlation_id = $2`;
const ANY_OF_ON_KEY = `FROM flow_wait_keys k JOIN flows f ON f.id = k.flow_id WHERE k.topic = $1 AND k.correlation_id = $2 AND f.status = 'waiting'`;

export const WAITERS_SQL = {
  /** flows_status_topic_correlation: single event waits on the key, locked. */
  single: `SELECT ${FLOW_COLUMNS} FROM flows WHERE ${SINGLE_ON_KEY} FOR UPDATE`,
  /** flow_wait_keys_key, then flows_pkey: any-of waits on the key; FOR UPDATE OF f re-checks the status of a flow another commit resumed meanwhile. */
  anyOf: `SELECT ${flowColumnsOf('f')} ${ANY_OF_ON_KEY} ORDER BY f.id FOR UPDATE OF f`,
  /** A condition, true when no flow waits on the key (by the same two indexes). */
  none: `NOT EXISTS (SELECT 1 FROM flows WHERE ${SINGLE_ON_KEY}) AND NOT EXISTS (SELECT 1 ${ANY_OF_ON_KEY})`,
  /**
   * Flows waiting on an event of topic `$1`, by correlation id, at most `$2` (the
   * doctor's checks): a range of flows_status_topic_correlation and one of
   * flow_wait_keys_key (which holds the flow id), each limited, merged (a Merge
   * Append; without the inner limits the planner sorts the whole topic).
   */
  keysOfTopic: `(SELECT id AS "flowId", wait_correlation_id AS "correlationId" FROM flows
      WHERE status = 'waiting' AND wait_topic = $1 AND wait_correlation_id IS NOT NULL ORDER BY wait_correlation_id LIMIT $2)
    UNION ALL
    (SELECT flow_id AS "flowId", correlation_id AS "correlationId" FROM flow_wait_keys WHERE topic = $1 ORDER BY correlation_id LIMIT $2)
    ORDER BY 2 LIMIT $2`,
  /** The topics waits name, for the bridge's cover. */
  topics: WAITING_TOPICS_SQL,
} as const;

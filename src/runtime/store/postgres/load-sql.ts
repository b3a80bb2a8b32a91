import pg from 'pg';
import type { Flow } from '../../flow.js';
import { flowFromRow, keptEventFromRow, stepFromRow } from '../flow-rows.js';
import type { EventKey, Loaded, LoadRequest } from '../contract.js';
import { sendAll, type Statement } from './pipeline.js';
import { seenTopicOf } from '../seen-events.js';

/**
 * A commit's load as ONE round trip: the statements {@link loadSql} returns go
 * to the server back to back (`pipeline.ts`), so `BEGIN`, the event key's
 * advisory lock and every read of the request cost one round trip, not one
 * each, and each statement, a template with its values as parameters, is
 * planned once per connection. Under READ COMMITTED each statement still takes
 * its own snapshot, so the reads after the lock see every commit made before it
 * was granted (an event and a wait on one key can never miss each other).
 */

/** The flow columns (of the table aliased `t`) under the names `flowFromRow` reads. */
export function flowColumnsOf(t: string): string {
  return (
    `${t}.id, ${t}.controller_id AS "controllerId", ${t}.goal, ${t}.owner_session_key AS "ownerSessionKey", ${t}.requester_origin AS "requesterOrigin", ` +
    `${t}.current_step AS "currentStep", ${t}.state_json AS "stateJson", ${t}.wait_json AS "waitJson", ${t}.status, ${t}.cancel_requested AS "cancelRequested", ` +
    `${t}.revision, ${t}.idempotency_key AS "idempotencyKey", ${t}.wake_at AS "wakeAt", ${t}.wait_topic AS "waitTopic", ` +
    `${t}.wait_correlation_id AS "waitCorrelationId", ${t}.schedule_json AS "scheduleJson", ${t}.created_at AS "createdAt", ${t}.updated_at AS "updatedAt", ${t}.seq`
  );
}

/** The flow columns under the names `flowFromRow` reads. */
export const FLOW_COLUMNS = flowColumnsOf('flows');

const lit = (value: string): string => pg.escapeLiteral(value);
const num = (value: number): number => {
  if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${String(value)}`);
  return Math.trunc(value);
};

type Part = 'lock' | 'byId' | 'due' | 'waitingOn' | 'waitingAny' | 'inbox' | 'kept' | 'keptAny' | 'seen' | 'idempotent' | 'step';

/** The statements of a load, in order, and which part of {@link Loaded} each answers. */
export interface LoadSql {
  statements: Statement[];
  parts: Part[];
}

const LOCK_SQL = 'SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))';
const BY_ID_SQL = `SELECT ${FLOW_COLUMNS} FROM flows WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;
const DUE_SQL = `SELECT ${FLOW_COLUMNS} FROM flows WHERE status = 'waiting' AND wake_at <= $1::int8 ORDER BY wake_at LIMIT $2::int8 FOR UPDATE SKIP LOCKED`;
const ON_KEY = `status = 'waiting' AND wait_topic = $1 AND wait_correlation_id = $2`;
/** Any-of waits on a key, by flow_wait_keys_key; FOR UPDATE OF f re-checks the status of a flow another commit resumed meanwhile. */
const ANY_ON_KEY = `FROM flow_wait_keys k JOIN flows f ON f.id = k.flow_id WHERE k.topic = $1 AND k.correlation_id = $2 AND f.status = 'waiting'`;
const WAITING_ON_SQL = `SELECT ${FLOW_COLUMNS} FROM flows WHERE ${ON_KEY} FOR UPDATE`;
const WAITING_ANY_SQL = `SELECT ${flowColumnsOf('f')} ${ANY_ON_KEY} ORDER BY f.id FOR UPDATE OF f`;
/** Answered only when no flow waits on the key (the one case a plan may keep the event). */
const INBOX_SQL =
  `SELECT (SELECT count(*) FROM event_inbox WHERE topic = $1 AND correlation_id = $2) AS "forKey", ` +
  `(SELECT count(*) FROM event_inbox) AS total WHERE NOT EXISTS (SELECT 1 FROM flows WHERE ${ON_KEY}) AND NOT EXISTS (SELECT 1 ${ANY_ON_KEY})`;
const KEPT_COLUMNS = `id, topic, correlation_id AS "correlationId", event_id AS "eventId", payload_json AS "payloadJson", received_at AS "receivedAt", expires_at AS "expiresAt"`;
const KEPT_SQL = `SELECT ${KEPT_COLUMNS} FROM event_inbox WHERE topic = $1 AND correlation_id = $2 AND expires_at > $3::int8 ORDER BY id LIMIT 1`;
/**
 * The event's topic, and `''`: ids seen before they were scoped by topic count on
 * every topic until they expire. Exported for its plan's test.
 */
export const SEEN_SQL = `SELECT 1 FROM seen_events WHERE topic IN ($1, '') AND event_id = $2 AND expires_at > $3::int8 LIMIT 1`;
const IDEMPOTENT_SQL = `SELECT ${FLOW_COLUMNS} FROM flows WHERE owner_session_key = $1 AND idempotency_key = $2`;
const STEP_SQL =
  `SELECT id, flow_id AS "flowId", runtime, child_session_key AS "childSessionKey", run_id AS "runId", task, status, ` +
  `result_json AS "resultJson", created_at AS "createdAt", updated_at AS "updatedAt", seq FROM flow_steps WHERE flow_id = $1 AND run_id = $2`;

/** The statements that load (and lock) what `request` names; `prefix` (BEGIN, SAVEPOINT …) goes first. */
export function loadSql(request: LoadRequest, prefix: readonly string[] = []): LoadSql {
  const statements: Statement[] = prefix.map((text) => ({ text }));
  const parts: Part[] = prefix.map(() => 'lock' as const);
  const add = (part: Part, text: string, values: unknown[]) => {
    statements.push({ text, values, prepare: true });
    parts.push(part);
  };
  const key = request.waitingOn ?? request.keptEventFor;
  if (key) add('lock', LOCK_SQL, [key.topic, key.correlationId]);
  // An any-of wait parking takes the lock of each of its keys, in one order, against a delivery keeping an event meanwhile.
  if (request.keptEventForAny) for (const each of sortedKeys(request.keptEventForAny.keys)) add('lock', LOCK_SQL, [each.topic, each.correlationId]);
  if (request.flowIds && request.flowIds.length > 0) add('byId', BY_ID_SQL, [[...request.flowIds]]);
  if (request.due) add('due', DUE_SQL, [num(request.due.now), num(request.due.limit)]);
  if (request.waitingOn) {
    const { topic, correlationId } = request.waitingOn;
    add('waitingOn', WAITING_ON_SQL, [topic, correlationId]);
    add('waitingAny', WAITING_ANY_SQL, [topic, correlationId]);
    if (request.inboxFill) add('inbox', INBOX_SQL, [topic, correlationId]);
  }
  if (request.keptEventFor) {
    const { topic, correlationId, now } = request.keptEventFor;
    add('kept', KEPT_SQL, [topic, correlationId, num(now)]);
  }
  if (request.keptEventForAny && request.keptEventForAny.keys.length > 0) {
    const { keys, now } = request.keptEventForAny;
    const matches = keys.map((k) => `(topic = ${lit(k.topic)} AND correlation_id = ${lit(k.correlationId)})`).join(' OR ');
    // The first received among the keys' kept events: one seek on event_inbox_key per key (its text varies: not prepared).
    statements.push({ text: `SELECT ${KEPT_COLUMNS} FROM event_inbox WHERE (${matches}) AND expires_at > ${num(now)} ORDER BY id LIMIT 1` });
    parts.push('keptAny');
  }
  if (request.eventId) add('seen', SEEN_SQL, [seenTopicOf(request), request.eventId.id, num(request.eventId.now)]);
  if (request.idempotency) add('idempotent', IDEMPOTENT_SQL, [request.idempotency.owner, request.idempotency.key]);
  if (request.step) add('step', STEP_SQL, [request.step.flowId, request.step.runId]);
  return { statements, parts };
}

function sortedKeys(keys: readonly EventKey[]): EventKey[] {
  return [...keys].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.correlationId < b.correlationId ? -1 : a.correlationId > b.correlationId ? 1 : 0));
}

type Row = Record<string, unknown>;
type FlowRow = Parameters<typeof flowFromRow>[0];

/** Runs a {@link loadSql} on `client` and reads its answers into a {@link Loaded}. */
export async function runLoad(client: pg.ClientBase, request: LoadRequest, prefix: readonly string[] = []): Promise<Loaded> {
  const { statements, parts } = loadSql(request, prefix);
  if (parts.length === 0) return { flows: [], eventSeen: false };
  const results = (await sendAll(client, statements)) as pg.QueryResult<Row>[];
  const rowsOf = (part: Part): Row[] => {
    const index = parts.indexOf(part);
    return index < 0 ? [] : (results[index]?.rows ?? []);
  };
  const found: Flow[] = [];
  if (request.flowIds && request.flowIds.length > 0) {
    const byId = new Map(rowsOf('byId').map((row) => [row.id as string, flowFromRow(row as FlowRow)]));
    for (const id of request.flowIds) {
      const flow = byId.get(id);
      if (flow) found.push(flow);
    }
  }
  for (const row of rowsOf('due')) found.push(flowFromRow(row as FlowRow));
  const waiting = [...rowsOf('waitingOn'), ...rowsOf('waitingAny')];
  for (const row of waiting) found.push(flowFromRow(row as FlowRow));
  const loaded: Loaded = { flows: found, eventSeen: false };
  const [fill] = rowsOf('inbox');
  if (request.waitingOn && request.inboxFill && waiting.length === 0 && fill) {
    loaded.inbox = { forKey: Number(fill.forKey), total: Number(fill.total) };
  }
  const [kept] = rowsOf('kept').length > 0 ? rowsOf('kept') : rowsOf('keptAny');
  if (kept) loaded.keptEvent = keptEventFromRow(kept as Parameters<typeof keptEventFromRow>[0]);
  if (request.eventId) loaded.eventSeen = rowsOf('seen').length > 0;
  const [idempotent] = rowsOf('idempotent');
  if (idempotent) loaded.idempotent = flowFromRow(idempotent as FlowRow);
  const [step] = rowsOf('step');
  if (step) loaded.step = stepFromRow(step as Parameters<typeof stepFromRow>[0]);
  return loaded;
}

import pg from 'pg';
import type { Flow } from '../../flow.js';
import { flowFromRow, keptEventFromRow, stepFromRow } from '../flow-rows.js';
import type { EventKey, Loaded, LoadRequest } from '../contract.js';
import { FLOW_COLUMNS } from './flow-columns.js';
import { sendAll, type Statement } from './pipeline.js';
import { WAITERS_SQL } from './waiters.js';

/**
 * A commit's load as ONE round trip: the statements {@link loadSql} returns go
 * to the server back to back (`pipeline.ts`), so `BEGIN`, the event key's
 * advisory lock and every read of the request cost one round trip, not one
 * each, and each statement, a template with its values as parameters, is
 * planned once per connection. Under READ COMMITTED each statement still takes
 * its own snapshot, so the reads after the lock see every commit made before it
 * was granted (an event and a wait on one key can never miss each other).
 */

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
/** Answered only when no flow waits on the key (the one case a plan may keep the event). */
const INBOX_SQL =
  `SELECT (SELECT count(*) FROM event_inbox WHERE topic = $1 AND correlation_id = $2) AS "forKey", ` +
  `(SELECT count(*) FROM event_inbox) AS total WHERE ${WAITERS_SQL.none}`;
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
  // Every event key the load reads is locked first, against a delivery keeping an event (or a wait parking) on it meanwhile:
  // in one order, so two commits that lock several keys (an any-of wait parking, a start-or-deliver) cannot deadlock.
  for (const key of keysToLock(request)) add('lock', LOCK_SQL, [key.topic, key.correlationId]);
  if (request.flowIds && request.flowIds.length > 0) add('byId', BY_ID_SQL, [[...request.flowIds]]);
  if (request.due) add('due', DUE_SQL, [num(request.due.now), num(request.due.limit)]);
  if (request.waitingOn) {
    const { topic, correlationId } = request.waitingOn;
    add('waitingOn', WAITERS_SQL.single, [topic, correlationId]);
    add('waitingAny', WAITERS_SQL.anyOf, [topic, correlationId]);
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
  if (request.eventId) add('seen', SEEN_SQL, [request.eventId.topic, request.eventId.id, num(request.eventId.now)]);
  if (request.idempotency) add('idempotent', IDEMPOTENT_SQL, [request.idempotency.owner, request.idempotency.key]);
  if (request.step) add('step', STEP_SQL, [request.step.flowId, request.step.runId]);
  return { statements, parts };
}

/** The distinct event keys `request` reads, sorted by topic, then correlation id. */
function keysToLock(request: LoadRequest): EventKey[] {
  const keys: EventKey[] = [];
  if (request.waitingOn) keys.push(request.waitingOn);
  if (request.keptEventFor) keys.push(request.keptEventFor);
  if (request.keptEventForAny) keys.push(...request.keptEventForAny.keys);
  if (keys.length <= 1) return keys;
  keys.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.correlationId < b.correlationId ? -1 : a.correlationId > b.correlationId ? 1 : 0));
  return keys.filter((key, i) => i === 0 || key.topic !== keys[i - 1]!.topic || key.correlationId !== keys[i - 1]!.correlationId);
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
  // The first received of the kept events found (ids grow with arrival).
  const [kept] = [...rowsOf('kept'), ...rowsOf('keptAny')].sort((a, b) => Number(a.id) - Number(b.id));
  if (kept) loaded.keptEvent = keptEventFromRow(kept as Parameters<typeof keptEventFromRow>[0]);
  if (request.eventId) loaded.eventSeen = rowsOf('seen').length > 0;
  const [idempotent] = rowsOf('idempotent');
  if (idempotent) loaded.idempotent = flowFromRow(idempotent as FlowRow);
  const [step] = rowsOf('step');
  if (step) loaded.step = stepFromRow(step as Parameters<typeof stepFromRow>[0]);
  return loaded;
}

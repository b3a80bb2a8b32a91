import pg from 'pg';
import type { Flow } from '../../flow.js';
import { flowFromRow, keptEventFromRow, stepFromRow } from '../flow-rows.js';
import type { EventKey, Loaded, LoadRequest } from '../contract.js';

/**
 * A commit's load as ONE round trip: the statements {@link loadSql} returns go
 * to the server as one simple query (their values inlined as escaped literals),
 * so `BEGIN`, the event key's advisory lock and every read of the request cost
 * one round trip, not one each. Under READ COMMITTED each statement still takes
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
const num = (value: number): string => {
  if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${String(value)}`);
  return String(Math.trunc(value));
};

type Part = 'lock' | 'byId' | 'due' | 'waitingOn' | 'waitingAny' | 'inbox' | 'kept' | 'keptAny' | 'seen' | 'idempotent' | 'step';

/** The statements of a load, in order, and which part of {@link Loaded} each answers. */
export interface LoadSql {
  text: string;
  parts: Part[];
}

/** The statements that load (and lock) what `request` names; `prefix` (BEGIN, SAVEPOINT …) goes first. */
export function loadSql(request: LoadRequest, prefix: readonly string[] = []): LoadSql {
  const statements: string[] = [...prefix];
  const parts: Part[] = prefix.map(() => 'lock' as const);
  const add = (part: Part, sql: string) => {
    statements.push(sql);
    parts.push(part);
  };
  const key = request.waitingOn ?? request.keptEventFor;
  if (key) add('lock', lockSql(key));
  // An any-of wait parking takes the lock of each of its keys, in one order, against a delivery keeping an event meanwhile.
  if (request.keptEventForAny) for (const each of sortedKeys(request.keptEventForAny.keys)) add('lock', lockSql(each));
  if (request.flowIds && request.flowIds.length > 0) {
    add('byId', `SELECT ${FLOW_COLUMNS} FROM flows WHERE id IN (${request.flowIds.map(lit).join(', ')}) ORDER BY id FOR UPDATE`);
  }
  if (request.due) {
    add(
      'due',
      `SELECT ${FLOW_COLUMNS} FROM flows WHERE status = 'waiting' AND wake_at <= ${num(request.due.now)} ` +
        `ORDER BY wake_at LIMIT ${num(request.due.limit)} FOR UPDATE SKIP LOCKED`,
    );
  }
  if (request.waitingOn) {
    const { topic, correlationId } = request.waitingOn;
    const onKey = `status = 'waiting' AND wait_topic = ${lit(topic)} AND wait_correlation_id = ${lit(correlationId)}`;
    add('waitingOn', `SELECT ${FLOW_COLUMNS} FROM flows WHERE ${onKey} FOR UPDATE`);
    // Any-of waits on this key, by flow_wait_keys_key; FOR UPDATE OF f re-checks the status of a flow another commit resumed meanwhile.
    const anyOnKey = `FROM flow_wait_keys k JOIN flows f ON f.id = k.flow_id WHERE k.topic = ${lit(topic)} AND k.correlation_id = ${lit(correlationId)} AND f.status = 'waiting'`;
    add('waitingAny', `SELECT ${flowColumnsOf('f')} ${anyOnKey} ORDER BY f.id FOR UPDATE OF f`);
    if (request.inboxFill) {
      // Answered only when no flow waits on the key (the one case a plan may keep the event).
      add(
        'inbox',
        `SELECT (SELECT count(*) FROM event_inbox WHERE topic = ${lit(topic)} AND correlation_id = ${lit(correlationId)}) AS "forKey", ` +
          `(SELECT count(*) FROM event_inbox) AS total WHERE NOT EXISTS (SELECT 1 FROM flows WHERE ${onKey}) AND NOT EXISTS (SELECT 1 ${anyOnKey})`,
      );
    }
  }
  if (request.keptEventFor) {
    const { topic, correlationId, now } = request.keptEventFor;
    add(
      'kept',
      `SELECT id, topic, correlation_id AS "correlationId", event_id AS "eventId", payload_json AS "payloadJson", received_at AS "receivedAt", ` +
        `expires_at AS "expiresAt" FROM event_inbox WHERE topic = ${lit(topic)} AND correlation_id = ${lit(correlationId)} ` +
        `AND expires_at > ${num(now)} ORDER BY id LIMIT 1`,
    );
  }
  if (request.keptEventForAny && request.keptEventForAny.keys.length > 0) {
    const { keys, now } = request.keptEventForAny;
    const matches = keys.map((k) => `(topic = ${lit(k.topic)} AND correlation_id = ${lit(k.correlationId)})`).join(' OR ');
    // The first received among the keys' kept events: one seek on event_inbox_key per key.
    add(
      'keptAny',
      `SELECT id, topic, correlation_id AS "correlationId", event_id AS "eventId", payload_json AS "payloadJson", received_at AS "receivedAt", ` +
        `expires_at AS "expiresAt" FROM event_inbox WHERE (${matches}) AND expires_at > ${num(now)} ORDER BY id LIMIT 1`,
    );
  }
  if (request.eventId) {
    add('seen', `SELECT 1 FROM seen_events WHERE event_id = ${lit(request.eventId.id)} AND expires_at > ${num(request.eventId.now)}`);
  }
  if (request.idempotency) {
    const { owner, key: idem } = request.idempotency;
    add('idempotent', `SELECT ${FLOW_COLUMNS} FROM flows WHERE owner_session_key = ${lit(owner)} AND idempotency_key = ${lit(idem)}`);
  }
  if (request.step) {
    add(
      'step',
      `SELECT id, flow_id AS "flowId", runtime, child_session_key AS "childSessionKey", run_id AS "runId", task, status, ` +
        `result_json AS "resultJson", created_at AS "createdAt", updated_at AS "updatedAt", seq FROM flow_steps ` +
        `WHERE flow_id = ${lit(request.step.flowId)} AND run_id = ${lit(request.step.runId)}`,
    );
  }
  return { text: statements.join(';\n'), parts };
}

function lockSql(key: EventKey): string {
  return `SELECT pg_advisory_xact_lock(hashtext(${lit(key.topic)}), hashtext(${lit(key.correlationId)}))`;
}

function sortedKeys(keys: readonly EventKey[]): EventKey[] {
  return [...keys].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.correlationId < b.correlationId ? -1 : a.correlationId > b.correlationId ? 1 : 0));
}

type Row = Record<string, unknown>;
type FlowRow = Parameters<typeof flowFromRow>[0];

/** Runs a {@link loadSql} on `client` and reads its answers into a {@link Loaded}. */
export async function runLoad(client: pg.ClientBase, request: LoadRequest, prefix: readonly string[] = []): Promise<Loaded> {
  const { text, parts } = loadSql(request, prefix);
  if (parts.length === 0) return { flows: [], eventSeen: false };
  const answer = (await client.query(text)) as pg.QueryResult<Row> | pg.QueryResult<Row>[];
  const results = Array.isArray(answer) ? answer : [answer];
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

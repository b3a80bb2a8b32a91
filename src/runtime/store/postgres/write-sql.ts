import pg from 'pg';
import { FlowError } from '../../errors.js';
import type { Flow } from '../../flow.js';
import { flowToRow, keptEventToRow, stepToRow } from '../flow-rows.js';
import type { AuditEntry, ClaimedNotification, Decision, FlowWrite } from '../contract.js';
import { inboxTotalCheck } from './inbox-total.js';
import { wakeAtOf } from '../../wait.js';
import { anyOfKeysOf } from '../../any-of.js';
import { wakeToJson } from '../../wake.js';
import { COMMITS_CHANNEL } from './commit-watch.js';
import { sendAll, type Statement } from './pipeline.js';
import { heldByClaims } from './notification-sql.js';

/**
 * A decision written in ONE statement: one multi-row statement per table (rows
 * passed as arrays and expanded with `unnest`), chained as data-modifying CTEs,
 * whatever the number of flows. A batch of 500 resumes is one round trip, not
 * three per flow. The statement returns how many flows the revision-checked
 * UPDATE wrote (fewer than asked: `revision_mismatch`, the caller rolls back)
 * and the ids of the notifications it queued, in the order of the writes.
 */

const FLOW_INSERT_COLUMNS = [
  ['id', 'text'],
  ['controller_id', 'text'],
  ['goal', 'text'],
  ['owner_session_key', 'text'],
  ['requester_origin', 'text'],
  ['current_step', 'text'],
  ['state_json', 'text'],
  ['wait_json', 'text'],
  ['status', 'text'],
  ['cancel_requested', 'int4'],
  ['revision', 'int4'],
  ['idempotency_key', 'text'],
  ['wake_at', 'int8'],
  ['wait_topic', 'text'],
  ['wait_correlation_id', 'text'],
  ['schedule_json', 'text'],
  ['created_at', 'int8'],
  ['updated_at', 'int8'],
] as const;

/** Columns an UPDATE sets (all but the id, the creation time and the idempotency key). */
const FLOW_UPDATE_COLUMNS = FLOW_INSERT_COLUMNS.filter(([name]) => name !== 'id' && name !== 'created_at' && name !== 'idempotency_key');

type FlowRowValues = ReturnType<typeof flowToRow>;

function flowValues(row: FlowRowValues, idempotencyKey: string | null): Record<string, unknown> {
  return {
    id: row.id,
    controller_id: row.controllerId,
    goal: row.goal,
    owner_session_key: row.ownerSessionKey,
    requester_origin: row.requesterOrigin,
    current_step: row.currentStep,
    state_json: row.stateJson,
    wait_json: row.waitJson,
    status: row.status,
    cancel_requested: row.cancelRequested,
    revision: row.revision,
    idempotency_key: idempotencyKey,
    wake_at: row.wakeAt,
    wait_topic: row.waitTopic,
    wait_correlation_id: row.waitCorrelationId,
    schedule_json: row.scheduleJson,
    created_at: row.createdAt,
    updated_at: row.updatedAt,
  };
}

/** Builds `$n::type[]` parameters, one array per column: the statement's text depends only on its shape. */
class Params {
  readonly values: unknown[] = [];
  array(values: unknown[], type: string): string {
    this.values.push(values);
    return `$${this.values.length}::${type}[]`;
  }
  one(value: unknown, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

/** Raised by the statement itself when a revision moved, so a `COMMIT` sent behind it never commits the rest. */
const MISMATCH_MARK = 'taskflow:revision_mismatch:';

function unnest(params: Params, columns: readonly (readonly [string, string])[], rows: Record<string, unknown>[]): string {
  const arrays = columns.map(([name, type]) => params.array(rows.map((row) => row[name] ?? null), type));
  return `unnest(${arrays.join(', ')}) WITH ORDINALITY AS v(${columns.map(([name]) => name).join(', ')}, ord)`;
}

/** What {@link writeDecision} did. */
export interface Written {
  claimed: ClaimedNotification[];
  /** True when the statement `NOTIFY`ed other stores' watchers. */
  announced: boolean;
}

/**
 * Writes `decision` on `client` (inside the caller's transaction) in one
 * statement. Throws `revision_mismatch` when a flow's revision moved (the caller
 * rolls back). The first `limit` wakes are queued claimed until `leaseUntil`.
 * The statement's text depends only on the decision's shape (its values are
 * parameters): it is prepared once per connection. With `commit`, the statement
 * and `COMMIT` go back to back, one round trip (`pipeline.ts`): the server
 * itself refuses a moved revision, so the `COMMIT` then rolls back. With
 * `inboxBound` (a commit that keeps an event), the check of the inbox's total
 * (`inbox-total.ts`) goes between them.
 */
export async function writeDecision(
  client: pg.ClientBase,
  decision: Decision<unknown>,
  options: { leaseUntil: number | undefined; limit: number; storeId: string; commit?: boolean; inboxBound?: number },
): Promise<Written> {
  const params = new Params();
  const ctes: string[] = [];
  let schedules = false;
  const events: Record<string, unknown>[] = [];
  const { inserts, writes, insertWakes } = foldInserts(decision);
  const wakes: { flow: Flow; wake: NonNullable<FlowWrite['wake']>; row: Record<string, unknown>; claiming: boolean }[] = [];
  let claiming = 0;
  const queueWake = (flow: Flow, wake: NonNullable<FlowWrite['wake']>, at: number) => {
    const claims = options.leaseUntil !== undefined && claiming < options.limit;
    if (claims) claiming++;
    // A notification left unclaimed is for any engine with room: they must hear of it.
    else schedules = true;
    wakes.push({
      flow,
      wake,
      claiming: claims,
      row: { flow_id: flow.id, wake_json: JSON.stringify(wakeToJson(wake)), due_at: claims ? options.leaseUntil : at, attempts: claims ? 1 : 0, created_at: at },
    });
  };
  if (inserts.length > 0) {
    const rows = inserts.map((insert) => flowValues(flowToRow(insert.flow, insert.stateJson), insert.idempotencyKey ?? null));
    const names = FLOW_INSERT_COLUMNS.map(([name]) => name).join(', ');
    ctes.push(`ins AS (INSERT INTO flows (${names}) SELECT ${names} FROM ${unnest(params, FLOW_INSERT_COLUMNS, rows)} ORDER BY ord)`);
    for (const insert of inserts) {
      const at = insert.flow.updatedAt.getTime();
      for (const event of insert.events) events.push({ flow_id: insert.flow.id, kind: event.kind, payload_json: JSON.stringify(event.payload), at });
      if (waitsForTime(insert.flow)) schedules = true;
    }
  }
  for (const { flow, wake } of insertWakes) queueWake(flow, wake, flow.updatedAt.getTime());
  if (writes.length > 0) {
    const rows = writes.map((write) => ({ ...flowValues(flowToRow(write.flow, write.stateJson), null), from_revision: write.fromRevision }));
    const columns = [...FLOW_UPDATE_COLUMNS, ['id', 'text'] as const, ['from_revision', 'int4'] as const];
    const set = FLOW_UPDATE_COLUMNS.map(([name]) => `${name} = v.${name}`).join(', ');
    ctes.push(`upd AS (UPDATE flows f SET ${set} FROM ${unnest(params, columns, rows)} WHERE f.id = v.id AND f.revision = v.from_revision RETURNING f.id)`);
    for (const write of writes) {
      const { flow } = write;
      const at = flow.updatedAt.getTime();
      for (const event of write.events) events.push({ flow_id: flow.id, kind: event.kind, payload_json: JSON.stringify(event.payload), at });
      // Another engine must hear of a new wake time.
      if (waitsForTime(flow)) schedules = true;
      if (write.wake) queueWake(flow, write.wake, at);
    }
  }
  // The keys of any-of waits (flow_wait_keys): set for a flow inserted waiting on one, replaced for a write that moves into or out of one.
  const rekeyed = writes.filter((write) => write.rekeys).map((write) => write.flow);
  const keyed = [...inserts.map((insert) => insert.flow), ...rekeyed].flatMap((flow) =>
    (flow.status === 'waiting' ? anyOfKeysOf(flow.wait) : []).map((k) => ({ flow_id: flow.id, topic: k.topic, correlation_id: k.correlationId })),
  );
  const keyColumns = [['flow_id', 'text'], ['topic', 'text'], ['correlation_id', 'text']] as const;
  if (rekeyed.length > 0) {
    ctes.push(
      `wkdel AS (DELETE FROM flow_wait_keys WHERE flow_id = ANY(${params.array(rekeyed.map((flow) => flow.id), 'text')}) ` +
        `AND (flow_id, topic, correlation_id) NOT IN (SELECT flow_id, topic, correlation_id FROM ${unnest(params, keyColumns, keyed)}))`,
    );
  }
  if (keyed.length > 0) {
    ctes.push(`wkins AS (INSERT INTO flow_wait_keys (flow_id, topic, correlation_id) SELECT flow_id, topic, correlation_id FROM ${unnest(params, keyColumns, keyed)} ON CONFLICT DO NOTHING)`);
  }
  if (events.length > 0) {
    const columns = [['flow_id', 'text'], ['kind', 'text'], ['payload_json', 'text'], ['at', 'int8']] as const;
    ctes.push(`ev AS (INSERT INTO flow_events (flow_id, kind, payload_json, at) SELECT flow_id, kind, payload_json, at FROM ${unnest(params, columns, events)} ORDER BY ord)`);
  }
  if (wakes.length > 0) {
    const columns = [['flow_id', 'text'], ['wake_json', 'text'], ['due_at', 'int8'], ['attempts', 'int4'], ['created_at', 'int8']] as const;
    ctes.push(
      `nt AS (INSERT INTO resume_notifications (flow_id, wake_json, due_at, attempts, created_at) ` +
        `SELECT flow_id, wake_json, due_at, attempts, created_at FROM ${unnest(params, columns, wakes.map((w) => w.row))} ORDER BY ord RETURNING id)`,
    );
  }
  if (decision.upsertStep) {
    const row = stepToRow(decision.upsertStep);
    const v = [
      params.one(row.id, 'text'),
      params.one(row.flowId, 'text'),
      params.one(row.runtime, 'text'),
      params.one(row.childSessionKey, 'text'),
      params.one(row.runId, 'text'),
      params.one(row.task, 'text'),
      params.one(row.status, 'text'),
      params.one(row.resultJson, 'text'),
      params.one(row.createdAt, 'int8'),
      params.one(row.updatedAt, 'int8'),
    ];
    ctes.push(
      `step AS (INSERT INTO flow_steps (id, flow_id, runtime, child_session_key, run_id, task, status, result_json, created_at, updated_at) ` +
        `VALUES (${v.join(', ')}) ON CONFLICT (flow_id, run_id) DO UPDATE SET runtime = excluded.runtime, child_session_key = excluded.child_session_key, ` +
        `task = excluded.task, status = excluded.status, result_json = excluded.result_json, updated_at = excluded.updated_at)`,
    );
  }
  if (decision.keepEvent) {
    const row = keptEventToRow(decision.keepEvent);
    ctes.push(
      `keep AS (INSERT INTO event_inbox (topic, correlation_id, event_id, payload_json, received_at, expires_at) VALUES (` +
        `${params.one(row.topic, 'text')}, ${params.one(row.correlationId, 'text')}, ${params.one(row.eventId, 'text')}, ` +
        `${params.one(row.payloadJson, 'text')}, ${params.one(row.receivedAt, 'int8')}, ${params.one(row.expiresAt, 'int8')}))`,
    );
  }
  if (decision.consumeKeptEvent !== undefined) {
    ctes.push(`consume AS (DELETE FROM event_inbox WHERE id = ${params.one(decision.consumeKeptEvent, 'int8')})`);
  }
  if (decision.rememberEventId) {
    const { topic, id, expiresAt } = decision.rememberEventId;
    // Deliveries of one key are serialised by the advisory lock, so an upsert cannot hide a duplicate.
    ctes.push(
      `seen AS (INSERT INTO seen_events (topic, event_id, expires_at) VALUES (${params.one(topic, 'text')}, ${params.one(id, 'text')}, ${params.one(expiresAt.getTime(), 'int8')}) ` +
        `ON CONFLICT (topic, event_id) DO UPDATE SET expires_at = excluded.expires_at)`,
    );
  }
  const done = decision.completeNotifications ?? [];
  if (done.length > 0) {
    const held = heldByClaims(params.array(done.map((claim) => claim.id), 'int8'), params.array(done.map((claim) => claim.leaseUntil), 'int8'));
    ctes.push(`done AS (DELETE FROM resume_notifications WHERE ${held})`);
  }
  // Sent at COMMIT, and only if it commits.
  if (schedules) ctes.push(`ann AS (SELECT pg_notify(${params.one(COMMITS_CHANNEL, 'text')}, ${params.one(options.storeId, 'text')}))`);
  if (ctes.length === 0) {
    if (options.commit) await client.query('COMMIT');
    return { claimed: [], announced: false };
  }
  const select = [
    writes.length > 0 ? '(SELECT array_agg(id) FROM upd) AS updated' : 'NULL::text[] AS updated',
    wakes.length > 0 ? '(SELECT array_agg(id ORDER BY id) FROM nt) AS queued' : 'NULL::bigint[] AS queued',
    schedules ? '(SELECT count(*) FROM ann) AS announced' : '0 AS announced',
  ];
  if (options.commit && writes.length > 0) {
    // Checked by the server, so the COMMIT behind it in the same query is skipped when a revision moved.
    const ids = params.array(writes.map((write) => write.flow.id), 'text');
    select.push(
      `CASE WHEN (SELECT count(*) FROM upd) = ${params.one(writes.length, 'int8')} THEN 0 ELSE CAST('${MISMATCH_MARK}' || ` +
        `coalesce((SELECT w.id FROM unnest(${ids}) AS w(id) WHERE w.id NOT IN (SELECT id FROM upd) LIMIT 1), '') AS int) END AS checked`,
    );
  }
  const statement = `WITH ${ctes.join(',\n')} SELECT ${select.join(', ')}`;
  type Answer = { updated: string[] | null; queued: string[] | null };
  let answer: Answer;
  const write: Statement = { text: statement, values: params.values, prepare: true };
  if (options.commit) {
    let results: pg.QueryResult<Answer>[];
    try {
      const checks = options.inboxBound === undefined ? [] : inboxTotalCheck(options.inboxBound);
      results = (await sendAll(client, [write, ...checks, { text: 'COMMIT' }])) as pg.QueryResult<Answer>[];
    } catch (error) {
      const message = error instanceof Error ? error.message : '';
      const at = message.indexOf(MISMATCH_MARK);
      if (at < 0) throw error;
      const stale = message.slice(at + MISMATCH_MARK.length).replace(/"$/, '');
      throw new FlowError('revision_mismatch', `flow ${stale} changed while it was being written; retry`);
    }
    answer = results[0]!.rows[0]!;
  } else {
    answer = ((await sendAll(client, [write])) as pg.QueryResult<Answer>[])[0]!.rows[0]!;
  }
  const updated = answer.updated ?? [];
  if (updated.length !== writes.length) {
    const written = new Set(updated);
    const stale = writes.find((write) => !written.has(write.flow.id))?.flow.id ?? writes[0]?.flow.id;
    throw new FlowError('revision_mismatch', `flow ${stale} changed while it was being written; retry`);
  }
  // Queued in the order of the writes: ids grow in that order.
  const ids = (answer.queued ?? []).map(Number);
  const claimed: ClaimedNotification[] = [];
  wakes.forEach((wake, i) => {
    if (wake.claiming) claimed.push({ id: ids[i]!, leaseUntil: options.leaseUntil!, flowId: wake.flow.id, flow: wake.flow, wake: wake.wake, attempts: 1 });
  });
  return { claimed, announced: schedules };
}

interface FoldedInsert {
  flow: Flow;
  idempotencyKey?: string;
  stateJson?: string;
  events: AuditEntry[];
}

/**
 * A flow the decision inserts and then writes (created, started and parked in
 * one commit) is inserted once, in its final version, with every audit event:
 * the statement's UPDATE cannot see a row its own INSERT adds. The writes left
 * are those of flows that existed before.
 */
function foldInserts(decision: Decision<unknown>): { inserts: FoldedInsert[]; writes: FlowWrite[]; insertWakes: { flow: Flow; wake: NonNullable<FlowWrite['wake']> }[] } {
  const inserts: FoldedInsert[] = (decision.inserts ?? []).map((insert) => ({ ...insert, events: [insert.event] }));
  const byId = new Map(inserts.map((insert) => [insert.flow.id, insert]));
  const writes: FlowWrite[] = [];
  const insertWakes: { flow: Flow; wake: NonNullable<FlowWrite['wake']> }[] = [];
  for (const write of decision.writes ?? []) {
    const insert = byId.get(write.flow.id);
    if (!insert) {
      writes.push(write);
      continue;
    }
    insert.flow = write.flow;
    insert.events.push(...write.events);
    if (write.stateJson === undefined) delete insert.stateJson;
    else insert.stateJson = write.stateJson;
    if (write.wake) insertWakes.push({ flow: write.flow, wake: write.wake });
  }
  return { inserts, writes, insertWakes };
}

function waitsForTime(flow: Flow): boolean {
  return flow.status === 'waiting' && flow.wait !== null && wakeAtOf(flow.wait) !== undefined;
}

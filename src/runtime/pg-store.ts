import { fileURLToPath } from 'node:url';
import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { FlowError } from './errors.js';
import { TERMINAL_STATUSES, type Flow, type FlowEvent, type FlowStatus, type FlowStep, type JsonObject } from './flow.js';
import { eventFromRow, flowFromRow, flowToRow, inboxSummaryFromRow, keptEventFromRow, keptEventToRow, stepFromRow, stepToRow } from './flow-rows.js';
import { eventInbox, flowEvents, flows, flowSteps, resumeNotifications, seenEvents } from './schema-pg.js';
import type { InboxFill } from './inbox.js';
import type { ClaimedNotification, Committed, Decision, EventKey, FlowStore, InboxKeySummary, ListOptions, Loaded, LoadRequest, ResumeNotification } from './store.js';
import { MAX_ERROR_LENGTH, notificationFromRow } from './notification-rows.js';
import { WAITING_TOPICS_SQL } from './waiting-topics-sql.js';
import { wakeFromJson, wakeToJson } from './wake.js';

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** A `postgres://` URL; ignored when `pool` is given. Default `DATABASE_URL`. */
  connectionString?: string;
  /** A pool you manage; the store does not end it on close. */
  pool?: pg.Pool;
  /** Connections in the store's own pool. Default 10. */
  maxConnections?: number;
}

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle/pg', import.meta.url));
const MIGRATION_LOCK = 7_415_263_001;
const DEFAULT_PAGE = 1000;
const MAX_ATTEMPTS = 20;
/** unique_violation, serialization_failure, deadlock_detected: the transaction is retried. */
const RETRYABLE = new Set(['23505', '40001', '40P01']);

type Db = NodePgDatabase<Record<string, never>>;
type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** Opens (and migrates) a PostgreSQL database as a {@link FlowStore}. Many processes may share it. */
export async function openPostgresStore(options: PostgresStoreOptions = {}): Promise<PostgresFlowStore> {
  const ownPool = options.pool === undefined;
  const pool =
    options.pool ??
    new pg.Pool({ connectionString: options.connectionString ?? process.env.DATABASE_URL, max: options.maxConnections ?? 10 });
  // An idle connection that the server closes is replaced on next use; without a
  // listener, pg would turn that into an uncaught exception.
  if (ownPool) pool.on('error', () => undefined);
  const client = await pool.connect().catch((error: unknown) => {
    throw new FlowError('storage', `cannot connect to PostgreSQL: ${(error as Error).message}`, { cause: error });
  });
  try {
    // Several processes may start at once: one migrates, the others wait for it.
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
  } catch (error) {
    throw new FlowError('storage', `cannot migrate PostgreSQL database: ${(error as Error).message}`, { cause: error });
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
  return new PostgresFlowStore(pool, ownPool);
}

/**
 * The PostgreSQL {@link FlowStore}. Rows a commit reads are locked `FOR UPDATE`
 * (due flows with `SKIP LOCKED`, so processes share the due work), and an event
 * key is serialised with a transaction-scoped advisory lock, so an event and a
 * wait on the same key can never miss each other.
 */
export class PostgresFlowStore implements FlowStore {
  readonly dialect = 'postgres' as const;
  readonly db: Db;
  private closed = false;

  constructor(
    readonly pool: pg.Pool,
    private readonly ownPool: boolean,
  ) {
    this.db = drizzle(pool);
  }

  async commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    return (await this.commitWith(load, plan, undefined)).result;
  }

  async commitClaiming<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit = Infinity): Promise<Committed<T>> {
    return this.commitWith(load, plan, leaseUntil, limit);
  }

  private async commitWith<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number | undefined, limit = Infinity): Promise<Committed<T>> {
    this.assertOpen();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(async (tx) => {
          const decision = plan(await this.load(tx, load));
          const claimed = await this.apply(tx, decision, leaseUntil, limit);
          return { result: decision.result, claimed };
        });
      } catch (error) {
        if (FlowError.isInstance(error)) throw error;
        if (attempt < MAX_ATTEMPTS && RETRYABLE.has(pgCode(error) ?? '')) continue;
        throw new FlowError('storage', `database error: ${describe(error)}`, { cause: error });
      }
    }
  }

  private async load(tx: Tx, request: LoadRequest): Promise<Loaded> {
    const key = request.waitingOn ?? request.keptEventFor;
    if (key) await lockEventKey(tx, key);
    const found: Flow[] = [];
    if (request.flowIds && request.flowIds.length > 0) {
      const rows = await tx.select().from(flows).where(inArray(flows.id, [...request.flowIds])).orderBy(asc(flows.id)).for('update');
      const byId = new Map(rows.map((row) => [row.id, flowFromRow(row)]));
      for (const id of request.flowIds) {
        const flow = byId.get(id);
        if (flow) found.push(flow);
      }
    }
    if (request.due) {
      const rows = await tx
        .select()
        .from(flows)
        .where(and(eq(flows.status, 'waiting'), lte(flows.wakeAt, request.due.now)))
        .orderBy(asc(flows.wakeAt))
        .limit(request.due.limit)
        .for('update', { skipLocked: true });
      for (const row of rows) found.push(flowFromRow(row));
    }
    let inbox: Loaded['inbox'];
    if (request.waitingOn) {
      const { topic, correlationId } = request.waitingOn;
      const rows = await tx
        .select()
        .from(flows)
        .where(and(eq(flows.status, 'waiting'), eq(flows.waitTopic, topic), eq(flows.waitCorrelationId, correlationId)))
        .for('update');
      for (const row of rows) found.push(flowFromRow(row));
      if (request.inboxFill && rows.length === 0) inbox = await countInbox(tx, request.waitingOn);
    }
    const loaded: Loaded = inbox ? { flows: found, inbox, eventSeen: false } : { flows: found, eventSeen: false };
    if (request.keptEventFor) {
      const { topic, correlationId, now } = request.keptEventFor;
      const [row] = await tx
        .select()
        .from(eventInbox)
        .where(and(eq(eventInbox.topic, topic), eq(eventInbox.correlationId, correlationId), gt(eventInbox.expiresAt, now)))
        .orderBy(asc(eventInbox.id))
        .limit(1);
      if (row) loaded.keptEvent = keptEventFromRow(row);
    }
    if (request.eventId) {
      const rows = await tx
        .select({ eventId: seenEvents.eventId })
        .from(seenEvents)
        .where(and(eq(seenEvents.eventId, request.eventId.id), gt(seenEvents.expiresAt, request.eventId.now)));
      loaded.eventSeen = rows.length > 0;
    }
    if (request.idempotency) {
      const { owner, key: idem } = request.idempotency;
      const [row] = await tx.select().from(flows).where(and(eq(flows.ownerSessionKey, owner), eq(flows.idempotencyKey, idem)));
      if (row) loaded.idempotent = flowFromRow(row);
    }
    if (request.step) {
      const [row] = await tx
        .select()
        .from(flowSteps)
        .where(and(eq(flowSteps.flowId, request.step.flowId), eq(flowSteps.runId, request.step.runId)));
      if (row) loaded.step = stepFromRow(row);
    }
    return loaded;
  }

  private async apply<T>(tx: Tx, decision: Decision<T>, leaseUntil: number | undefined, limit: number): Promise<ClaimedNotification[]> {
    const claimed: ClaimedNotification[] = [];
    for (const insert of decision.inserts ?? []) {
      await tx.insert(flows).values({ ...flowToRow(insert.flow, insert.stateJson), idempotencyKey: insert.idempotencyKey ?? null });
      await appendEvents(tx, insert.flow.id, [insert.event], insert.flow.updatedAt.getTime());
    }
    for (const write of decision.writes ?? []) {
      const { flow } = write;
      const { id: _id, createdAt: _createdAt, ...columns } = flowToRow(flow, write.stateJson);
      const updated = await tx
        .update(flows)
        .set(columns)
        .where(and(eq(flows.id, flow.id), eq(flows.revision, write.fromRevision)))
        .returning({ id: flows.id });
      if (updated.length !== 1) throw new FlowError('revision_mismatch', `flow ${flow.id} changed while it was being written; retry`);
      const at = flow.updatedAt.getTime();
      await appendEvents(tx, flow.id, write.events, at);
      if (write.wake) {
        const claiming = leaseUntil !== undefined && claimed.length < limit;
        const [queued] = await tx
          .insert(resumeNotifications)
          .values({
            flowId: flow.id,
            wakeJson: JSON.stringify(wakeToJson(write.wake)),
            dueAt: claiming ? leaseUntil : at,
            attempts: claiming ? 1 : 0,
            createdAt: at,
          })
          .returning({ id: resumeNotifications.id });
        if (claiming) claimed.push({ id: queued!.id, flowId: flow.id, flow, wake: write.wake, attempts: 1 });
      }
    }
    if (decision.upsertStep) {
      const row = stepToRow(decision.upsertStep);
      await tx
        .insert(flowSteps)
        .values(row)
        .onConflictDoUpdate({
          target: [flowSteps.flowId, flowSteps.runId],
          set: { runtime: row.runtime, childSessionKey: row.childSessionKey, task: row.task, status: row.status, resultJson: row.resultJson, updatedAt: row.updatedAt },
        });
    }
    if (decision.keepEvent) {
      await tx.insert(eventInbox).values(keptEventToRow(decision.keepEvent));
    }
    if (decision.consumeKeptEvent !== undefined) await tx.delete(eventInbox).where(eq(eventInbox.id, decision.consumeKeptEvent));
    if (decision.rememberEventId) {
      const { id, expiresAt } = decision.rememberEventId;
      // Deliveries of one key are serialised by the advisory lock, so an upsert cannot hide a duplicate.
      await tx
        .insert(seenEvents)
        .values({ eventId: id, expiresAt: expiresAt.getTime() })
        .onConflictDoUpdate({ target: seenEvents.eventId, set: { expiresAt: expiresAt.getTime() } });
    }
    const done = decision.completeNotifications ?? [];
    if (done.length > 0) await tx.delete(resumeNotifications).where(inArray(resumeNotifications.id, [...done]));
    return claimed;
  }

  async getFlow(id: string): Promise<Flow | undefined> {
    this.assertOpen();
    const [row] = await this.db.select().from(flows).where(eq(flows.id, id));
    return row ? flowFromRow(row) : undefined;
  }

  async listByOwner(owner: string, options: ListOptions = {}): Promise<Flow[]> {
    this.assertOpen();
    const where =
      options.status === undefined ? eq(flows.ownerSessionKey, owner) : and(eq(flows.ownerSessionKey, owner), eq(flows.status, options.status));
    const rows = await this.db
      .select()
      .from(flows)
      .where(where)
      .orderBy(desc(flows.createdAt), desc(flows.seq))
      .limit(options.limit ?? DEFAULT_PAGE)
      .offset(options.offset ?? 0);
    return rows.map(flowFromRow);
  }

  async listByStatus(status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
    this.assertOpen();
    const rows = await this.db
      .select()
      .from(flows)
      .where(eq(flows.status, status))
      .orderBy(asc(flows.updatedAt))
      .limit(options.limit ?? DEFAULT_PAGE)
      .offset(options.offset ?? 0);
    return rows.map(flowFromRow);
  }

  async listSteps(flowId: string): Promise<FlowStep[]> {
    this.assertOpen();
    const rows = await this.db.select().from(flowSteps).where(eq(flowSteps.flowId, flowId)).orderBy(asc(flowSteps.createdAt), asc(flowSteps.seq));
    return rows.map(stepFromRow);
  }

  async listEvents(flowId: string): Promise<FlowEvent[]> {
    this.assertOpen();
    const rows = await this.db.select().from(flowEvents).where(eq(flowEvents.flowId, flowId)).orderBy(asc(flowEvents.id));
    return rows.map(eventFromRow);
  }

  async lastEvents(flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
    this.assertOpen();
    if (flowIds.length === 0) return new Map();
    // One seek on flow_events_flow_kind per flow, however long its log (DISTINCT ON would read every event of the kind).
    const { rows } = await this.pool.query<{ id: string; flow_id: string; kind: string; payload_json: string; at: string }>(
      `SELECT e.id, e.flow_id, e.kind, e.payload_json, e.at FROM unnest($1::text[]) AS f(id)
       CROSS JOIN LATERAL (SELECT * FROM flow_events WHERE flow_id = f.id AND kind = $2 ORDER BY id DESC LIMIT 1) AS e`,
      [[...flowIds], kind],
    );
    return new Map(
      rows.map((row) => [row.flow_id, eventFromRow({ id: Number(row.id), flowId: row.flow_id, kind: row.kind, payloadJson: row.payload_json, at: Number(row.at) })]),
    );
  }

  async pruneTerminal(cutoff: number): Promise<number> {
    this.assertOpen();
    const deleted = await this.db
      .delete(flows)
      .where(and(inArray(flows.status, [...TERMINAL_STATUSES]), lte(flows.updatedAt, cutoff)))
      .returning({ id: flows.id });
    return deleted.length;
  }

  async nextWakeAt(): Promise<number | undefined> {
    this.assertOpen();
    const [row] = await this.db
      .select({ wakeAt: flows.wakeAt })
      .from(flows)
      .where(and(eq(flows.status, 'waiting'), isNotNull(flows.wakeAt)))
      .orderBy(asc(flows.wakeAt))
      .limit(1);
    return row?.wakeAt ?? undefined;
  }

  async waitingTopics(): Promise<string[]> {
    this.assertOpen();
    const { rows } = await this.pool.query<{ topic: string }>(WAITING_TOPICS_SQL);
    return rows.map((row) => row.topic);
  }

  async claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
    this.assertOpen();
    return this.db.transaction(async (tx) => {
      const due = tx
        .select({ id: resumeNotifications.id })
        .from(resumeNotifications)
        .where(and(isNull(resumeNotifications.deadAt), lte(resumeNotifications.dueAt, now)))
        .orderBy(asc(resumeNotifications.dueAt))
        .limit(limit)
        .for('update', { skipLocked: true });
      const claimed = await tx
        .update(resumeNotifications)
        .set({ dueAt: now + leaseMs, attempts: sql`${resumeNotifications.attempts} + 1` })
        .where(inArray(resumeNotifications.id, due))
        .returning();
      if (claimed.length === 0) return [];
      const flowRows = await tx.select().from(flows).where(inArray(flows.id, [...new Set(claimed.map((n) => n.flowId))]));
      const byId = new Map(flowRows.map((row) => [row.id, flowFromRow(row)]));
      return claimed
        .sort((a, b) => a.dueAt - b.dueAt || a.id - b.id)
        .map((row) => ({
          id: row.id,
          flowId: row.flowId,
          flow: byId.get(row.flowId),
          wake: wakeFromJson(JSON.parse(row.wakeJson) as JsonObject),
          attempts: row.attempts,
        }));
    });
  }

  async completeNotifications(ids: readonly number[]): Promise<void> {
    this.assertOpen();
    if (ids.length > 0) await this.db.delete(resumeNotifications).where(inArray(resumeNotifications.id, [...ids]));
  }

  async retryNotification(id: number, dueAt: number, error: string): Promise<void> {
    this.assertOpen();
    await this.db.update(resumeNotifications).set({ dueAt, lastError: error.slice(0, MAX_ERROR_LENGTH) }).where(eq(resumeNotifications.id, id));
  }

  async parkNotification(id: number, at: number, error: string): Promise<void> {
    this.assertOpen();
    await this.db.update(resumeNotifications).set({ deadAt: at, lastError: error.slice(0, MAX_ERROR_LENGTH) }).where(eq(resumeNotifications.id, id));
  }

  async requeueDead(flowId: string, now: number, notificationId?: number): Promise<number> {
    this.assertOpen();
    const dead = and(eq(resumeNotifications.flowId, flowId), isNotNull(resumeNotifications.deadAt));
    const requeued = await this.db
      .update(resumeNotifications)
      .set({ deadAt: null, attempts: 0, dueAt: now })
      .where(notificationId === undefined ? dead : and(dead, eq(resumeNotifications.id, notificationId)))
      .returning({ id: resumeNotifications.id });
    return requeued.length;
  }

  async listNotifications(flowIds: readonly string[]): Promise<ResumeNotification[]> {
    this.assertOpen();
    if (flowIds.length === 0) return [];
    const rows = await this.db
      .select()
      .from(resumeNotifications)
      .where(inArray(resumeNotifications.flowId, [...flowIds]))
      .orderBy(asc(resumeNotifications.id));
    return rows.map(notificationFromRow);
  }

  async listDeadNotifications(limit: number): Promise<ResumeNotification[]> {
    this.assertOpen();
    const rows = await this.db
      .select()
      .from(resumeNotifications)
      .where(isNotNull(resumeNotifications.deadAt))
      .orderBy(desc(resumeNotifications.deadAt))
      .limit(limit);
    return rows.map(notificationFromRow);
  }

  async nextNotificationAt(): Promise<number | undefined> {
    this.assertOpen();
    const [row] = await this.db
      .select({ dueAt: resumeNotifications.dueAt })
      .from(resumeNotifications)
      .where(isNull(resumeNotifications.deadAt))
      .orderBy(asc(resumeNotifications.dueAt))
      .limit(1);
    return row?.dueAt;
  }

  async listInbox(): Promise<InboxKeySummary[]> {
    this.assertOpen();
    const rows = await this.db
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
  }

  async purgeExpiredEvents(now: number): Promise<number> {
    this.assertOpen();
    const kept = await this.db.delete(eventInbox).where(lte(eventInbox.expiresAt, now)).returning({ id: eventInbox.id });
    const seen = await this.db.delete(seenEvents).where(lte(seenEvents.expiresAt, now)).returning({ id: seenEvents.eventId });
    return kept.length + seen.length;
  }

  watchForeignCommits(_listener: () => void): () => void {
    // TODO(issue 9.8): replaced by the real change check in this wave.
    return () => undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownPool) await this.pool.end();
  }

  private assertOpen(): void {
    if (this.closed) throw new FlowError('storage', 'the store is closed');
  }
}

/**
 * How full the inbox is for `key` and in all. The key's count is exact (its
 * writers hold the key's advisory lock); the total may be short by the keeps of
 * other keys committing at this instant, so the cap may overshoot by at most the
 * number of concurrent writers.
 */
async function countInbox(tx: Tx, key: EventKey): Promise<InboxFill> {
  const [forKey] = await tx
    .select({ n: sql<string>`count(*)` })
    .from(eventInbox)
    .where(and(eq(eventInbox.topic, key.topic), eq(eventInbox.correlationId, key.correlationId)));
  const [total] = await tx.select({ n: sql<string>`count(*)` }).from(eventInbox);
  return { forKey: Number(forKey?.n ?? 0), total: Number(total?.n ?? 0) };
}

async function lockEventKey(tx: Tx, key: EventKey): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${key.topic}), hashtext(${key.correlationId}))`);
}

async function appendEvents(tx: Tx, flowId: string, events: readonly { kind: string; payload: JsonObject }[], at: number): Promise<void> {
  if (events.length === 0) return;
  await tx.insert(flowEvents).values(events.map((e) => ({ flowId, kind: e.kind, payloadJson: JSON.stringify(e.payload), at })));
}

function pgCode(error: unknown): string | undefined {
  for (let e: unknown = error; typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function describe(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : String(error);
}

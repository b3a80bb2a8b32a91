import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { FlowError } from './errors.js';
import type { Flow, FlowEvent, FlowStatus, FlowStep, JsonObject } from './flow.js';
import { eventFromRow, flowFromRow, flowToRow, inboxSummaryFromRow, keptEventFromRow, keptEventToRow, stepFromRow, stepToRow } from './flow-rows.js';
import { prepareStatements, type SqliteStatements } from './sqlite-statements.js';
import { WAITING_TOPICS_SQL } from './waiting-topics-sql.js';
import type { ClaimedNotification, Committed, Decision, FlowStore, InboxKeySummary, ListOptions, Loaded, LoadRequest } from './store.js';

/** Where a commit puts the notifications it queues already claimed. */
interface Claim {
  leaseUntil: number;
  claimed: ClaimedNotification[];
}
import { wakeFromJson, wakeToJson } from './wake.js';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. The folder is created when missing. */
  path: string;
  /** `full` (default) survives power loss; `normal` is faster and survives a process crash. */
  synchronous?: 'full' | 'normal';
  /** How long a writer waits for another process's lock, in ms. Default 5000. */
  busyTimeout?: number;
}

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle/sqlite', import.meta.url));
const DEFAULT_PAGE = 1000;

/** Opens (creating and migrating as needed) a SQLite database as a {@link FlowStore}. */
export function openSqliteStore(options: SqliteStoreOptions): SqliteFlowStore {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  let sqlite: Database.Database;
  try {
    sqlite = new Database(options.path);
  } catch (error) {
    throw new FlowError('storage', `cannot open database ${options.path}: ${(error as Error).message}`, { cause: error });
  }
  sqlite.pragma(`busy_timeout = ${options.busyTimeout ?? 5000}`);
  if (options.path !== ':memory:') sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
  sqlite.pragma('foreign_keys = ON');
  const db = drizzle(sqlite);
  migrateSafely(db);
  return new SqliteFlowStore(sqlite, db);
}

/** Two processes may open a new file at once: the loser of the race sees the winner's tables. */
function migrateSafely(db: BetterSQLite3Database): void {
  for (let attempt = 0; ; attempt++) {
    try {
      migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
      return;
    } catch (error) {
      if (attempt >= 5) throw new FlowError('storage', `cannot migrate database: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** The SQLite {@link FlowStore}: drizzle prepared statements over one better-sqlite3 connection. */
export class SqliteFlowStore implements FlowStore {
  readonly dialect = 'sqlite' as const;
  private readonly q: SqliteStatements;
  /** One wrapped transaction runner, reused: `db.transaction()` per call costs measurable time. */
  private readonly inTransaction: Database.Transaction<(work: () => unknown) => unknown>;
  private closed = false;

  constructor(
    /** The raw connection, for diagnostics such as `EXPLAIN QUERY PLAN`. */
    readonly sqlite: Database.Database,
    readonly db: BetterSQLite3Database,
  ) {
    this.q = prepareStatements(db);
    this.inTransaction = sqlite.transaction((work: () => unknown) => work());
  }

  async commit<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
    return this.commitSync(load, plan);
  }

  async commitClaiming<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number): Promise<Committed<T>> {
    const claimed: ClaimedNotification[] = [];
    const result = this.commitSync(load, plan, { leaseUntil, claimed });
    return { result, claimed };
  }

  /**
   * The synchronous core of {@link commit}. `BEGIN IMMEDIATE` takes the write lock
   * before reading, so another process cannot slip a write between read and write.
   */
  commitSync<T>(load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, claim?: Claim): T {
    this.assertOpen();
    try {
      return this.inTransaction.immediate(() => {
        const decision = plan(this.load(load));
        this.apply(decision, claim);
        return decision.result;
      }) as T;
    } catch (error) {
      throw asFlowError(error);
    }
  }

  private load(request: LoadRequest): Loaded {
    const q = this.q;
    const flows: Flow[] = [];
    for (const id of request.flowIds ?? []) {
      const row = q.flowById.get({ id });
      if (row) flows.push(flowFromRow(row));
    }
    if (request.due) {
      for (const row of q.dueFlows.all({ now: request.due.now, limit: request.due.limit })) flows.push(flowFromRow(row));
    }
    let inbox: Loaded['inbox'];
    if (request.waitingOn) {
      const waiting = q.flowsWaitingOn.all({ ...request.waitingOn });
      for (const row of waiting) flows.push(flowFromRow(row));
      if (request.inboxFill && waiting.length === 0) {
        inbox = { forKey: q.countKeptForKey.get({ ...request.waitingOn })?.n ?? 0, total: q.countKept.get()?.n ?? 0 };
      }
    }
    const loaded: Loaded = inbox ? { flows, inbox, eventSeen: false } : { flows, eventSeen: false };
    if (request.keptEventFor) {
      const row = q.keptEventFor.get({ ...request.keptEventFor });
      if (row) loaded.keptEvent = keptEventFromRow(row);
    }
    if (request.eventId) loaded.eventSeen = q.seenEvent.get(request.eventId) !== undefined;
    if (request.idempotency) {
      const row = q.flowByIdempotencyKey.get(request.idempotency);
      if (row) loaded.idempotent = flowFromRow(row);
    }
    if (request.step) {
      const row = q.stepByRun.get(request.step);
      if (row) loaded.step = stepFromRow(row);
    }
    return loaded;
  }

  private apply<T>(decision: Decision<T>, claim: Claim | undefined): void {
    const q = this.q;
    for (const insert of decision.inserts ?? []) {
      q.insertFlow.run({ ...flowToRow(insert.flow, insert.stateJson), idempotencyKey: insert.idempotencyKey ?? null });
      this.appendEvent(insert.flow.id, insert.event.kind, insert.event.payload, insert.flow.updatedAt.getTime());
    }
    for (const write of decision.writes ?? []) {
      const { flow } = write;
      const result = q.updateFlow.run({ ...flowToRow(flow, write.stateJson), fromRevision: write.fromRevision });
      if (result.changes !== 1) {
        throw new FlowError('revision_mismatch', `flow ${flow.id} changed while it was being written; retry`);
      }
      const at = flow.updatedAt.getTime();
      for (const event of write.events) this.appendEvent(flow.id, event.kind, event.payload, at);
      if (write.wake) {
        const wakeJson = JSON.stringify(wakeToJson(write.wake));
        const queued = q.queueNotification.run({
          flowId: flow.id,
          wakeJson,
          dueAt: claim ? claim.leaseUntil : at,
          attempts: claim ? 1 : 0,
          createdAt: at,
        });
        claim?.claimed.push({ id: Number(queued.lastInsertRowid), flowId: flow.id, flow, wake: write.wake, attempts: 1 });
      }
    }
    if (decision.upsertStep) q.upsertStep.run(stepToRow(decision.upsertStep));
    for (const id of decision.completeNotifications ?? []) q.completeNotification.run({ id });
    if (decision.keepEvent) {
      q.keepEvent.run(keptEventToRow(decision.keepEvent));
    }
    if (decision.consumeKeptEvent !== undefined) q.consumeKeptEvent.run({ id: decision.consumeKeptEvent });
    if (decision.rememberEventId) {
      q.rememberEventId.run({ id: decision.rememberEventId.id, expiresAt: decision.rememberEventId.expiresAt.getTime() });
    }
  }

  private appendEvent(flowId: string, kind: string, payload: JsonObject, at: number): void {
    this.q.appendEvent.run({ flowId, kind, payloadJson: JSON.stringify(payload), at });
  }

  async getFlow(id: string): Promise<Flow | undefined> {
    this.assertOpen();
    const row = this.q.flowById.get({ id });
    return row ? flowFromRow(row) : undefined;
  }

  async listByOwner(owner: string, options: ListOptions = {}): Promise<Flow[]> {
    this.assertOpen();
    const page = { owner, limit: options.limit ?? DEFAULT_PAGE, offset: options.offset ?? 0 };
    const rows =
      options.status === undefined
        ? this.q.flowsByOwner.all(page)
        : this.q.flowsByOwnerAndStatus.all({ ...page, status: options.status });
    return rows.map(flowFromRow);
  }

  async listByStatus(status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
    this.assertOpen();
    const rows = this.q.flowsByStatus.all({ status, limit: options.limit ?? DEFAULT_PAGE, offset: options.offset ?? 0 });
    return rows.map(flowFromRow);
  }

  async listSteps(flowId: string): Promise<FlowStep[]> {
    this.assertOpen();
    return this.q.stepsOfFlow.all({ flowId }).map(stepFromRow);
  }

  async listEvents(flowId: string): Promise<FlowEvent[]> {
    this.assertOpen();
    return this.q.eventsOfFlow.all({ flowId }).map(eventFromRow);
  }

  async lastEvents(flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
    this.assertOpen();
    // In-process, a prepared seek per flow is cheaper than building an IN list.
    const found = new Map<string, FlowEvent>();
    for (const flowId of flowIds) {
      const row = this.q.lastEventOfKind.get({ flowId, kind });
      if (row) found.set(flowId, eventFromRow(row));
    }
    return found;
  }

  async pruneTerminal(cutoff: number): Promise<number> {
    this.assertOpen();
    return this.q.pruneTerminal.run({ cutoff }).changes;
  }

  async nextWakeAt(): Promise<number | undefined> {
    this.assertOpen();
    return this.q.nextWakeAt.get()?.wakeAt ?? undefined;
  }

  async waitingTopics(): Promise<string[]> {
    this.assertOpen();
    return (this.sqlite.prepare(WAITING_TOPICS_SQL).all() as { topic: string }[]).map((row) => row.topic);
  }

  async claimNotifications(now: number, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
    this.assertOpen();
    return this.inTransaction.immediate(() =>
      this.q.dueNotifications.all({ now, limit }).map((row) => {
        this.q.leaseNotification.run({ id: row.id, dueAt: now + leaseMs });
        const flow = this.q.flowById.get({ id: row.flowId });
        return {
          id: row.id,
          flowId: row.flowId,
          flow: flow ? flowFromRow(flow) : undefined,
          wake: wakeFromJson(JSON.parse(row.wakeJson) as JsonObject),
          attempts: row.attempts + 1,
        };
      }),
    ) as ClaimedNotification[];
  }

  async completeNotifications(ids: readonly number[]): Promise<void> {
    this.assertOpen();
    if (ids.length === 0) return;
    this.inTransaction.immediate(() => {
      for (const id of ids) this.q.completeNotification.run({ id });
    });
  }

  async retryNotification(id: number, dueAt: number): Promise<void> {
    this.assertOpen();
    this.q.retryNotification.run({ id, dueAt });
  }

  async nextNotificationAt(): Promise<number | undefined> {
    this.assertOpen();
    return this.q.nextNotificationAt.get()?.dueAt;
  }

  async listInbox(): Promise<InboxKeySummary[]> {
    this.assertOpen();
    return this.q.inboxByKey.all().map(inboxSummaryFromRow);
  }

  async purgeExpiredEvents(now: number): Promise<number> {
    this.assertOpen();
    return this.q.purgeKeptEvents.run({ now }).changes + this.q.purgeSeenEvents.run({ now }).changes;
  }

  watchForeignCommits(_listener: () => void): () => void {
    // TODO(issue 9.8): replaced by the real change check in this wave.
    return () => undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sqlite.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new FlowError('storage', 'the store is closed');
  }
}

function asFlowError(error: unknown): unknown {
  if (FlowError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FlowError('storage', `database error: ${message}`, { cause: error });
}

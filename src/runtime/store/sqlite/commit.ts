import { FlowError } from '../../errors.js';
import type { Flow, JsonObject } from '../../flow.js';
import { flowFromRow, flowToRow, keptEventFromRow, keptEventToRow, stepFromRow, stepToRow } from '../flow-rows.js';
import type { BatchCommit, BatchOutcome, Committed, Decision, FlowWrite, Loaded, LoadRequest } from '../contract.js';
import { wakeToJson } from '../../wake.js';
import { anyOfKeysOf } from '../../any-of.js';
import { SLICE_MS } from '../../event-loop-slice.js';
import { storageError } from './errors.js';
import type { SqliteStatements } from './statements.js';
import { waitersOn } from './waiters.js';
import { commitGroupOn, freshClaim, refusesOnlyItsItem, transactionStatements, type Claim, type GroupPlan, type GroupUnit, type ItemOutcome } from './group-transaction.js';
import type { Connection, SqliteConnection } from './connection.js';
import type { QueuedUnit } from './commit-queue.js';


/**
 * The commits of several callers in one `BEGIN IMMEDIATE` transaction, each item
 * in a SAVEPOINT of its own: a plan that throws, or a write refused (a revision
 * mismatch, a constraint), rolls back only its item. Any other failure (the disk)
 * fails the whole transaction. Takes units in order while the work stays under
 * `budgetMs` (always the first); returns the outcomes of those it took.
 */
function commitUnitsOnSqlite(
  c: Connection,
  units: readonly QueuedUnit[],
  budgetMs: number,
  load: (q: SqliteStatements, request: LoadRequest) => Loaded,
  apply: (q: SqliteStatements, decision: Decision<unknown>, claim: Claim | undefined) => void,
): BatchOutcome<unknown>[][] {
  const sql = transactionStatements(c);
  return c.inTransaction.immediate(() => {
    const started = performance.now();
    const taken: BatchOutcome<unknown>[][] = [];
    for (const unit of units) {
      if (taken.length > 0 && performance.now() - started >= budgetMs) break;
      const claiming = freshClaim(unit.claim);
      const outcomes: BatchOutcome<unknown>[] = [];
      for (const item of unit.items) {
        const before = claiming?.claimed.length ?? 0;
        sql.savepoint.run();
        let decision: Decision<unknown>;
        try {
          decision = item.plan(load(c.q, item.load));
          apply(c.q, decision, claiming);
        } catch (error) {
          if (!refusesOnlyItsItem(error)) throw error;
          sql.rollbackToSavepoint.run();
          sql.release.run();
          if (claiming) claiming.claimed.length = before;
          outcomes.push({ ok: false, error });
          continue;
        }
        sql.release.run();
        outcomes.push({ ok: true, result: decision.result, claimed: claiming ? claiming.claimed.slice(before) : [] });
      }
      taken.push(outcomes);
    }
    return taken;
  }) as BatchOutcome<unknown>[][];
}

const NONE_BORN_AND_WRITTEN: ReadonlyMap<string, FlowWrite> = new Map();

/**
 * The writes of a decision that move on a flow the same decision inserts (the
 * only write of that flow, from the revision it is inserted at), by flow id.
 */
function bornAndWritten(decision: Decision<unknown>): ReadonlyMap<string, FlowWrite> {
  if (!decision.inserts?.length || !decision.writes?.length) return NONE_BORN_AND_WRITTEN;
  const found = new Map<string, FlowWrite>();
  // null: the flow has more than one write
  const onlyWrite = new Map<string, FlowWrite | null>();
  for (const write of decision.writes) onlyWrite.set(write.flow.id, onlyWrite.has(write.flow.id) ? null : write);
  for (const insert of decision.inserts) {
    const write = onlyWrite.get(insert.flow.id);
    if (write && write.fromRevision === insert.flow.revision) found.set(insert.flow.id, write);
  }
  return found;
}

export async function commit<T>(s: SqliteConnection, load: LoadRequest, plan: (loaded: Loaded) => Decision<T>): Promise<T> {
  const outcome = (await enqueue(s, [{ load, plan }], undefined, true))[0]!;
  if (!outcome.ok) throw storageError(outcome.error, s.settings.path);
  return outcome.result as T;
}

export async function commitClaiming<T>(s: SqliteConnection, load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, leaseUntil: number, limit = Infinity): Promise<Committed<T>> {
  const outcome = (await enqueue(s, [{ load, plan }], { leaseUntil, limit }, true))[0]!;
  if (!outcome.ok) throw storageError(outcome.error, s.settings.path);
  return { result: outcome.result as T, claimed: outcome.claimed };
}

export async function commitBatch<T>(s: SqliteConnection, items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> {
  if (items.length === 0) return [];
  return (await enqueue(s, items, claim, false)) as BatchOutcome<T>[];
}

/** Queues commits for the next group transaction (see {@link CommitQueue}). */
function enqueue<T>(
  s: SqliteConnection,
  items: readonly BatchCommit<T>[],
  claim: { leaseUntil: number; limit?: number } | undefined,
  /** A `commit` or `commitClaiming`: its failure is the call's (a batch's items fail in its outcomes). */
  single: boolean,
): Promise<BatchOutcome<unknown>[]> {
  s.assertOpen();
  return new Promise((settle, fail) => {
    const unit: QueuedUnit = { items: items as readonly BatchCommit<unknown>[], ...(claim ? { claim } : {}), single, settle, fail };
    if (s.settings.groupCommit) s.queue.push(unit);
    else commitUnits(s, [unit]).then(([outcomes]) => settle(outcomes!), fail);
  });
}

/**
 * The queue's committer: a lone commit is one plain transaction, as it always
 * was; several share one, each in a savepoint, up to the slice's worth of work.
 */
export async function commitUnits(s: SqliteConnection, units: readonly QueuedUnit[]): Promise<BatchOutcome<unknown>[][]> {
  const first = units[0]!;
  if (units.length === 1 && first.single) {
    const item = first.items[0]!;
    const committed = await s.write((c) => {
      const claim = freshClaim(first.claim);
      return { result: commitOn(c, item.load, item.plan, claim), claimed: claim?.claimed ?? [] };
    });
    return [[{ ok: true, ...committed }]];
  }
  const work = (c: Connection) => commitUnitsOnSqlite(c, units, SLICE_MS, (q, request) => loadOn(q, request), (q, decision, on) => applyOn(q, decision, on));
  // One item alone is as latency-bound as a lone commit: SQLite's own fsync; several, off the thread.
  return units.length > 1 || first.items.length > 1 ? s.writeSyncingLater(work) : s.write(work);
}

/**
 * One transaction. `BEGIN IMMEDIATE` takes the write lock before reading, so
 * another process cannot slip a write between read and write.
 */
function commitOn<T>(c: Connection, load: LoadRequest, plan: (loaded: Loaded) => Decision<T>, claim?: Claim): T {
  return c.inTransaction.immediate(() => {
    const decision = plan(loadOn(c.q, load));
    applyOn(c.q, decision, claim);
    return decision.result;
  }) as T;
}

/**
 * @internal The worker thread's group commit (see `worker/thread.ts`): the commits of
 * `units` in one transaction, a savepoint per item, each plan made elsewhere (on
 * the main thread) and awaited; the connection serves nothing else meanwhile.
 * The same load and apply as {@link commit}. Outcomes per unit, per item.
 */
export async function commitGroup(s: SqliteConnection, units: readonly GroupUnit[], plan: GroupPlan): Promise<ItemOutcome[][]> {
  return s.write(async (c) => {
    let release!: () => void;
    s.exclusive = new Promise<void>((resolve) => (release = resolve));
    try {
      return await commitGroupOn(c, units, plan, (q, request) => loadOn(q, request), (q, decision, claim) => applyOn(q, decision, claim));
    } finally {
      s.exclusive = undefined;
      release();
    }
  });
}

/**
 * @internal What `request` loads now, in one read transaction (a snapshot; no
 * lock taken, nothing waited for): the worker store's guess of what its thread
 * will load, so a commit usually needs no round trip for its plan. Throws when
 * the file is busy or failing (the caller then does without).
 */
export function loadSnapshot(s: SqliteConnection, request: LoadRequest): Loaded {
  s.assertOpen();
  const c = s.connection;
  return c.inTransaction(() => loadOn(c.q, request)) as Loaded;
}

export function loadOn(q: SqliteStatements, request: LoadRequest): Loaded {
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
    const waiting = waitersOn(q, request.waitingOn);
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
  if (request.keptEventForAny) {
    // The first received among the keys' oldest kept events (ids grow with arrival).
    const { keys, now } = request.keptEventForAny;
    for (const key of keys) {
      const row = q.keptEventFor.get({ ...key, now });
      if (row && (loaded.keptEvent === undefined || row.id < loaded.keptEvent.id)) loaded.keptEvent = keptEventFromRow(row);
    }
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

export function applyOn<T>(q: SqliteStatements, decision: Decision<T>, claim: Claim | undefined): void {
  const bornWritten = bornAndWritten(decision);
  for (const insert of decision.inserts ?? []) {
    // A flow created and moved on in the same decision (start and park) is
    // inserted as it ends: one row written, not a row and then its update.
    const last = bornWritten.get(insert.flow.id);
    const flow = last?.flow ?? insert.flow;
    q.insertFlow.run({ ...flowToRow(flow, last ? last.stateJson : insert.stateJson), idempotencyKey: insert.idempotencyKey ?? null });
    if (flow.status === 'waiting') for (const key of anyOfKeysOf(flow.wait)) q.insertWaitKey.run({ flowId: flow.id, ...key });
    appendEvent(q, insert.flow.id, insert.event.kind, insert.event.payload, insert.flow.updatedAt.getTime());
  }
  for (const write of decision.writes ?? []) {
    const { flow } = write;
    if (bornWritten.get(flow.id) !== write) {
      const result = q.updateFlow.run({ ...flowToRow(flow, write.stateJson), fromRevision: write.fromRevision });
      if (result.changes !== 1) {
        throw new FlowError('revision_mismatch', `flow ${flow.id} changed while it was being written; retry`);
      }
      if (write.rekeys) {
        q.clearWaitKeys.run({ flowId: flow.id });
        if (flow.status === 'waiting') for (const key of anyOfKeysOf(flow.wait)) q.insertWaitKey.run({ flowId: flow.id, ...key });
      }
    }
    const at = flow.updatedAt.getTime();
    for (const event of write.events) appendEvent(q, flow.id, event.kind, event.payload, at);
    if (write.wake) {
      const wakeJson = JSON.stringify(wakeToJson(write.wake));
      const claiming = claim !== undefined && claim.claimed.length < claim.limit;
      const queued = q.queueNotification.run({
        flowId: flow.id,
        wakeJson,
        dueAt: claiming ? claim.leaseUntil : at,
        attempts: claiming ? 1 : 0,
        createdAt: at,
      });
      if (claiming) {
        claim.claimed.push({ id: Number(queued.lastInsertRowid), leaseUntil: claim.leaseUntil, flowId: flow.id, flow, wake: write.wake, attempts: 1 });
      }
    }
  }
  if (decision.upsertStep) q.upsertStep.run(stepToRow(decision.upsertStep));
  for (const { id, leaseUntil } of decision.completeNotifications ?? []) q.completeNotification.run({ id, leaseUntil });
  if (decision.keepEvent) {
    q.keepEvent.run(keptEventToRow(decision.keepEvent));
  }
  if (decision.consumeKeptEvent !== undefined) q.consumeKeptEvent.run({ id: decision.consumeKeptEvent });
  if (decision.rememberEventId) {
    q.rememberEventId.run({ topic: decision.rememberEventId.topic, id: decision.rememberEventId.id, expiresAt: decision.rememberEventId.expiresAt.getTime() });
  }
}

function appendEvent(q: SqliteStatements, flowId: string, kind: string, payload: JsonObject, at: number): void {
  q.appendEvent.run({ flowId, kind, payloadJson: JSON.stringify(payload), at });
}

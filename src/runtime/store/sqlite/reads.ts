import type { Flow, FlowEvent, FlowStatus, FlowStep } from '../../flow.js';
import { eventFromRow, flowFromRow, inboxSummaryFromRow, stepFromRow } from '../flow-rows.js';
import type { FlowPageRequest, InboxKeySummary, ListOptions } from '../contract.js';
import { inspectQueries, type InspectQueries } from '../inspect.js';
import { WAITING_KEYS_SQL, WAITING_TOPICS_SQL } from './waiters.js';
import { HEARTBEATS_SQL } from '../diagnostics-sql.js';
import { heartbeatFromRow, type Heartbeat, type WaitingKey } from '../diagnostics.js';
import { cachedStatement } from './cached-statements.js';
import type { SqliteConnection } from './connection.js';

const DEFAULT_PAGE = 1000;

export async function getFlow(s: SqliteConnection, id: string): Promise<Flow | undefined> {
  return s.read(({ q }) => {
    const row = q.flowById.get({ id });
    return row ? flowFromRow(row) : undefined;
  });
}

export async function listByOwner(s: SqliteConnection, owner: string, options: ListOptions = {}): Promise<Flow[]> {
  const page = { owner, limit: options.limit ?? DEFAULT_PAGE, offset: options.offset ?? 0 };
  return s.read(({ q }) =>
    (options.status === undefined ? q.flowsByOwner.all(page) : q.flowsByOwnerAndStatus.all({ ...page, status: options.status })).map(
      flowFromRow,
    ),
  );
}

export async function listByStatus(s: SqliteConnection, status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
  const page = { status, limit: options.limit ?? DEFAULT_PAGE, offset: options.offset ?? 0 };
  return s.read(({ q }) => q.flowsByStatus.all(page).map(flowFromRow));
}

export async function listSteps(s: SqliteConnection, flowId: string): Promise<FlowStep[]> {
  return s.read(({ q }) => q.stepsOfFlow.all({ flowId }).map(stepFromRow));
}

export async function listEvents(s: SqliteConnection, flowId: string): Promise<FlowEvent[]> {
  return s.read(({ q }) => q.eventsOfFlow.all({ flowId }).map(eventFromRow));
}

export async function lastEvents(s: SqliteConnection, flowIds: readonly string[], kind: FlowEvent['kind']): Promise<Map<string, FlowEvent>> {
  // In-process, a prepared seek per flow (on flow_events_flow_kind) is cheaper than building an IN list.
  return s.read(({ q }) => {
    const found = new Map<string, FlowEvent>();
    for (const flowId of flowIds) {
      const row = q.lastEventOfKind.get({ flowId, kind });
      if (row) found.set(flowId, eventFromRow(row));
    }
    return found;
  });
}

export async function countByStatus(s: SqliteConnection): Promise<Partial<Record<FlowStatus, number>>> {
  return s.read(({ q }) => Object.fromEntries(q.countByStatus.all().map((row) => [row.status, Number(row.count)])));
}

export async function pageFlows(s: SqliteConnection, request: FlowPageRequest): Promise<Flow[]> {
  return s.read(({ q }) =>
    (request.after === undefined
      ? q.flowsPageFirst.all({ status: request.status, limit: request.limit })
      : q.flowsPageAfter.all({ status: request.status, limit: request.limit, ...request.after })
    ).map(flowFromRow),
  );
}

export async function listWaking(s: SqliteConnection, limit: number): Promise<Flow[]> {
  return s.read(({ q }) => q.wakingFlows.all({ limit }).map(flowFromRow));
}

export async function nextWakeAt(s: SqliteConnection): Promise<number | undefined> {
  return s.read(({ q }) => q.nextWakeAt.get()?.wakeAt ?? undefined);
}

export async function waitingTopics(s: SqliteConnection): Promise<string[]> {
  return s.read(({ sqlite }) => (cachedStatement(sqlite, WAITING_TOPICS_SQL).all() as { topic: string }[]).map((row) => row.topic));
}

export async function listHeartbeats(s: SqliteConnection, limit: number): Promise<Heartbeat[]> {
  return s.read(({ sqlite }) =>
    (cachedStatement(sqlite, HEARTBEATS_SQL.list).all(limit) as { id: string; host: string; startedAt: number; beatAt: number; bridgeJson: string | null }[]).map(heartbeatFromRow),
  );
}

export async function waitingKeys(s: SqliteConnection, topic: string, limit: number): Promise<WaitingKey[]> {
  return s.read(({ sqlite }) => cachedStatement(sqlite, WAITING_KEYS_SQL).all({ topic, limit }) as WaitingKey[]);
}

export async function listInbox(s: SqliteConnection): Promise<InboxKeySummary[]> {
  return s.read(({ q }) => q.inboxByKey.all().map(inboxSummaryFromRow));
}

export function inspect(s: SqliteConnection): InspectQueries {
  return inspectQueries('sqlite', (text, params) => s.read(({ sqlite }) => cachedStatement(sqlite, text).all(...params) as Record<string, unknown>[]));
}


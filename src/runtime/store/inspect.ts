import { FLOW_STATUSES, type Flow, type FlowStatus } from '../flow.js';
import type { ResumeReason } from '../wake.js';
import type { EventKey } from '../wait-condition.js';
import type { ResumeNotification } from './notification.js';
import { flowFromRow } from './flow-rows.js';
import { notificationFromRow } from './notification-rows.js';

/**
 * The web inspector's read queries. Each one is bounded: it walks an index and
 * stops after a fixed number of rows, whatever the table holds, so a page costs
 * the same at a thousand flows as at a million. Where a bound cut the answer
 * short, the result says so (`capped`, `scanned`), and the page shows it.
 */
export interface InspectQueries {
  /** How many flows each status holds, each counted up to `cap` (by `flows_status_updated`); `capped` names those that reached it. */
  countByStatus(cap: number): Promise<{ counts: Partial<Record<FlowStatus, number>>; capped: FlowStatus[] }>;
  /** A page of flows of one status, newest update first, filtered; see {@link FlowSearch}. */
  searchFlows(search: FlowSearch): Promise<FlowSearchPage>;
  /** Waiting flows by wait kind, counted over at most `sample` of them. */
  waitingKinds(sample: number): Promise<{ kinds: Record<string, number>; counted: number; capped: boolean }>;
  /**
   * Notifications being retried: not dead, and failed at least once (an error
   * recorded, or a second delivery after a lease ran out); soonest retry first.
   * A first delivery in flight is not one.
   */
  retryingNotifications(limit: number): Promise<ResumeNotification[]>;
  /** Event keys that waiting flows wait on, with how many flows wait on each, by topic then key. */
  eventWaits(limit: number): Promise<EventWaitGroup[]>;
  /** How many audit events of `kind` each hour since `since` (by `flow_events_kind_at`); at most `cap` newest counted. */
  eventsPerHour(kind: 'created' | 'finished' | 'failed' | 'cancelled', since: number, cap: number): Promise<HourlyCounts>;
  /** The newest resumes since `since` (at most `cap`), with the due time of the timer or timeout that woke them. */
  recentResumes(since: number, cap: number): Promise<ResumeSample[]>;
}

/**
 * A filtered flow list. The status, the order and the owner are answered by
 * index (`flows_status_updated`, `flows_owner_created`); controller, step and the
 * text in the goal are checked on at most `scanLimit` rows of that order per
 * request. The page ends at `limit` matches or at the end of the scanned window,
 * whichever comes first; `next` continues after it. So a rare match may take
 * several "continue" requests, but no request reads more than `scanLimit` rows.
 */
export interface FlowSearch {
  status: FlowStatus;
  owner?: string;
  controller?: string;
  step?: string;
  /** Case-insensitive substring of the goal. */
  goalText?: string;
  /** The last flow of the previous page (or the last flow scanned). */
  after?: { updatedAt: number; id: string };
  limit: number;
  /** Rows examined at most when filtering by controller, step or goal text. */
  scanLimit: number;
}

export interface FlowSearchPage {
  flows: Flow[];
  /** Where the next request starts; absent at the end of the list. */
  next?: { updatedAt: number; id: string };
  /** The page stopped at the end of its scan window rather than at `limit` matches. */
  windowEnded: boolean;
  /** Rows examined by this request (`scanLimit` when the window was full). */
  scanned: number;
}

export interface EventWaitGroup extends EventKey {
  flows: number;
}

export interface HourlyCounts {
  /** Hour start (epoch ms) → count. */
  hours: Map<number, number>;
  /** Reached `cap`: older events in the window were not counted. */
  capped: boolean;
}

export interface ResumeSample {
  at: number;
  reason: ResumeReason;
  /** For a timer or timeout: the time it was due (from the flow's `waiting` event). */
  dueAt?: number;
}

/** Runs one read statement (`?` placeholders) and returns its rows. */
export type RawRead = (sql: string, params: readonly unknown[]) => Promise<Record<string, unknown>[]>;

const HOUR = 3_600_000;

/** The flow columns under the names `flowFromRow` reads. */
const FLOW_COLUMNS = `f.id, f.controller_id AS "controllerId", f.goal, f.owner_session_key AS "ownerSessionKey",
  f.requester_origin AS "requesterOrigin", f.current_step AS "currentStep", f.state_json AS "stateJson",
  f.wait_json AS "waitJson", f.status, f.cancel_requested AS "cancelRequested", f.revision,
  f.idempotency_key AS "idempotencyKey", f.wake_at AS "wakeAt", f.wait_topic AS "waitTopic",
  f.wait_correlation_id AS "waitCorrelationId", f.created_at AS "createdAt", f.updated_at AS "updatedAt"`;

const NOTIFICATION_COLUMNS = `id, flow_id AS "flowId", wake_json AS "wakeJson", due_at AS "dueAt", attempts,
  created_at AS "createdAt", last_error AS "lastError", dead_at AS "deadAt"`;

/** `?` placeholders as PostgreSQL's `$n`. */
function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/** The inspector's queries over one dialect's raw reads; the SQL differs only in JSON access, text search and the tie-breaker of the order. */
export function inspectQueries(dialect: 'sqlite' | 'postgres', raw: RawRead): InspectQueries {
  const pg = dialect === 'postgres';
  const read = (text: string, params: readonly unknown[]) => raw(pg ? numbered(text) : text, params);
  /** The order's tie-breaker: SQLite's rowid (held by every index), PostgreSQL's id (as `pageFlows`). */
  const tie = pg ? 'id' : 'rowid';
  const json = (column: string, key: string) => (pg ? `(${column}::json->>'${key}')` : `json_extract(${column}, '$.${key}')`);

  /**
   * `status = ? [AND owner = ?] [AND keyset after]` on `flows`, in the list's order.
   * With an owner, SQLite is told to seek that owner's flows (`flows_owner_created`)
   * and sort them: its planner would otherwise walk every flow of the status.
   */
  const window = (search: FlowSearch): { from: string; where: string; params: unknown[] } => {
    const params: unknown[] = [search.status];
    let where = 'status = ?';
    let from = 'flows';
    if (search.owner !== undefined) {
      where += ' AND owner_session_key = ?';
      params.push(search.owner);
      if (!pg) from = 'flows INDEXED BY flows_owner_created';
    }
    if (search.after) {
      if (pg) {
        where += ' AND (updated_at, id) < (?, ?)';
        params.push(search.after.updatedAt, search.after.id);
      } else {
        where += ' AND updated_at <= ? AND (updated_at < ? OR rowid < (SELECT rowid FROM flows AS a WHERE a.id = ?))';
        params.push(search.after.updatedAt, search.after.updatedAt, search.after.id);
      }
    }
    return { from, where, params };
  };

  return {
    async countByStatus(cap) {
      const counts: Partial<Record<FlowStatus, number>> = {};
      const capped: FlowStatus[] = [];
      // The order keeps each count on flows_status_updated: PostgreSQL's planner would scan the table for a common status.
      const rows = await read(
        FLOW_STATUSES.map((status) => `SELECT CAST('${status}' AS TEXT) AS status, (SELECT count(*) FROM (SELECT 1 FROM flows WHERE status = '${status}' ORDER BY updated_at DESC LIMIT ?) AS c) AS n`).join(' UNION ALL '),
        FLOW_STATUSES.map(() => cap),
      );
      for (const row of rows) {
        const n = Number(row.n);
        if (n === 0) continue;
        counts[row.status as FlowStatus] = n;
        if (n >= cap) capped.push(row.status as FlowStatus);
      }
      return { counts, capped };
    },

    async searchFlows(search) {
      const filters: string[] = [];
      const filterParams: unknown[] = [];
      if (search.controller !== undefined) {
        filters.push('s.controller_id = ?');
        filterParams.push(search.controller);
      }
      if (search.step !== undefined) {
        filters.push('s.current_step = ?');
        filterParams.push(search.step);
      }
      if (search.goalText !== undefined) {
        filters.push(pg ? 'position(lower(?) in lower(s.goal)) > 0' : 'instr(lower(s.goal), lower(?)) > 0');
        filterParams.push(search.goalText);
      }
      const scan = filters.length === 0 ? search.limit : Math.max(search.limit, search.scanLimit);
      const { from, where, params } = window(search);
      // The window: index order, filter columns only (the state is read for matches alone).
      const rows = await read(
        `SELECT ${FLOW_COLUMNS} FROM (
           SELECT ${tie} AS k, updated_at, controller_id, current_step, goal FROM ${from}
           WHERE ${where} ORDER BY updated_at DESC, ${tie} DESC LIMIT ?
         ) AS s JOIN flows AS f ON f.${tie} = s.k
         ${filters.length === 0 ? '' : `WHERE ${filters.join(' AND ')}`}
         ORDER BY s.updated_at DESC, s.k DESC LIMIT ?`,
        [...params, scan, ...filterParams, search.limit],
      );
      const flows = rows.map((row) => flowFromRow(row as unknown as Parameters<typeof flowFromRow>[0]));
      const last = flows.at(-1);
      if (flows.length === search.limit && last) {
        return { flows, next: { updatedAt: last.updatedAt.getTime(), id: last.id }, windowEnded: false, scanned: scan };
      }
      if (filters.length === 0) return { flows, windowEnded: true, scanned: flows.length };
      // Fewer matches than a page: the window's last row, if the window was full, is where the next request starts.
      const edge = await read(`SELECT updated_at AS "updatedAt", id FROM ${from} WHERE ${where} ORDER BY updated_at DESC, ${tie} DESC LIMIT 1 OFFSET ?`, [...params, scan - 1]);
      const end = edge[0];
      if (!end) return { flows, windowEnded: true, scanned: Number.NaN };
      return { flows, next: { updatedAt: Number(end.updatedAt), id: String(end.id) }, windowEnded: true, scanned: scan };
    },

    async waitingKinds(sample) {
      const rows = await read(
        `SELECT ${json('w.wait_json', 'kind')} AS kind, count(*) AS n FROM (SELECT wait_json FROM flows WHERE status = 'waiting' LIMIT ?) AS w GROUP BY 1`,
        [sample + 1],
      );
      const kinds: Record<string, number> = {};
      let counted = 0;
      for (const row of rows) {
        const n = Number(row.n);
        counted += n;
        kinds[String(row.kind ?? 'none')] = n;
      }
      return { kinds, counted: Math.min(counted, sample), capped: counted > sample };
    },

    async retryingNotifications(limit) {
      // resume_notifications_due: the live ones (dead_at IS NULL) in due order; a bounded look.
      const rows = await read(
        `SELECT ${NOTIFICATION_COLUMNS} FROM (SELECT * FROM resume_notifications WHERE dead_at IS NULL ORDER BY due_at LIMIT 10000) AS n
         WHERE last_error IS NOT NULL OR attempts > 1 ORDER BY due_at LIMIT ?`,
        [limit],
      );
      return rows.map((row) => notificationFromRow(row as unknown as Parameters<typeof notificationFromRow>[0]));
    },

    async eventWaits(limit) {
      // flows_status_topic_correlation: groups come in index order; LIMIT stops the walk.
      const rows = await read(
        `SELECT wait_topic AS topic, wait_correlation_id AS "correlationId", count(*) AS n FROM flows
         WHERE status = 'waiting' AND wait_topic IS NOT NULL
         GROUP BY wait_topic, wait_correlation_id ORDER BY wait_topic, wait_correlation_id LIMIT ?`,
        [limit],
      );
      return rows.map((row) => ({ topic: String(row.topic), correlationId: String(row.correlationId), flows: Number(row.n) }));
    },

    async eventsPerHour(kind, since, cap) {
      const rows = await read(
        `SELECT e.at - (e.at % ${HOUR}) AS hour, count(*) AS n FROM (
           SELECT at FROM flow_events WHERE kind = ? AND at >= ? ORDER BY at DESC LIMIT ?
         ) AS e GROUP BY 1`,
        [kind, since, cap],
      );
      const hours = new Map<number, number>();
      let total = 0;
      for (const row of rows) {
        hours.set(Number(row.hour), Number(row.n));
        total += Number(row.n);
      }
      return { hours, capped: total >= cap };
    },

    async recentResumes(since, cap) {
      const reason = json('e.payload_json', 'reason');
      // The wait that parked the flow: its latest `waiting` event before the resume (flow_events_flow_kind).
      const rows = await read(
        `SELECT e.at, ${reason} AS reason,
           CASE WHEN ${reason} IN ('timer', 'timeout') THEN (
             SELECT w.payload_json FROM flow_events AS w WHERE w.flow_id = e.flow_id AND w.kind = 'waiting' AND w.id < e.id ORDER BY w.id DESC LIMIT 1
           ) END AS waiting
         FROM (SELECT id, flow_id, at, payload_json FROM flow_events WHERE kind = 'resumed' AND at >= ? ORDER BY at DESC LIMIT ?) AS e`,
        [since, cap],
      );
      return rows.map((row) => {
        const sample: ResumeSample = { at: Number(row.at), reason: String(row.reason) as ResumeReason };
        if (typeof row.waiting === 'string') {
          try {
            const wait = (JSON.parse(row.waiting) as { wait?: { at?: string; timeoutAt?: string } }).wait;
            const due = sample.reason === 'timer' ? wait?.at : wait?.timeoutAt;
            if (due !== undefined) sample.dueAt = Date.parse(due);
          } catch {
            // A payload that is not JSON has no due time to show.
          }
        }
        return sample;
      });
    },
  };
}

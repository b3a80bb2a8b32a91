import { FLOW_STATUSES, type Flow, type FlowStatus } from '../../runtime/flow.js';
import type { ListOptions } from '../../runtime/store/contract.js';
import type { Taskflow } from '../../runtime/taskflow.js';
import { parseIntegerOption, parseStatusOption, stringOption } from '../args.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { flowsTable, plural } from '../format.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 10_000;
/** Rows per store read while collecting a page (the runtime's lists take at most 10,000). */
const CHUNK = 1000;

/** The sort order of `taskflow list`, whatever the filter; `help list` and the README say it. */
export const LIST_ORDER =
  'least recently updated first; flows updated in the same millisecond in status order (created, running, waiting, finished, failed, cancelled), then in creation order';

/** Filters and window of {@link listFlows}. */
export interface ListQuery {
  owner?: string;
  status?: FlowStatus;
  /** Flows to skip, in {@link LIST_ORDER}. */
  offset: number;
  limit: number;
}

/** One page of `taskflow list`. */
export interface FlowPage {
  flows: Flow[];
  /** Whether flows follow this page (then `--offset offset + flows.length` reads them). */
  hasMore: boolean;
}

/** Reads the first `count` rows of a paged list (or all it has), `CHUNK` at a time. */
async function firstRows(read: (options: ListOptions) => Promise<Flow[]>, count: number): Promise<Flow[]> {
  const rows: Flow[] = [];
  while (rows.length < count) {
    const size = Math.min(CHUNK, count - rows.length);
    const chunk = await read({ offset: rows.length, limit: size });
    rows.push(...chunk);
    if (chunk.length < size) break;
  }
  return rows;
}

/** Sorts in {@link LIST_ORDER}: by `updatedAt`, then status; stable, so each list keeps its creation order on ties. */
function inListOrder(flows: Flow[]): Flow[] {
  const rank = (status: FlowStatus) => FLOW_STATUSES.indexOf(status);
  return flows.sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime() || rank(a.status) - rank(b.status));
}

/**
 * One page of the flows matching the filters, in {@link LIST_ORDER}.
 * - Without `owner`: each status (or the one asked for) is read through its
 *   (status, updated_at) index, in updated then creation order, `offset + limit + 1`
 *   rows at most, and the lists are merged: the first n flows overall are among
 *   the first n of their own status. Cost O(offset + limit) per status, never a
 *   scan of all flows.
 * - With `owner`: the owner's flows (of that status) are read through the
 *   (owner, created_at) index and sorted here: O(the owner's flows).
 */
export async function listFlows(tf: Taskflow, query: ListQuery): Promise<FlowPage> {
  const { owner, status, offset, limit } = query;
  const wanted = offset + limit + 1;
  let candidates: Flow[];
  if (owner !== undefined) {
    const read = (page: ListOptions) => tf.manager.listByOwner(owner, status === undefined ? page : { ...page, status });
    // Newest created first from the store; reversed, creation order, which the stable sort keeps on ties.
    candidates = (await firstRows(read, Number.MAX_SAFE_INTEGER)).reverse();
  } else {
    const statuses = status === undefined ? FLOW_STATUSES : [status];
    const lists = await Promise.all(statuses.map((s) => firstRows((page) => tf.manager.listByStatus(s, page), wanted)));
    candidates = lists.flat();
  }
  const sorted = inListOrder(candidates);
  return { flows: sorted.slice(offset, offset + limit), hasMore: sorted.length > offset + limit };
}

/**
 * Flows with a dead resume notification (parked after its last attempt), narrowed by `owner` and `status`, at most `limit`. Read
 * through the dead notifications' index: O(dead), never a scan of all flows.
 */
export async function listFlowsWithDead(tf: Taskflow, filters: { owner?: string; status?: Flow['status']; limit: number }): Promise<Flow[]> {
  const dead = await tf.store.listDeadNotifications(MAX_LIMIT);
  const flows: Flow[] = [];
  for (const flowId of new Set(dead.map((n) => n.flowId))) {
    const flow = await tf.manager.get(flowId);
    if (!flow) continue;
    if (filters.owner !== undefined && flow.ownerSessionKey !== filters.owner) continue;
    if (filters.status !== undefined && flow.status !== filters.status) continue;
    flows.push(flow);
    if (flows.length === filters.limit) break;
  }
  return flows;
}

/** How many dead notifications each of these flows has (flows with none are absent). */
async function deadCounts(tf: Taskflow, flows: readonly Flow[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const n of await tf.store.listNotifications(flows.map((f) => f.id))) {
    if (n.deadAt) counts[n.flowId] = (counts[n.flowId] ?? 0) + 1;
  }
  return counts;
}

/** `taskflow list`: JSON shape `{ count, offset, hasMore, nextOffset, flows: Flow[], deadNotifications: { [flowId]: n } }`. */
export const listCommand: DatabaseCommand = {
  name: 'list',
  summary: 'list flows, filtered by status and owner, a page at a time',
  usage: 'list [--status <status>] [--owner <session-key>] [--dead] [--limit <n>] [--offset <n>]',
  details: [
    'Options:',
    `  --status <status>      only flows in this status: ${FLOW_STATUSES.join(', ')}`,
    '  --owner <session-key>  only flows of this owner session key',
    '  --dead                 only flows with a dead resume notification (onResume failed',
    '                         on every attempt; see `taskflow show`, `taskflow requeue`)',
    `  --limit <n>            at most n flows (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT})`,
    '  --offset <n>           skip the first n flows (default 0): the next page starts at',
    '                         the previous offset plus the flows it printed',
    '',
    `Order, whatever the filter: ${LIST_ORDER}.`,
    'So the flows that have sat longest come first.',
    'A flow with dead notifications is marked "(n dead resumes)" in the STATUS column.',
    'JSON: { "count": n, "offset": n, "hasMore": bool, "nextOffset": n | null, "flows": [Flow, ...],',
    '        "deadNotifications": { flowId: n } }',
  ].join('\n'),
  positionals: [],
  options: {
    status: { type: 'string' },
    owner: { type: 'string' },
    dead: { type: 'boolean' },
    limit: { type: 'string' },
    offset: { type: 'string' },
  },
  usesDatabase: true,
  readsOnly: true,
  async run({ tf, values, json, stdout }) {
    const statusText = stringOption(values, 'status');
    const owner = stringOption(values, 'owner');
    const limitText = stringOption(values, 'limit');
    const offsetText = stringOption(values, 'offset');
    const status = statusText === undefined ? undefined : parseStatusOption(statusText);
    const limit = limitText === undefined ? DEFAULT_LIMIT : parseIntegerOption(limitText, 'limit', 1, MAX_LIMIT);
    const offset = offsetText === undefined ? 0 : parseIntegerOption(offsetText, 'offset', 0, Number.MAX_SAFE_INTEGER);
    const filters = { ...(owner === undefined ? {} : { owner }), ...(status === undefined ? {} : { status }) };
    let page: FlowPage;
    if (values.dead === true) {
      const sorted = inListOrder(await listFlowsWithDead(tf, { ...filters, limit: MAX_LIMIT }));
      page = { flows: sorted.slice(offset, offset + limit), hasMore: sorted.length > offset + limit };
    } else {
      page = await listFlows(tf, { ...filters, offset, limit });
    }
    const { flows, hasMore } = page;
    const dead = await deadCounts(tf, flows);
    const nextOffset = hasMore ? offset + flows.length : null;
    if (json) return writeJson(stdout, { count: flows.length, offset, hasMore, nextOffset, flows, deadNotifications: dead });
    if (flows.length === 0) {
      const none = values.dead === true ? 'no flows with dead notifications' : 'no flows';
      stdout.write(offset === 0 ? `${none}\n` : `${none} after the first ${offset}\n`);
      return;
    }
    stdout.write(flowsTable(flows, (f) => (dead[f.id] ? `(${plural(dead[f.id]!, 'dead resume')})` : undefined)));
    const range = offset === 0 ? plural(flows.length, 'flow') : `flows ${offset + 1} to ${offset + flows.length}`;
    stdout.write(`\n${range}${hasMore ? `; more follow: --offset ${nextOffset}` : ''}\n`);
  },
};

import { FLOW_STATUSES, type Flow } from '../../runtime/flow.js';
import type { Taskflow } from '../../runtime/taskflow.js';
import { parseIntegerOption, parseStatusOption, stringOption } from '../args.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { usageError } from '../errors.js';
import { flowsTable, plural } from '../format.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 10_000;

/**
 * The flows matching the filters, at most `limit`:
 * - `owner` (with or without `status`): the owner's flows, newest created first;
 * - `status` alone: that status, least recently updated first;
 * - neither: every status, least recently updated first. Each status is read
 *   through its (status, updated_at) index, `limit` rows at most, and the lists
 *   are merged: the oldest `limit` overall are among the oldest `limit` of their
 *   own status, so this costs O(limit) per status, never a scan of all flows.
 */
export async function listFlows(tf: Taskflow, filters: { owner?: string; status?: Flow['status']; limit: number }): Promise<Flow[]> {
  const { owner, status, limit } = filters;
  if (owner !== undefined) return tf.manager.listByOwner(owner, status === undefined ? { limit } : { status, limit });
  if (status !== undefined) return tf.manager.listByStatus(status, { limit });
  const perStatus = await Promise.all(FLOW_STATUSES.map((s) => tf.manager.listByStatus(s, { limit })));
  return perStatus
    .flat()
    .sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime() || a.id.localeCompare(b.id))
    .slice(0, limit);
}

/**
 * Flows with a dead resume notification (parked after its last attempt), the most
 * recently parked first, narrowed by `owner` and `status`, at most `limit`. Read
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

/** `taskflow list`: JSON shape `{ count, flows: Flow[], deadNotifications: { [flowId]: n } }`. */
export const listCommand: DatabaseCommand = {
  name: 'list',
  summary: 'list flows, filtered by status and owner',
  usage: 'list [--status <status>] [--owner <session-key>] [--dead] [--limit <n>]',
  details: [
    'Options:',
    `  --status <status>      only flows in this status: ${FLOW_STATUSES.join(', ')}`,
    '  --owner <session-key>  only flows of this owner session key',
    '  --dead                 only flows with a dead resume notification (onResume failed',
    '                         on every attempt; see `taskflow show`, `taskflow requeue`)',
    `  --limit <n>            at most n flows (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT})`,
    '',
    'Order: with --owner, newest created first; with --dead, most recently parked first;',
    'otherwise least recently updated first, so flows that have sat longest show at the top.',
    'A flow with dead notifications is marked "(n dead resumes)" in the STATUS column.',
    'JSON: { "count": n, "flows": [Flow, ...], "deadNotifications": { flowId: n } }',
  ].join('\n'),
  positionals: [],
  options: {
    status: { type: 'string' },
    owner: { type: 'string' },
    dead: { type: 'boolean' },
    limit: { type: 'string' },
  },
  usesDatabase: true,
  async run({ tf, values, json, stdout }) {
    const statusText = stringOption(values, 'status');
    const owner = stringOption(values, 'owner');
    const limitText = stringOption(values, 'limit');
    if (owner !== undefined && owner.trim() === '') throw usageError('--owner needs a session key');
    const status = statusText === undefined ? undefined : parseStatusOption(statusText);
    const limit = limitText === undefined ? DEFAULT_LIMIT : parseIntegerOption(limitText, 'limit', 1, MAX_LIMIT);
    const filters = { limit, ...(owner === undefined ? {} : { owner }), ...(status === undefined ? {} : { status }) };
    const flows = values.dead === true ? await listFlowsWithDead(tf, filters) : await listFlows(tf, filters);
    const dead = await deadCounts(tf, flows);
    if (json) return writeJson(stdout, { count: flows.length, flows, deadNotifications: dead });
    if (flows.length === 0) {
      stdout.write(values.dead === true ? 'no flows with dead notifications\n' : 'no flows\n');
      return;
    }
    stdout.write(flowsTable(flows, (f) => (dead[f.id] ? `(${plural(dead[f.id]!, 'dead resume')})` : undefined)));
    stdout.write(`\n${plural(flows.length, 'flow')}${flows.length === limit ? ` (limit ${limit}; raise --limit for more)` : ''}\n`);
  },
};

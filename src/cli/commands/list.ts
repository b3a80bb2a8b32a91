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

/** `taskflow list`: JSON shape `{ count, flows: Flow[] }`. */
export const listCommand: DatabaseCommand = {
  name: 'list',
  summary: 'list flows, filtered by status and owner',
  usage: 'list [--status <status>] [--owner <session-key>] [--limit <n>]',
  details: [
    'Options:',
    `  --status <status>      only flows in this status: ${FLOW_STATUSES.join(', ')}`,
    '  --owner <session-key>  only flows of this owner session key',
    `  --limit <n>            at most n flows (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT})`,
    '',
    'Order: with --owner, newest created first; otherwise least recently updated',
    'first, so flows that have sat longest show at the top.',
    'JSON: { "count": n, "flows": [Flow, ...] }',
  ].join('\n'),
  positionals: [],
  options: {
    status: { type: 'string' },
    owner: { type: 'string' },
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
    const flows = await listFlows(tf, {
      limit,
      ...(owner === undefined ? {} : { owner }),
      ...(status === undefined ? {} : { status }),
    });
    if (json) return writeJson(stdout, { count: flows.length, flows });
    if (flows.length === 0) {
      stdout.write('no flows\n');
      return;
    }
    stdout.write(flowsTable(flows));
    stdout.write(`\n${plural(flows.length, 'flow')}${flows.length === limit ? ` (limit ${limit}; raise --limit for more)` : ''}\n`);
  },
};

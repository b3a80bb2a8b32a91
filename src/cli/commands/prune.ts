import { parseDuration } from '../../runtime/duration.js';
import { FlowError } from '../../runtime/errors.js';
import { stringOption } from '../args.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { usageError } from '../errors.js';
import { plural } from '../format.js';

/**
 * `taskflow prune --older-than <duration>`: deletes terminal flows (finished,
 * failed, cancelled) last updated at or before now − duration, with their steps
 * and audit events. The duration is required so that nothing is pruned by a bare
 * command; `0` prunes every terminal flow. JSON shape: `{ pruned, olderThan, cutoff }`.
 */
export const pruneCommand: DatabaseCommand = {
  name: 'prune',
  summary: 'delete terminal flows older than a duration',
  usage: 'prune --older-than <duration>',
  details: [
    'Deletes finished, failed and cancelled flows last updated at or before now minus the',
    'duration, with their steps and audit events. Waiting and running flows are never touched.',
    'Options:',
    '  --older-than <duration>   required, with a unit: 250ms, 5s, 10m, 2h, 30d, 1w; 0 prunes every terminal flow',
    'JSON: { "pruned": n, "olderThan": duration, "cutoff": ISO time }',
  ].join('\n'),
  positionals: [],
  options: { 'older-than': { type: 'string' } },
  usesDatabase: true,
  async run({ tf, values, json, stdout }) {
    const olderThan = stringOption(values, 'older-than');
    if (olderThan === undefined) throw usageError('prune needs --older-than <duration>, such as --older-than 30d');
    // A bare number could mean milliseconds or days: only 0, the same in every unit, goes without one.
    if (/^\s*\d+(\.\d+)?\s*$/.test(olderThan) && Number(olderThan) !== 0) {
      throw usageError(`--older-than ${olderThan.trim()} has no unit: add one, such as ${olderThan.trim()}d (days), ${olderThan.trim()}h or ${olderThan.trim()}m`);
    }
    let ms: number;
    try {
      ms = parseDuration(Number(olderThan) === 0 ? 0 : olderThan, '--older-than');
    } catch (error) {
      throw usageError(FlowError.isInstance(error) ? error.message : String(error));
    }
    const cutoff = new Date(tf.clock.now() - ms);
    const pruned = await tf.manager.pruneTerminal(ms);
    if (json) return writeJson(stdout, { pruned, olderThan, cutoff });
    stdout.write(`pruned ${plural(pruned, 'terminal flow')} last updated at or before ${cutoff.toISOString()}\n`);
  },
};

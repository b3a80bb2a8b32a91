import { stringOption } from '../args.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { usageError } from '../errors.js';
import { plural } from '../format.js';
import { requireFlow } from './flow-id.js';

/**
 * `taskflow requeue <id> [--notification <n>]`: puts a flow's dead resume
 * notifications back in the queue, as `WaitEngine.requeueDead` does.
 * JSON shape: `{ flowId, requeued }`.
 */
export const requeueCommand: DatabaseCommand = {
  name: 'requeue',
  summary: "re-queue a flow's dead resume notifications for onResume",
  usage: 'requeue <id> [--notification <n>]',
  details: [
    'A notification whose onResume handler failed maxResumeAttempts times is parked as',
    'dead (see `taskflow list --dead` and `taskflow show <id>`). This puts it back, due',
    'now with its attempts reset; the application\'s running engine delivers it.',
    'Options:',
    '  --notification <n>   only this notification (its # in `taskflow show`)',
    'JSON: { "flowId": id, "requeued": n }',
  ].join('\n'),
  positionals: ['id'],
  options: { notification: { type: 'string' } },
  usesDatabase: true,
  async run({ tf, args, values, json, stdout }) {
    const notificationText = stringOption(values, 'notification');
    let notificationId: number | undefined;
    if (notificationText !== undefined) {
      notificationId = /^\d+$/.test(notificationText.trim()) ? Number(notificationText) : Number.NaN;
      if (!Number.isSafeInteger(notificationId) || notificationId < 1) {
        throw usageError(`--notification must be a notification number (the # in taskflow show), got "${notificationText}"`);
      }
    }
    const flow = await requireFlow(tf, args[0]!);
    const requeued = await tf.engine.requeueDead(flow.id, notificationId === undefined ? {} : { notificationId });
    if (json) return writeJson(stdout, { flowId: flow.id, requeued });
    stdout.write(
      requeued === 0
        ? `flow ${flow.id} has no dead notification${notificationId === undefined ? '' : ` #${notificationId}`}\n`
        : `re-queued ${plural(requeued, 'dead notification')} of flow ${flow.id}; the application's engine delivers ${requeued === 1 ? 'it' : 'them'}\n`,
    );
  },
};

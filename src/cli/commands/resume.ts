import type { JsonObject } from '../../runtime/flow.js';
import { parseJsonObjectOption, stringOption } from '../args.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { describeStatus } from '../format.js';

/**
 * `taskflow resume <id> [--patch json]`: moves a waiting flow back to running,
 * merging the patch into its state; audited as a `manual` resume and queued for
 * the application's `onResume`. JSON shape: `{ flow: Flow }`.
 */
export const resumeCommand: DatabaseCommand = {
  name: 'resume',
  summary: 'resume a waiting flow by hand, optionally patching its state',
  usage: 'resume <id> [--patch <json-object>]',
  details: [
    'Moves a waiting flow to running (a manual resume), shallow-merging the patch into',
    'its state. The application\'s engine hands the resume to its onResume handler.',
    'A flow that is not waiting is refused (exit 1).',
    'Options:',
    '  --patch <json-object>   for example \'{"approved": true}\'',
    'JSON: { "flow": Flow }',
  ].join('\n'),
  positionals: ['id'],
  options: { patch: { type: 'string' } },
  usesDatabase: true,
  async run({ tf, args, values, json, stdout }) {
    const patchText = stringOption(values, 'patch');
    const patch: JsonObject | undefined = patchText === undefined ? undefined : parseJsonObjectOption(patchText, 'patch');
    const flow = await tf.manager.resume(args[0]!, patch);
    if (json) return writeJson(stdout, { flow });
    stdout.write(`resumed flow ${flow.id}: ${describeStatus(flow)} at step ${flow.currentStep}\n`);
  },
};

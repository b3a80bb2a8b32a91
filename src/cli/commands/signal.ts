import type { SignalInput } from '../../runtime/engine/engine.js';
import { parseJsonOption, stringOption } from '../args.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { describeStatus } from '../format.js';

/**
 * `taskflow signal <id> [--name n] [--payload json]`: resumes a flow waiting on a
 * manual wait, as `WaitEngine.signal` does. JSON shape: `{ flow: Flow }`.
 */
export const signalCommand: DatabaseCommand = {
  name: 'signal',
  summary: 'send a manual signal to a flow waiting for one',
  usage: 'signal <id> [--name <signal>] [--payload <json>]',
  details: [
    'Resumes a flow on a manual wait. When the wait names a signal, --name must match it.',
    'A flow that is not waiting, or waits for a timer or an event, is refused (exit 1).',
    'Options:',
    '  --name <signal>    the signal name',
    '  --payload <json>   any JSON value, handed to onResume as wake.payload',
    'JSON: { "flow": Flow }',
  ].join('\n'),
  positionals: ['id'],
  options: { name: { type: 'string' }, payload: { type: 'string' } },
  usesDatabase: true,
  async run({ tf, args, values, json, stdout }) {
    const name = stringOption(values, 'name');
    const payloadText = stringOption(values, 'payload');
    const input: SignalInput = {};
    if (name !== undefined) input.signal = name;
    if (payloadText !== undefined) input.payload = parseJsonOption(payloadText, 'payload');
    const flow = await tf.engine.signal(args[0]!, input);
    if (json) return writeJson(stdout, { flow });
    stdout.write(`signalled flow ${flow.id}${name === undefined ? '' : ` with ${name}`}: ${describeStatus(flow)}\n`);
  },
};

import { startInspector } from '../../ui/inspector.js';
import { parseIntegerOption, stringOption } from '../args.js';
import type { DatabaseCommand } from '../command.js';

/**
 * `taskflow ui [--port n] [--host h] [--allowed-hosts a,b] [--read-only] [--token t]`: the web inspector
 * over the database, until interrupted. Prints its address and the action token.
 */
export const uiCommand: DatabaseCommand = {
  name: 'ui',
  summary: 'open the web inspector on the database (Ctrl-C stops it)',
  usage: 'ui [--port <n>] [--host <address>] [--allowed-hosts <names>] [--read-only] [--token <token>]',
  details: [
    'Serves an overview with charts, the flow list (filters: status, owner, controller, step,',
    'goal text), a page per flow with its timeline, the waits, live updates, and actions',
    '(cancel, signal, resume, deliver an event, re-queue a dead notification) through',
    'the same runtime calls as the other commands. Actions need the token printed at start',
    '(open the printed login link once); requests from another origin are refused.',
    'Options:',
    '  --port <n>         the port (default 4600; 0 picks a free one)',
    '  --host <address>   default 127.0.0.1; any other address needs --token, and then',
    '                     every request needs it',
    '  --allowed-hosts <names>  comma-separated names to answer to besides loopback and',
    '                     --host (such as the name a proxy forwards); any other Host is refused',
    '  --read-only        no actions',
    '  --token <token>    the action token (default: a random one, or TASKFLOW_UI_TOKEN)',
  ].join('\n'),
  positionals: [],
  options: { port: { type: 'string' }, host: { type: 'string' }, 'allowed-hosts': { type: 'string' }, 'read-only': { type: 'boolean' }, token: { type: 'string' } },
  usesDatabase: true,
  async run({ tf, values, stdout }) {
    const portText = stringOption(values, 'port');
    const port = portText === undefined ? 4600 : parseIntegerOption(portText, 'port', 0, 65535);
    const host = stringOption(values, 'host');
    const token = stringOption(values, 'token') ?? (process.env.TASKFLOW_UI_TOKEN || undefined);
    const readOnly = values['read-only'] === true;
    const allowedHosts = stringOption(values, 'allowed-hosts')?.split(',').map((name) => name.trim());
    const inspector = await startInspector({ taskflow: tf, port, readOnly, ...(host === undefined ? {} : { host }), ...(allowedHosts === undefined ? {} : { allowedHosts }), ...(token === undefined ? {} : { token }) });
    stdout.write(`taskflow inspector at ${inspector.url}${readOnly ? ' (read-only)' : ''}\n`);
    if (!readOnly) {
      stdout.write(`action token: ${inspector.token}\n`);
      stdout.write(`open ${inspector.loginUrl} to enable actions in this browser\n`);
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await inspector.close();
  },
};

import type { Command, OfflineCommand } from '../command.js';
import { usageError } from '../errors.js';

const GLOBAL_HELP = [
  'Global options:',
  '  --db <path>   the SQLite database file (or a postgres:// URL); default TASKFLOW_DB_PATH,',
  '                then ./data/taskflow.db. It must exist: the CLI never creates a database',
  '                or a table, and opens a file this user can only read read-only.',
  '  --json        print a stable JSON shape instead of tables (errors too, on stderr)',
  '  -h, --help    help for a command',
  '  -V, --version print the version (taskflow --version)',
  '',
  'Exit codes: 0 done, 1 refused by the runtime (not_found, illegal_transition, ...),',
  '2 usage error (unknown command or option, missing or empty argument, bad JSON),',
  '3 missing or read-only database, or storage failure.',
].join('\n');

/** The full help text: every command with its summary, then the global options. */
export function generalHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const list = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `taskflow: operate nexo-taskflow flows in a database\n\nUsage: taskflow <command> [arguments] [--db <path>] [--json]\n\nCommands:\n${list}\n\n${GLOBAL_HELP}\n\nRun \`taskflow help <command>\` for a command's options.\n`;
}

/** The help of one command. */
export function commandHelp(command: Command): string {
  return `Usage: taskflow ${command.usage} [--db <path>] [--json]\n\n${command.summary}\n\n${command.details}\n`;
}

/** `taskflow help [command]`. Prints text even with `--json`: help is for people. */
export const helpCommand: OfflineCommand = {
  name: 'help',
  summary: 'show this help, or a command\'s help',
  usage: 'help [command]',
  details: 'Also: taskflow --help, taskflow <command> --help.',
  positionals: [],
  optionalPositionals: ['command'],
  options: {},
  usesDatabase: false,
  async run({ args, commands, stdout }) {
    const topic = args[0];
    if (topic === undefined) {
      stdout.write(generalHelp(commands));
      return;
    }
    const command = commands.find((c) => c.name === topic);
    if (!command) throw usageError(`unknown command "${topic}": run \`taskflow help\` for the list`);
    stdout.write(commandHelp(command));
  },
};

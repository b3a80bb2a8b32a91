import { readFileSync } from 'node:fs';
import { emptyArgument, parseCommandArgs, splitCommand, stringOption } from './args.js';
import type { Command, Output } from './command.js';
import { COMMANDS } from './commands/index.js';
import { commandHelp, generalHelp } from './commands/help.js';
import { chooseDatabase, openExisting } from './database.js';
import { CliError, EXIT, toFailure, usageError, type ExitCode } from './errors.js';

/** The world the CLI runs in; `main` passes the process's. */
export interface CliEnvironment {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
}

/**
 * Runs one command line (without `node` and the script) and returns the exit
 * code. Never throws: every failure becomes one line on stderr (a JSON object
 * with `--json`) and an exit code from {@link EXIT}.
 */
export async function runCli(argv: readonly string[], io: CliEnvironment): Promise<ExitCode> {
  const json = argv.includes('--json');
  try {
    return (await dispatch(argv, io)) ?? EXIT.ok;
  } catch (error) {
    const failure = toFailure(error);
    io.stderr.write(
      json
        ? JSON.stringify({ ok: false, error: failure.code, message: failure.message }) + '\n'
        : `taskflow: ${failure.code === 'usage' ? '' : `${failure.code}: `}${failure.message}\n`,
    );
    return failure.exitCode;
  }
}

async function dispatch(argv: readonly string[], io: CliEnvironment): Promise<ExitCode | void> {
  const { command: name, rest } = splitCommand(argv);
  if (name === undefined) {
    if (rest.includes('--version') || rest.includes('-V')) {
      io.stdout.write(`taskflow ${packageVersion()}\n`);
      return;
    }
    // A bare `taskflow` (or `taskflow --help`) is a request for help.
    if (rest.length === 0 || rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(generalHelp(COMMANDS));
      return;
    }
    throw usageError('missing command: run `taskflow help` for the list');
  }
  if (name === '') throw emptyArgument('taskflow', 'the command');
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw usageError(`unknown command "${name}": run \`taskflow help\` for the list`);
  const { values, positionals } = parseCommandArgs(command.name, rest, command.options);
  if (values.help === true) {
    io.stdout.write(command.name === 'help' ? generalHelp(COMMANDS) : commandHelp(command));
    return;
  }
  checkPositionals(command, positionals);
  const json = values.json === true;
  if (!command.usesDatabase) {
    await command.run({ args: positionals, values, json, stdout: io.stdout, commands: COMMANDS });
    return;
  }
  const database = chooseDatabase(stringOption(values, 'db'), io.env);
  // Options derived from arguments are checked before the database is touched.
  const options = command.taskflowOptions?.(values) ?? {};
  const { tf, readonly, where } = await openExisting(database, options);
  try {
    if (readonly && command.readsOnly !== true) {
      throw new CliError('storage', `${command.name}: ${where} is read-only for this user; list, show and events still work`, EXIT.storage);
    }
    const code = await command.run({ tf, args: positionals, values, json, stdout: io.stdout });
    return typeof code === 'number' ? (code as ExitCode) : undefined;
  } finally {
    await tf.close();
  }
}

function checkPositionals(command: Command, positionals: readonly string[]): void {
  const required = command.positionals;
  const optional = command.optionalPositionals ?? [];
  for (const [i, value] of positionals.entries()) {
    if (value.trim() === '' && i < required.length + optional.length) throw emptyArgument(command.name, `<${[...required, ...optional][i]}>`);
  }
  if (positionals.length < required.length) {
    const missing = required.slice(positionals.length).map((p) => `<${p}>`).join(' ');
    throw usageError(`${command.name}: missing ${missing} (usage: taskflow ${command.usage})`);
  }
  if (positionals.length > required.length + optional.length) {
    const extra = positionals.slice(required.length + optional.length).map((p) => JSON.stringify(p)).join(' ');
    throw usageError(`${command.name}: unexpected argument ${extra} (usage: taskflow ${command.usage})`);
  }
}

let version: string | undefined;

/** This package's version, from its package.json (two folders up, in src/ and in dist/ alike). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

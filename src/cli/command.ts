import type { Taskflow, TaskflowOptions } from '../runtime/taskflow.js';
import type { OptionSpec, OptionValues } from './args.js';

/** Where a command writes. Tests and `main` pass the process streams. */
export interface Output {
  write(text: string): void;
}

/** What a command gets to do its work. */
export interface CommandContext {
  /** The runtime over the chosen database; present when the command declares `usesDatabase`. */
  tf: Taskflow;
  /** Positional arguments, already counted against the command's `positionals`. */
  args: string[];
  values: OptionValues;
  /** `--json`: print the command's stable JSON shape instead of text for people. */
  json: boolean;
  stdout: Output;
}

/** Context of a command that needs no database (`help`). */
export type OfflineContext = Omit<CommandContext, 'tf'> & { commands: readonly Command[] };

interface CommandBase {
  name: string;
  /** One line for the command list in `taskflow help`. */
  summary: string;
  /** The synopsis after `taskflow`, such as `show <id>`. */
  usage: string;
  /** Longer help: option descriptions, semantics, examples. */
  details: string;
  /** Names of required positional arguments, in order. */
  positionals: readonly string[];
  /** Names of optional positional arguments that may follow the required ones. */
  optionalPositionals?: readonly string[];
  options: OptionSpec;
}

/** A command over the database. */
export interface DatabaseCommand extends CommandBase {
  usesDatabase: true;
  /** True when the command never writes, so it also runs on a database this user can only read. */
  readsOnly?: boolean;
  /** Runtime options the command's arguments decide, such as the inbox retention of `deliver`. */
  taskflowOptions?(values: OptionValues): Partial<TaskflowOptions>;
  /** Resolves with nothing (exit 0) or with the exit code to end with, as `doctor` does when it finds trouble. */
  run(context: CommandContext): Promise<void | number>;
}

/** A command that needs no database. */
export interface OfflineCommand extends CommandBase {
  usesDatabase: false;
  run(context: OfflineContext): Promise<void>;
}

export type Command = DatabaseCommand | OfflineCommand;

/** Writes `value` as indented JSON with a trailing newline: the `--json` output of every command. */
export function writeJson(out: Output, value: unknown): void {
  out.write(JSON.stringify(value, null, 2) + '\n');
}

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FLOW_STATUSES, isFlowStatus, type FlowStatus, type JsonObject } from '../runtime/flow.js';
import { usageError, type CliError } from './errors.js';

/** Option definitions in `node:util` parseArgs form. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Options every command accepts. */
export const GLOBAL_OPTIONS = {
  db: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec;

/** Values of parsed options: strings and booleans only (no multiples). */
export type OptionValues = Record<string, string | boolean | undefined>;

/** A command line split into its command word and the rest. */
export interface SplitCommandLine {
  /** The command word, or undefined when there is none. */
  command: string | undefined;
  /** Every argument but the command word, in order. */
  rest: string[];
}

/**
 * Finds the command word: the first argument that is neither an option nor the
 * value of a global option taking one (`--db path list` names `list`).
 */
export function splitCommand(argv: readonly string[]): SplitCommandLine {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (arg === '--db') {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    return { command: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { command: undefined, rest: [...argv] };
}

/** Parsed arguments of one command. */
export interface ParsedArgs {
  values: OptionValues;
  positionals: string[];
}

/**
 * Parses the arguments after the command word, strictly: an unknown option, a
 * missing option value or a value given to a flag is a usage error (exit 2).
 */
export function parseCommandArgs(command: string, args: readonly string[], options: OptionSpec): ParsedArgs {
  const spec = { ...GLOBAL_OPTIONS, ...options };
  let parsed: ParsedArgs;
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: spec, strict: true, allowPositionals: true });
    parsed = { values: values as OptionValues, positionals };
  } catch (error) {
    throw usageError(`${command}: ${describeParseError(error, spec)} (run \`taskflow help ${command}\`)`);
  }
  // An empty value is never meaningful: one message for every option.
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === 'string' && value.trim() === '') throw emptyArgument(command, `--${name}`);
  }
  return parsed;
}

/** The usage error of an empty argument, option or positional: `list: --owner must not be empty`. */
export function emptyArgument(command: string, what: string): CliError {
  return usageError(`${command}: ${what} must not be empty`);
}

/** `node:util` parseArgs failures, said in the CLI's words: which option, and what is wrong with it. */
function describeParseError(error: unknown, spec: OptionSpec): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(-[^']*)'/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option.split(' ')[0]}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const name = option.split(/[ ,]+/).find((part) => part.startsWith('--')) ?? option;
    const takesValue = spec[name.replace(/^--/, '')]?.type === 'string';
    return takesValue ? `${name} needs a value` : `${name} takes no value`;
  }
  return 'cannot read the command line';
}

/** Reads a string option, or undefined when absent. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** Parses a JSON option value (any JSON); bad JSON is a usage error naming the option. */
export function parseJsonOption(text: string, option: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : '';
    const position = /position (\d+)/.exec(reason)?.[1];
    const where = position !== undefined ? ` (at character ${Number(position) + 1})` : /end of JSON/.test(reason) ? ' (it ends too early)' : '';
    throw usageError(`--${option} is not valid JSON${where}; quote it for the shell, such as --${option} '{"amount": 120}'`);
  }
}

/** Parses a JSON option that must be an object, such as a state patch. */
export function parseJsonObjectOption(text: string, option: string): JsonObject {
  const value = parseJsonOption(text, option);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw usageError(`--${option} must be a JSON object, such as '{"approved": true}'`);
  }
  return value as JsonObject;
}

/** Parses `--status`, which must be a flow status. */
export function parseStatusOption(text: string): FlowStatus {
  if (!isFlowStatus(text)) throw usageError(`--status must be one of ${FLOW_STATUSES.join(', ')}, got "${text}"`);
  return text;
}

/** Parses a whole number in `[min, max]` for option `name`. */
export function parseIntegerOption(text: string, name: string, min: number, max: number): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw usageError(`--${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

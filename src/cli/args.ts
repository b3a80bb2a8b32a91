import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FLOW_STATUSES, isFlowStatus, type FlowStatus, type JsonObject } from '../runtime/flow.js';
import { usageError } from './errors.js';

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
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: { ...GLOBAL_OPTIONS, ...options },
      strict: true,
      allowPositionals: true,
    });
    return { values: values as OptionValues, positionals };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const unknown = /^Unknown option '([^']+)'/.exec(message);
    if (unknown) throw usageError(`${command}: unknown option ${unknown[1]} (run \`taskflow help ${command}\`)`);
    // Other parseArgs messages (a missing value, a value given to a flag) are one sentence about the option.
    throw usageError(`${command}: ${message.split('\n')[0] ?? message}`);
  }
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
    const reason = error instanceof Error ? error.message : String(error);
    throw usageError(`--${option} is not valid JSON: ${reason}`);
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

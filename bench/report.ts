import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A cell of a result table. Numbers are printed as they are; format them first when it matters. */
export type Cell = string | number;
export type Row = Record<string, Cell>;

/** What every benchmark returns: a titled table, its configuration, and what to read from it. */
export interface BenchResult {
  title: string;
  rows: Row[];
  /** One line each: configuration, goals, how the numbers were measured. */
  notes?: string[];
}

/** Which way a headline metric improves: rates up, times down. */
export type Better = 'higher' | 'lower';

/** One number a benchmark stands on, compared with a baseline commit by `npm run bench -- --against=<ref>`. */
export interface Metric {
  /** What was measured, with its configuration: "SQLite FULL, 32 in flight: flows/s". */
  name: string;
  value: number;
  /** How to print the value: a duration in ms (also µs), or a plain number (a rate, a count). */
  unit: 'ms' | 'number';
  better: Better;
}

/**
 * A benchmark's headline: a few metrics measured the same way on any commit, through
 * the public API only, so the `--against` harness can run one file over two src/ trees.
 */
export interface Headline {
  title: string;
  metrics: Metric[];
  /** How the metrics were measured, one line each. */
  notes: string[];
}

/** Options every benchmark receives from `bench/run.ts`. */
export interface BenchOptions {
  /** Smaller sizes and shorter runs, for a smoke test (`--quick`). */
  quick: boolean;
  /** Progress lines go here (stderr), never into the tables. */
  log: (line: string) => void;
}

/** Renders one result as a markdown section. Accepts rows of objects or, from other authors, arrays. */
export function toMarkdown(result: { title: string; rows: unknown[]; notes?: string[] }): string {
  const lines = [`## ${result.title}`, ''];
  const rows = result.rows;
  let header: string[] = [];
  let body: string[][] = [];
  if (rows.length > 0 && Array.isArray(rows[0])) {
    header = (rows[0] as unknown[]).map(String);
    body = rows.slice(1).map((r) => (r as unknown[]).map(String));
  } else {
    for (const row of rows as Record<string, unknown>[]) for (const key of Object.keys(row)) if (!header.includes(key)) header.push(key);
    body = (rows as Record<string, unknown>[]).map((row) => header.map((key) => (row[key] === undefined ? '' : String(row[key]))));
  }
  if (header.length > 0) {
    // Columns of numbers are right-aligned, columns of words left-aligned.
    const numeric = header.map((_, i) => body.every((cells) => cells[i] === '' || /^[-+]?[\d.,]+/.test(cells[i] ?? '')));
    lines.push(`| ${header.join(' | ')} |`, `|${numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`);
    for (const cells of body) lines.push(`| ${cells.join(' | ')} |`);
    lines.push('');
  }
  for (const note of result.notes ?? []) lines.push(`- ${note}`);
  if (result.notes?.length) lines.push('');
  return lines.join('\n');
}

/** The value at quantile `q` (0..1) of `values`, nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** `1234.5` → `1,235`; small numbers keep `digits` decimals. */
export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A duration in ms, with a unit that keeps about three significant digits. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0 ms';
  if (value < 0) return `-${ms(-value)}`;
  if (value < 0.001) return `${num(value * 1e6, 0)} ns`;
  if (value < 1) return `${num(value * 1000, value < 0.01 ? 2 : value < 0.1 ? 1 : 0)} µs`;
  if (value < 1000) return `${num(value, value < 10 ? 2 : value < 100 ? 1 : 0)} ms`;
  return `${num(value / 1000, 2)} s`;
}

/** `0.8123` → `0.81×`. */
export function ratio(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return `${value >= 0.1 ? value.toFixed(2) : value.toPrecision(2)}×`;
}

export function mib(bytes: number): string {
  return `${num(bytes / 1024 / 1024, 1)} MiB`;
}

/** `met` / `NOT met`, for the goal column. */
export function goal(met: boolean): string {
  return met ? 'met' : 'NOT met';
}

/** A fresh folder for database files; `cleanup()` removes it. */
export function tempFolder(prefix: string): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `taskflow-bench-${prefix}-`));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const sleep = (delay: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, delay));

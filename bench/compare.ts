import { ms, num, ratio, toMarkdown, type Headline, type Metric, type Row } from './report.js';

/** How much worse than the baseline a metric may be and still pass: "no row more than 5% slower". */
export const TOLERANCE = 0.05;

/** Which side runs first in each round: A B, then B A, and so on (A B B A A B …), so drift lands on both alike. */
export function roundOrder(round: number): readonly ['baseline', 'current'] | readonly ['current', 'baseline'] {
  return round % 2 === 0 ? (['baseline', 'current'] as const) : (['current', 'baseline'] as const);
}

/** The middle value; the mean of the middle two for an even count. */
export function middle(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const half = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
}

/** How much worse `current` is than `baseline` (0.03: 3% worse; negative: better), in the metric's own direction. */
export function worseBy(metric: Pick<Metric, 'better'>, baseline: number, current: number): number {
  return metric.better === 'higher' ? 1 - current / baseline : current / baseline - 1;
}

/** One side's runs of a benchmark, in the order they ran. */
export interface Side {
  /** The column heading: "8ac29ed (baseline)". */
  label: string;
  runs: Headline[];
}

function format(metric: Metric, value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (metric.unit === 'ms') return ms(value);
  return num(value, Math.abs(value) < 10 ? 2 : Math.abs(value) < 100 ? 1 : 0);
}

const percent = (value: number): string => `${(value * 100).toFixed(1)}%`;

/** The spread of a side's rounds: (max − min) ÷ median. */
function spread(values: readonly number[]): string {
  if (values.length < 2) return '–';
  return percent((Math.max(...values) - Math.min(...values)) / middle(values));
}

/**
 * One comparison table: each headline metric's median round on the baseline and on
 * this tree, their ratio, which way is better, and whether this tree stays within
 * {@link TOLERANCE} of the baseline. Metrics are matched by name; one missing on a
 * side (a server not reachable in some run) shows "–" and counts as not met.
 */
export function comparison(baseline: Side, current: Side): { markdown: string; met: number; rows: number } {
  const first = current.runs[0] ?? baseline.runs[0]!;
  const names: Metric[] = [];
  for (const run of [...current.runs, ...baseline.runs]) for (const metric of run.metrics) if (!names.some((m) => m.name === metric.name)) names.push(metric);
  const valuesOf = (side: Side, name: string) => side.runs.flatMap((run) => run.metrics.filter((m) => m.name === name).map((m) => m.value)).filter(Number.isFinite);
  let met = 0;
  const rows: Row[] = names.map((metric) => {
    const base = valuesOf(baseline, metric.name);
    const here = valuesOf(current, metric.name);
    const b = base.length ? middle(base) : Number.NaN;
    const c = here.length ? middle(here) : Number.NaN;
    const worse = worseBy(metric, b, c);
    const within = Number.isFinite(worse) && worse <= TOLERANCE;
    if (within) met++;
    return {
      metric: metric.name,
      better: metric.better,
      [baseline.label]: format(metric, b),
      [current.label]: format(metric, c),
      'this ÷ baseline': ratio(c / b),
      change: !Number.isFinite(worse) ? '–' : worse > 0 ? `${percent(worse)} worse` : `${percent(-worse)} better`,
      'within 5%': within ? 'met' : 'NOT met',
      'spread of rounds (baseline; this)': `${spread(base)}; ${spread(here)}`,
    };
  });
  const runs = Math.max(baseline.runs.length, current.runs.length);
  const markdown = toMarkdown({
    title: `${first.title}: ${current.label} against ${baseline.label}`,
    rows,
    notes: [
      ...first.notes,
      `${runs} round(s) a side, interleaved (${Array.from({ length: runs }, (_, r) => roundOrder(r).map((s) => (s === 'baseline' ? 'B' : 'T')).join(' ')).join(' ')}; B: baseline, T: this tree), each run a fresh Node.js process; each cell is the median of its side's rounds.`,
      `Within 5%: this tree no more than ${percent(TOLERANCE)} worse than the baseline, in the metric's "better" direction (a rate ≥ 0.95× the baseline, a time ≤ 1.05×). A spread of rounds wider than 5% says the machine's noise is larger than the tolerance: re-run before reading a verdict. ${met} of ${rows.length} met.`,
    ],
  });
  return { markdown, met, rows: rows.length };
}

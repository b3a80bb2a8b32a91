/**
 * `npm run torture [-- --short] [--only=<text>] [--seed=<n>]`: every torture
 * scenario, one after another, then the table of what happened. Exits 1 when
 * any invariant was broken.
 */
import { SCENARIOS, SIZES, tortureTable, type TortureRow } from './scenarios.js';

const args = process.argv.slice(2);
const size = args.includes('--short') ? SIZES.short : SIZES.full;
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const seed = Number(args.find((a) => a.startsWith('--seed='))?.slice('--seed='.length) ?? Date.now() % 1_000_000);

const rows: TortureRow[] = [];
for (const scenario of SCENARIOS.filter((s) => !only || s.name.includes(only))) {
  process.stderr.write(`torture: ${scenario.name} (seed ${seed})\n`);
  const row = await scenario.run(size, seed);
  rows.push(row);
  if ('problems' in row) for (const problem of row.problems) process.stderr.write(`  ${problem}\n`);
}
process.stdout.write(`\n${tortureTable(rows)}\n\nseed ${seed}\n`);
const failed = rows.filter((row) => 'ok' in row && !row.ok).length;
process.exit(failed === 0 ? 0 : 1);

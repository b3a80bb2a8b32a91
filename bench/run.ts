/**
 * `npm run bench [-- options]`: every benchmark with its baseline measured in the
 * same run, printed as markdown and written to bench/RESULTS.md. Each benchmark
 * runs in a Node.js process of its own, so one's heap (a million rows scanned)
 * and garbage collection never land in another's measurement.
 *
 *   --quick            smaller sizes and shorter runs (a smoke test, not for publishing)
 *   --only=a,b         run only these: transitions, tick, lateness, burst, restart, growth, event-loop, event-resume, any-of, start-park, recurring, ui, ui-live, ui-pg, pg-burst, pg-latency, pg-restart, pg-scale, nats, nats-covering, nats-throughput
 *   --write            write bench/RESULTS.md even for a quick or partial run
 *   --pg               include the inspector on PostgreSQL (ui-pg) on postgres://postgres@127.0.0.1:5432
 *                      (or TASKFLOW_BENCH_PG, an admin URL: the benchmark creates and drops its database)
 *   --nats / --no-nats include the NATS benchmarks (bench/nats*.ts); default: when a
 *                      nats-server binary is found (NATS_SERVER_BIN, the PATH, /usr/sbin)
 *
 * `npm run bench -- --against=<ref> [--only=a,b] [--rounds=N] [--quick] [--write]`: this
 * tree beside another commit (a branch, a tag, a hash: `--against=main`), measured in
 * the same run. The ref's files are written to a temp folder (`git archive`), this
 * tree's node_modules linked in, and this tree's bench/ copied over the ref's, so both
 * sides run one harness, each over its own src/ (bench/baseline-tree.ts). Each
 * benchmark below then runs its headline (a few metrics, public API only) on both
 * sides, one Node.js process a run, interleaved A B, B A, … for `--rounds` rounds
 * (default 4, 2 with --quick), and prints one table: the median round of each side,
 * their ratio, which way is better, "within 5%: met / NOT met" (bench/compare.ts), and
 * the spread of each side's rounds: wider than 5%, the machine was too noisy for a verdict.
 * Compared: transitions, start-park, burst, pg-burst, event-resume, event-loop,
 * nats-throughput (PostgreSQL and NATS ones skipped when their server is missing).
 * A full run writes bench/COMPARISON.md; a quick, partial or re-rounded one only
 * prints, unless --write. Without --against, nothing of this runs.
 *
 * A file a headline runs from imports only src/'s public entries (src/index.ts,
 * src/postgres.ts): it runs over the ref's src/ too.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { findNatsServer } from '../test/support/nats-server.js';
import { describeWorkingTree, prepareBaseline, type BaselineTree } from './baseline-tree.js';
import { comparison, roundOrder } from './compare.js';
import { pgReachable } from './pg-support.js';
import { ms, toMarkdown, type BenchOptions, type Headline } from './report.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const RESULT_MARK = 'BENCH-RESULT ';

type Outcome = { title: string; rows: unknown[]; notes?: string[] };
type Bench = (options: BenchOptions) => Promise<Outcome>;
type HeadlineBench = (options: BenchOptions) => Promise<Headline>;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const childOf = args.find((a) => a.startsWith('--child='))?.slice('--child='.length);
const headlineChild = args.includes('--headline');
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const against = args.find((a) => a.startsWith('--against='))?.slice('--against='.length);
const roundsArg = args.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length);
const nats = args.includes('--nats') || (!args.includes('--no-nats') && findNatsServer() !== undefined);
const log = (line: string) => process.stderr.write(`${line}\n`);

/** The NATS benchmark is another author's file: loaded only when present, typed only by its contract. */
function natsFiles(): string[] {
  const files = readdirSync(HERE).filter((f) => /^nats.*\.ts$/.test(f) && !f.endsWith('.d.ts'));
  return files.sort((a, b) => (a === 'nats.ts' ? -1 : b === 'nats.ts' ? 1 : a.localeCompare(b)));
}

async function loadBench(name: string): Promise<Bench> {
  switch (name) {
    case 'transitions':
      return (await import('./transitions.js')).benchTransitions;
    case 'tick':
      return (await import('./tick.js')).benchTick;
    case 'lateness':
      return (await import('./lateness.js')).benchLateness;
    case 'burst':
      return (await import('./burst.js')).benchBurst;
    case 'restart':
      return (await import('./restart.js')).benchRestart;
    case 'growth':
      return (await import('./growth.js')).benchGrowth;
    case 'any-of':
      return (await import('./any-of.js')).benchAnyOf;
    case 'start-park':
      return (await import('./start-park.js')).benchStartPark;
    case 'recurring':
      return (await import('./recurring.js')).benchRecurring;
    case 'ui':
      return (await import('./ui.js')).benchUi;
    case 'ui-pg':
      return (await import('./ui.js')).benchUiPg;
    case 'ui-live':
      return (await import('./ui.js')).benchUiLive;
    case 'pg-burst':
      return (await import('./pg-burst.js')).benchPgBurst;
    case 'pg-latency':
      return (await import('./pg-latency.js')).benchPgLatency;
    case 'pg-restart':
      return (await import('./pg-restart.js')).benchPgRestart;
    case 'pg-scale':
      return (await import('./pg-scale.js')).benchPgScale;
    case 'event-loop':
      return (await import('./event-loop.js')).benchEventLoop;
    case 'event-resume':
      return (await import('./event-resume.js')).benchEventResume;
    case 'nats-covering':
      return (await import('./nats-covering.js')).benchNatsCovering;
    case 'nats-throughput':
      return (await import('./nats-throughput.js')).benchNatsThroughput;
    case 'nats':
      for (const file of natsFiles()) {
        const module = (await import(pathToFileURL(join(HERE, file)).href)) as { benchNats?: () => Promise<Outcome> };
        if (typeof module.benchNats === 'function') return () => module.benchNats!();
      }
      throw new Error(`no benchNats() export in bench/nats*.ts (${natsFiles().join(', ') || 'no such file'})`);
    default:
      throw new Error(`unknown benchmark ${name}`);
  }
}

/**
 * The benchmarks `--against` compares, in order, each by its headline: a few
 * metrics measured through the public API only, so that one file runs over both
 * src/ trees. Their files import nothing from src/ but its public entries.
 */
const COMPARED = ['transitions', 'start-park', 'burst', 'pg-burst', 'event-resume', 'event-loop', 'nats-throughput'] as const;

async function loadHeadline(name: string): Promise<HeadlineBench> {
  switch (name) {
    case 'transitions':
      return (await import('./transitions.js')).headlineTransitions;
    case 'start-park':
      return (await import('./start-park.js')).headlineStartPark;
    case 'burst':
      return (await import('./burst.js')).headlineBurst;
    case 'pg-burst':
      return (await import('./pg-burst.js')).headlinePgBurst;
    case 'event-resume':
      return (await import('./event-resume.js')).headlineEventResume;
    case 'event-loop':
      return (await import('./event-loop.js')).headlineEventLoop;
    case 'nats-throughput':
      return (await import('./nats-throughput.js')).headlineNatsThroughput;
    default:
      throw new Error(`no headline for ${name}; --against compares ${COMPARED.join(', ')}`);
  }
}

/** Child mode: run one benchmark (or its headline) and hand its result to the parent on stdout. */
async function runChild(name: string): Promise<void> {
  const result = headlineChild ? await (await loadHeadline(name))({ quick, log }) : await (await loadBench(name))({ quick, log });
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
  // A benchmark may leave handles (a NATS connection) open; its result is out.
  process.exit(0);
}

/** Where a child runs: this tree's runner, or the baseline's copy of it in its own folder. */
interface ChildTree {
  script: string;
  cwd?: string;
}

/** Children running now, ended if the runner is interrupted. */
const children = new Set<ChildProcess>();

function runInChild<T = Outcome>(name: string, tree: ChildTree = { script: SELF }, extra: string[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', tree.script, `--child=${name}`, ...extra, ...(quick ? ['--quick'] : [])],
      { maxBuffer: 16 << 20, ...(tree.cwd ? { cwd: tree.cwd } : {}) },
      (error, stdout) => {
        children.delete(child);
        const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
        if (line) resolve(JSON.parse(line.slice(RESULT_MARK.length)) as T);
        else reject(error ?? new Error(`benchmark ${name} printed no result`));
      },
    );
    children.add(child);
    child.stderr?.pipe(process.stderr);
  });
}

function machine(): string {
  const sqliteVersion = (new Database(':memory:').prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  return (
    `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, SQLite ${sqliteVersion}, ${process.platform}, ` +
    `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the start`
  );
}

const failure = (name: string, error: unknown): string =>
  `## ${name}: FAILED\n\n\`\`\`\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n\`\`\`\n`;

/** `--against=<ref>`: each compared benchmark's headline on <ref> and on this tree, interleaved, in one table. */
async function mainAgainst(ref: string): Promise<void> {
  const unknown = only?.filter((name) => !(COMPARED as readonly string[]).includes(name)) ?? [];
  if (unknown.length > 0) throw new Error(`--against compares ${COMPARED.join(', ')}; not ${unknown.join(', ')}`);
  const rounds = roundsArg === undefined ? (quick ? 2 : 4) : Number(roundsArg);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds takes a whole number ≥ 1, got ${roundsArg}`);
  const pg = await pgReachable();
  const skipped = (name: string): string | undefined => {
    if (name === 'nats-throughput' && !nats) return 'no nats-server binary (NATS_SERVER_BIN, the PATH, /usr/sbin), or --no-nats';
    if (name === 'pg-burst' && !pg) return 'PostgreSQL not reachable';
    return undefined;
  };
  const selected = COMPARED.filter((name) => !only || only.includes(name)).filter((name) => {
    const why = skipped(name);
    if (why) log(`--against: ${name} skipped, ${why}`);
    return !why;
  });
  const started = performance.now();
  const here = describeWorkingTree(ROOT);
  log(`--against=${ref}: preparing the baseline tree`);
  const baseline: BaselineTree = prepareBaseline(ROOT, ref);
  const removeBaseline = () => baseline.dispose();
  const interrupted = () => {
    for (const child of children) child.kill('SIGTERM');
    removeBaseline();
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const labels = { baseline: `${baseline.commit} (baseline)`, current: `this tree (${here.commit}${here.dirty ? ' + changes' : ''})` };
  const sections = [
    [
      `# nexo-taskflow: this tree against ${ref}`,
      '',
      `Measured ${new Date().toISOString()} by \`npm run bench -- ${args.join(' ')}\` on ${machine()}. ` +
        `Baseline: ${ref} = ${baseline.commit}, its src/ run by this tree's bench/ (copied over it, node_modules linked). This tree: ${here.commit}${here.dirty ? ' with changes not committed in src/ or bench/' : ''}. ` +
        `${rounds} round(s) a benchmark, the two sides interleaved, each run a Node.js process of its own.`,
      quick ? '\n**Quick run: reduced sizes, not for publishing.**' : '',
      '',
    ].join('\n'),
  ];
  let failed = 0;
  let met = 0;
  let total = 0;
  try {
    for (const name of selected) {
      const t = performance.now();
      log(`== ${name} against ${baseline.commit}, ${rounds} round(s)`);
      const runs = { baseline: [] as Headline[], current: [] as Headline[] };
      try {
        for (let round = 0; round < rounds; round++) {
          for (const side of roundOrder(round)) {
            log(`-- ${name}, round ${round + 1}: ${labels[side]}`);
            const tree = side === 'baseline' ? { script: join(baseline.dir, 'bench', 'run.ts'), cwd: baseline.dir } : { script: SELF };
            runs[side].push(await runInChild<Headline>(name, tree, ['--headline']));
          }
        }
        const table = comparison({ label: labels.baseline, runs: runs.baseline }, { label: labels.current, runs: runs.current });
        met += table.met;
        total += table.rows;
        sections.push(table.markdown);
        process.stdout.write(`${table.markdown}\n`);
      } catch (error) {
        failed++;
        sections.push(failure(name, error));
        process.stdout.write(`${failure(name, error)}\n`);
      }
      log(`== ${name} took ${ms(performance.now() - t)}`);
    }
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    removeBaseline();
  }
  const summary = `${met} of ${total} rows within 5% of ${baseline.commit}${failed ? `; ${failed} benchmark(s) FAILED` : ''}. Total time: ${ms(performance.now() - started)}.\n`;
  sections.push(summary);
  process.stdout.write(`${summary}\n`);
  if ((quick || only || roundsArg !== undefined) && !args.includes('--write')) {
    log('not writing bench/COMPARISON.md for a quick, partial or re-rounded run (add --write to force)');
  } else {
    writeFileSync(join(HERE, 'COMPARISON.md'), sections.join('\n'));
    log('wrote bench/COMPARISON.md');
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

async function main(): Promise<void> {
  const names = ['transitions', 'tick', 'lateness', 'burst', 'restart', 'growth', 'event-loop', 'event-resume', 'any-of', 'start-park', 'recurring', 'ui', 'ui-live', 'pg-burst', 'pg-latency', 'pg-restart', 'pg-scale'];
  // The inspector on PostgreSQL needs a server: TASKFLOW_BENCH_PG, or --pg for the local default.
  if (args.includes('--pg') || process.env.TASKFLOW_BENCH_PG || only?.includes('ui-pg')) names.push('ui-pg');
  if (nats) {
    if (natsFiles().length > 0) names.push('nats', 'nats-covering', 'nats-throughput');
    else if (args.includes('--nats')) log('--nats: no bench/nats*.ts yet; skipped');
  }
  const selected = names.filter((name) => !only || only.includes(name));
  const header = [
    '# nexo-taskflow benchmarks',
    '',
    `Measured ${new Date().toISOString()} by \`npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}\` on ${machine()}. ` +
      'A shared, noisy machine: read the ratios, each measured beside its baseline in the same run. ' +
      'Each benchmark runs in its own Node.js process. ' +
      'To compare this tree with another commit, `npm run bench -- --against=<ref>` runs the headline metrics of transitions, start-park, the bursts, event resume, the event loop and NATS throughput on both, interleaved, and prints each beside the other with its ratio and a "within 5%" verdict (bench/COMPARISON.md; usage at the top of bench/run.ts).',
    quick ? '\n**Quick run: reduced sizes, not for publishing.**' : '',
    '',
  ].join('\n');

  const sections: string[] = [header];
  let failed = 0;
  const started = performance.now();
  for (const name of selected) {
    const t = performance.now();
    log(`== ${name}`);
    try {
      const markdown = toMarkdown(await runInChild(name));
      sections.push(markdown);
      process.stdout.write(`${markdown}\n`);
    } catch (error) {
      failed++;
      const message = failure(name, error);
      sections.push(message);
      process.stdout.write(`${message}\n`);
    }
    log(`== ${name} took ${ms(performance.now() - t)}`);
  }
  sections.push(`Total benchmark time: ${ms(performance.now() - started)}.\n`);
  // A quick or partial run prints only, so it never replaces the published full results.
  if ((quick || only) && !args.includes('--write')) {
    log(`not writing bench/RESULTS.md for a quick or partial run (add --write to force); took ${ms(performance.now() - started)}`);
  } else {
    writeFileSync(join(HERE, 'RESULTS.md'), sections.join('\n'));
    log(`wrote bench/RESULTS.md (${ms(performance.now() - started)})`);
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

await (childOf ? runChild(childOf) : against !== undefined ? mainAgainst(against) : main());

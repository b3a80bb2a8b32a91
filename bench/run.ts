/**
 * `npm run bench [-- options]`: every benchmark with its baseline measured in the
 * same run, printed as markdown and written to bench/RESULTS.md. Each benchmark
 * runs in a Node.js process of its own, so one's heap (a million rows scanned)
 * and garbage collection never land in another's measurement.
 *
 *   --quick            smaller sizes and shorter runs (a smoke test, not for publishing)
 *   --only=a,b         run only these: transitions, tick, lateness, burst, restart, growth, event-loop, any-of, start-park, recurring, ui, ui-live, ui-pg, pg-burst, pg-latency, pg-restart, pg-scale, nats, nats-covering, nats-throughput
 *   --write            write bench/RESULTS.md even for a quick or partial run
 *   --pg               include the inspector on PostgreSQL (ui-pg) on postgres://postgres@127.0.0.1:5432
 *                      (or TASKFLOW_BENCH_PG, an admin URL: the benchmark creates and drops its database)
 *   --nats / --no-nats include the NATS benchmarks (bench/nats*.ts); default: when a
 *                      nats-server binary is found (NATS_SERVER_BIN, the PATH, /usr/sbin)
 */
import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { findNatsServer } from '../test/support/nats-server.js';
import { ms, toMarkdown, type BenchOptions } from './report.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const RESULT_MARK = 'BENCH-RESULT ';

type Outcome = { title: string; rows: unknown[]; notes?: string[] };
type Bench = (options: BenchOptions) => Promise<Outcome>;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const childOf = args.find((a) => a.startsWith('--child='))?.slice('--child='.length);
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
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

/** Child mode: run one benchmark and hand its result to the parent on stdout. */
async function runChild(name: string): Promise<void> {
  const bench = await loadBench(name);
  const result = await bench({ quick, log });
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
  // A benchmark may leave handles (a NATS connection) open; its result is out.
  process.exit(0);
}

function runInChild(name: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', SELF, `--child=${name}`, ...(quick ? ['--quick'] : [])],
      { maxBuffer: 16 << 20 },
      (error, stdout) => {
        const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
        if (line) resolve(JSON.parse(line.slice(RESULT_MARK.length)) as Outcome);
        else reject(error ?? new Error(`benchmark ${name} printed no result`));
      },
    );
    child.stderr?.pipe(process.stderr);
  });
}

async function main(): Promise<void> {
  const names = ['transitions', 'tick', 'lateness', 'burst', 'restart', 'growth', 'event-loop', 'any-of', 'start-park', 'recurring', 'ui', 'ui-live', 'pg-burst', 'pg-latency', 'pg-restart', 'pg-scale'];
  // The inspector on PostgreSQL needs a server: TASKFLOW_BENCH_PG, or --pg for the local default.
  if (args.includes('--pg') || process.env.TASKFLOW_BENCH_PG || only?.includes('ui-pg')) names.push('ui-pg');
  if (nats) {
    if (natsFiles().length > 0) names.push('nats', 'nats-covering', 'nats-throughput');
    else if (args.includes('--nats')) log('--nats: no bench/nats*.ts yet; skipped');
  }
  const selected = names.filter((name) => !only || only.includes(name));
  const sqliteVersion = (new Database(':memory:').prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  const header = [
    '# nexo-taskflow benchmarks',
    '',
    `Measured ${new Date().toISOString()} by \`npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}\` on ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, SQLite ${sqliteVersion}, ${process.platform}, ` +
      `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the start. ` +
      'A shared, noisy machine: read the ratios, each measured beside its baseline in the same run. ' +
      'Each benchmark runs in its own Node.js process.',
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
      const message = `## ${name}: FAILED\n\n\`\`\`\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n\`\`\`\n`;
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

await (childOf ? runChild(childOf) : main());

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openTaskflow } from '../src/index.js';
import { openPgStore, seedPgWaitingFlows, tempPgDatabase } from './pg-support.js';
import { ms, num, ratio, sleep, type BenchOptions, type BenchResult } from './report.js';

const CHILD = fileURLToPath(new URL('./pg-scale-child.ts', import.meta.url));

interface Progress {
  handled: number;
  first: number;
  last: number;
}

/** `processes` engine processes on one database, `count` timers due at one deadline: deadline → last onResume in any of them. */
async function shareBurst(processes: number, count: number): Promise<{ lastMs: number; perProcess: number[] }> {
  const db = await tempPgDatabase('scale');
  const children: ChildProcess[] = [];
  try {
    // Migrated once, so the children start on a ready schema.
    await (await openTaskflow({ store: await openPgStore(db.url, 'batched'), tickInterval: '1h' })).close();
    const progress: Progress[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 0; i < processes; i++) {
      const child = fork(CHILD, [db.url], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      progress.push({ handled: 0, first: 0, last: 0 });
      ready.push(
        new Promise((resolve, reject) => {
          child.on('message', (message: Progress | { ready: true }) => {
            if ('ready' in message) resolve();
            else progress[i] = message;
          });
          child.on('exit', (code) => reject(new Error(`engine process ${i} exited (${code}) before it was ready`)));
        }),
      );
    }
    await Promise.all(ready);
    const deadline = Date.now() + 1_500;
    await seedPgWaitingFlows(db.url, count, { wakeAt: deadline });
    const until = deadline + 120_000;
    const total = () => progress.reduce((sum, p) => sum + p.handled, 0);
    while (total() < count && Date.now() < until) await sleep(50);
    await sleep(200);
    const stopped = children.map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of children) child.send('stop');
    await Promise.all(stopped);
    if (total() < count) throw new Error(`only ${total()} of ${count} flows reached onResume`);
    return { lastMs: Math.max(...progress.map((p) => p.last)) - deadline, perProcess: progress.map((p) => p.handled) };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
    await db.drop();
  }
}

export async function benchPgScale(options: BenchOptions): Promise<BenchResult> {
  const count = options.quick ? 2_000 : 10_000;
  const rows: BenchResult['rows'] = [];
  let one = 0;
  for (const processes of [1, 2, 4]) {
    const result = await shareBurst(processes, count);
    if (processes === 1) one = result.lastMs;
    options.log(`pg scale ${processes}: last onResume +${ms(result.lastMs)} (${result.perProcess.join(' / ')})`);
    rows.push({
      'engine processes': processes,
      'deadline → last onResume': ms(result.lastMs),
      'flows/s': num((count * 1000) / result.lastMs),
      'throughput ratio to 1 process': ratio(one / result.lastMs),
      'resumes handled per process': result.perProcess.map((n) => num(n)).join(' / '),
    });
  }
  return {
    title: `PostgreSQL scale-out: ${num(count)} timers due at once, shared by 1, 2 and 4 engine processes`,
    rows,
    notes: [
      'Each engine a child process (node --import tsx) with its own pool, all on one fresh database on the shared server; the flows are bulk-inserted after every engine listens, due 1.5 s later.',
      'Engines take disjoint batches of due flows (FOR UPDATE SKIP LOCKED) and claim what they resume in the same commit; each resume is delivered exactly once across them (the per-process counts add up to the total).',
      'Baseline: the 1-process row. On this 2-core machine the server and the engines share the cores, so more processes cannot add CPU: read the ratio as how well they share, not as capacity.',
    ],
  };
}

import { openTaskflow, WaitEngine } from '../src/index.js';
import { goal, ms, num, ratio, sleep, tempFolder, type BenchOptions, type BenchResult, type Headline } from './report.js';
import { rawConnectionAt, seedWaitingFlows } from './seed.js';

const GOAL_MS = 1_000;

/** Resumes `count` flows that are all due now with one `tick`; `batchSize` 1 is the one-transaction-per-flow baseline. */
async function resumeAll(count: number, synchronous: 'full' | 'normal', batchSize: number | undefined): Promise<number> {
  const folder = tempFolder('burst');
  try {
    const tf = await openTaskflow({ database: folder.path('burst.db'), synchronous, tickInterval: '1h' });
    const raw = rawConnectionAt(folder.path('burst.db'));
    const now = Date.now();
    seedWaitingFlows(raw, count, { now, eventEvery: 0, wakeAt: (i) => now - count + i });
    const engine = batchSize === undefined ? tf.engine : new WaitEngine({ store: tf.store, batchSize });
    const started = performance.now();
    const result = await engine.tick(now);
    const elapsed = performance.now() - started;
    if (result.resumed !== count) throw new Error(`tick resumed ${result.resumed} of ${count} flows`);
    const left = raw.prepare(`SELECT count(*) AS n FROM flows WHERE status = 'waiting'`).get() as { n: number };
    raw.close();
    if (left.n !== 0) throw new Error(`${left.n} flows still wait after the tick`);
    await tf.close();
    return elapsed;
  } finally {
    folder.cleanup();
  }
}

/** End to end: the engine is started, its host timer fires at the shared deadline, and every flow reaches onResume. */
export async function deliverAll(count: number): Promise<{ resumedMs: number; deliveredMs: number }> {
  const folder = tempFolder('burst-e2e');
  let handled = 0;
  let lastResumeTick = 0;
  let lastDelivered = 0;
  try {
    const tf = await openTaskflow({
      database: folder.path('burst.db'),
      tickInterval: '5s',
      onResume: (_flow, wake) => {
        handled++;
        lastResumeTick = Math.max(lastResumeTick, wake.at.getTime());
        lastDelivered = performance.timeOrigin + performance.now();
      },
    });
    const deadline = Date.now() + 1_500;
    const raw = rawConnectionAt(folder.path('burst.db'));
    seedWaitingFlows(raw, count, { eventEvery: 0, wakeAt: () => deadline });
    raw.close();
    await tf.start();
    const until = deadline + 60_000;
    while (handled < count && Date.now() < until) await sleep(20);
    await tf.close();
    if (handled < count) throw new Error(`only ${handled} of ${count} flows reached onResume`);
    return { resumedMs: lastResumeTick - deadline, deliveredMs: lastDelivered - deadline };
  } finally {
    folder.cleanup();
  }
}

export async function benchBurst(options: BenchOptions): Promise<BenchResult> {
  const count = options.quick ? 2_000 : 10_000;
  const rows: BenchResult['rows'] = [];
  for (const sync of ['full', 'normal'] as const) {
    const batched = await resumeAll(count, sync, undefined);
    const single = await resumeAll(count, sync, 1);
    options.log(`burst ${sync}: batched ${ms(batched)}, one transaction per flow ${ms(single)}`);
    const SYNC = sync.toUpperCase();
    rows.push(
      {
        synchronous: SYNC,
        variant: 'engine.tick(), batches of 500 (default)',
        'time until all resumed': ms(batched),
        'flows/s': num((count * 1000) / batched),
        'ratio to one tx per flow': ratio(batched / single),
        goal: sync === 'full' ? `< 1 s: ${goal(batched < GOAL_MS)}` : '',
      },
      {
        synchronous: SYNC,
        variant: 'baseline: engine.tick(), one transaction per flow',
        'time until all resumed': ms(single),
        'flows/s': num((count * 1000) / single),
        'ratio to one tx per flow': ratio(1),
        goal: '',
      },
    );
  }
  const e2e = await deliverAll(count);
  options.log(`burst e2e: last resume tick at +${ms(e2e.resumedMs)}, last onResume at +${ms(e2e.deliveredMs)}`);
  rows.push({
    synchronous: 'FULL',
    variant: 'engine started, host timer fires: deadline → last onResume called',
    'time until all resumed': `${ms(e2e.deliveredMs)} (last resuming tick began at +${ms(e2e.resumedMs)})`,
    'flows/s': num((count * 1000) / e2e.deliveredMs),
    'ratio to one tx per flow': '',
    goal: '',
  });
  return {
    title: `4. ${num(count)} timers due at once`,
    rows,
    notes: [
      `${num(count)} timer flows due at the same instant, bulk-inserted; each run on a fresh file. Timed: one \`await engine.tick(now)\` until it returns with all ${num(count)} resumed (each resume: UPDATE, 'resumed' audit event, queued notification).`,
      'Baseline: a WaitEngine with batchSize 1 on the same store: the same work, one transaction per flow.',
      'Last row: the resume notifications delivered to onResume too (claimed and completed 100 at a time by the engine).',
    ],
  };
}

/** The headline `--against` compares, on the default store (SQLite FULL): one tick resuming every flow, and deadline → last onResume. */
export async function headlineBurst(options: BenchOptions): Promise<Headline> {
  const count = options.quick ? 2_000 : 10_000;
  const ticks: number[] = [];
  for (let run = 0; run < 2; run++) ticks.push(await resumeAll(count, 'full', undefined));
  const e2e = await deliverAll(count);
  options.log(`burst: tick ${ticks.map((t) => ms(t)).join(', ')}; deadline → last onResume ${ms(e2e.deliveredMs)}`);
  return {
    title: `${num(count)} timers due at once`,
    metrics: [
      { name: `SQLite FULL: engine.tick() resuming ${num(count)} due flows`, value: (ticks[0]! + ticks[1]!) / 2, unit: 'ms', better: 'lower' },
      { name: `SQLite FULL: engine started, deadline → last of ${num(count)} onResume`, value: e2e.deliveredMs, unit: 'ms', better: 'lower' },
    ],
    notes: [
      `${num(count)} timer flows bulk-inserted on a fresh file each run. Tick: one \`await engine.tick(now)\` with every flow due (mean of two runs). End to end: all due at one deadline 1.5 s ahead, engine started, timed to the last onResume.`,
    ],
  };
}

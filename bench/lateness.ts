import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { openTaskflow, type Flow, type Wake } from '../src/index.js';
import { goal, ms, num, quantile, ratio, sleep, tempFolder, type BenchOptions, type BenchResult } from './report.js';

const GOAL_P99_MS = 15;

/** Wall-clock time with sub-millisecond resolution. */
const preciseNow = (): number => performance.timeOrigin + performance.now();

/** Deterministic offsets in [0, spreadMs), the same for the engine and the baseline. */
function offsets(count: number, spreadMs: number): number[] {
  let seed = 0x2545f491;
  const next = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  return Array.from({ length: count }, () => Math.floor(next() * spreadMs));
}

interface Lateness {
  p50: number;
  p99: number;
  max: number;
  early: number;
  /** How long the event loop was blocked while the timers fired (ms): p99 and max. */
  loopP99: number;
  loopMax: number;
}

function summarise(samples: number[], loop: IntervalHistogram): Lateness {
  return {
    p50: quantile(samples, 0.5),
    p99: quantile(samples, 0.99),
    max: Math.max(...samples),
    early: samples.filter((s) => s < 0).length,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
  };
}

/** Samples event-loop delay from the first deadline on, to tell a blocked loop from a late timer. */
function loopMonitor(firstDeadline: number): IntervalHistogram {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  setTimeout(() => histogram.enable(), Math.max(0, firstDeadline - Date.now() - 100));
  return histogram;
}

/** Timers through the engine: real clock, sweep every 5 s, one host timer armed for the earliest deadline. */
async function engineLateness(
  count: number,
  spreadMs: number,
  synchronous: 'full' | 'normal',
  log: BenchOptions['log'],
): Promise<{ delivered: Lateness; tick: Lateness; setupMs: number; slackMs: number }> {
  const folder = tempFolder('lateness');
  const deadlines = new Map<string, number>();
  const delivered: number[] = [];
  const tickStart: number[] = [];
  let handled = 0;
  const onResume = (flow: Flow, wake: Wake) => {
    const now = preciseNow();
    const at = deadlines.get(flow.id);
    if (at === undefined) return; // not ours, or delivered again (at-least-once): count each flow once
    deadlines.delete(flow.id);
    delivered.push(now - at);
    tickStart.push(wake.at.getTime() - at);
    handled++;
  };
  try {
    const tf = await openTaskflow({ database: folder.path('lateness.db'), synchronous, tickInterval: '5s', onResume });
    await tf.start();
    const setupStart = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const flow = await tf.manager.createManaged({ controllerId: 'bench/timers', goal: 'wake on time', ownerSessionKey: 'agent:bench' });
      await tf.manager.startRunning(flow.id);
      ids.push(flow.id);
    }
    // setWaiting costs about what one of the setup transactions above cost; leave three times that, plus a second.
    const perTransaction = (performance.now() - setupStart) / (2 * count);
    const base = Date.now() + Math.ceil(1_000 + 3 * perTransaction * count);
    const spread = offsets(count, spreadMs);
    for (let i = 0; i < count; i++) {
      const at = base + spread[i]!;
      deadlines.set(ids[i]!, at);
      await tf.manager.setWaiting(ids[i]!, { kind: 'timer', at });
    }
    const slackMs = base + Math.min(...spread) - Date.now();
    const setupMs = performance.now() - setupStart;
    const loop = loopMonitor(base + Math.min(...spread));
    log(`lateness ${synchronous}: ${count} timers set in ${ms(setupMs)}; first deadline in ${ms(slackMs)}`);
    const until = base + spreadMs + 15_000;
    while (handled < count && Date.now() < until) await sleep(50);
    loop.disable();
    await tf.close();
    if (handled < count) throw new Error(`only ${handled} of ${count} timers reached onResume`);
    return { delivered: summarise(delivered, loop), tick: summarise(tickStart, loop), setupMs, slackMs };
  } finally {
    folder.cleanup();
  }
}

/**
 * What the disk does meanwhile: the latency of one single-row FULL commit (a
 * durable write's fsync), every 5 ms for `durationMs`, on a file of its own.
 */
async function commitLatency(durationMs: number): Promise<Lateness> {
  const folder = tempFolder('lateness-disk');
  try {
    const db = new Database(folder.path('disk.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)');
    const update = db.prepare('UPDATE counter SET n = n + 1 WHERE id = 1');
    const loop = loopMonitor(Date.now() + 100);
    await sleep(100);
    const samples: number[] = [];
    const end = performance.now() + durationMs;
    while (performance.now() < end) {
      const t = performance.now();
      update.run();
      samples.push(performance.now() - t);
      await sleep(5);
    }
    loop.disable();
    db.close();
    return summarise(samples, loop);
  } finally {
    folder.cleanup();
  }
}

/** The same deadlines with one plain `setTimeout` each. */
async function setTimeoutLateness(count: number, spreadMs: number): Promise<Lateness> {
  const spread = offsets(count, spreadMs);
  const base = Date.now() + 500;
  const loop = loopMonitor(base + Math.min(...spread));
  const samples: number[] = [];
  await new Promise<void>((resolve) => {
    for (const offset of spread) {
      const at = base + offset;
      setTimeout(() => {
        samples.push(preciseNow() - at);
        if (samples.length === count) resolve();
      }, at - Date.now());
    }
  });
  loop.disable();
  return summarise(samples, loop);
}

/**
 * Work committed by someone else reaching the running app's `onResume` (issue 9.8):
 * timers set through a second handle on the same file (as another process would),
 * and signals sent the way `taskflow signal` sends them (a runtime opened, never
 * started: the resume is committed and queued for the app's engine). The app's
 * engine hears of them through `watchForeignCommits`, else at its next sweep.
 */
async function foreignLateness(
  timers: number,
  signals: number,
  spreadMs: number,
  log: BenchOptions['log'],
): Promise<{ timers: Lateness; signals: Lateness }> {
  const folder = tempFolder('lateness-foreign');
  const deadlines = new Map<string, number>();
  const timerSamples: number[] = [];
  const signalSamples: number[] = [];
  const onResume = (flow: Flow, wake: Wake) => {
    const now = preciseNow();
    const at = deadlines.get(flow.id);
    if (at === undefined) return;
    deadlines.delete(flow.id);
    (wake.reason === 'timer' ? timerSamples : signalSamples).push(now - at);
  };
  try {
    const path = folder.path('foreign.db');
    const app = await openTaskflow({ database: path, tickInterval: '5s', onResume });
    const other = await openTaskflow({ database: path });
    await app.start();
    const make = async () => {
      const flow = await other.manager.createManaged({ controllerId: 'bench/foreign', goal: 'wake from elsewhere', ownerSessionKey: 'agent:bench' });
      await other.manager.startRunning(flow.id);
      return flow.id;
    };
    // Timers committed by the second handle, deadlines spread over spreadMs from 1 s on.
    const timerIds: string[] = [];
    for (let i = 0; i < timers; i++) timerIds.push(await make());
    const base = Date.now() + 1_000;
    const spread = offsets(timers, spreadMs);
    for (let i = 0; i < timers; i++) {
      const at = base + spread[i]!;
      deadlines.set(timerIds[i]!, at);
      await other.manager.setWaiting(timerIds[i]!, { kind: 'timer', at });
    }
    const loop = loopMonitor(base);
    // Signals, one every 20 ms once the timers are set: lateness = signal committed → onResume.
    const signalIds: string[] = [];
    for (let i = 0; i < signals; i++) {
      const id = await make();
      await other.manager.setWaiting(id, { kind: 'manual' });
      signalIds.push(id);
    }
    for (const id of signalIds) {
      await sleep(20);
      await other.engine.signal(id);
      deadlines.set(id, preciseNow());
    }
    const until = Date.now() + spreadMs + 15_000;
    while (deadlines.size > 0 && Date.now() < until) await sleep(50);
    loop.disable();
    log(`lateness foreign: ${timerSamples.length}/${timers} timers, ${signalSamples.length}/${signals} signals reached onResume`);
    await other.close();
    await app.close();
    if (deadlines.size > 0) throw new Error(`${deadlines.size} foreign resumes never reached onResume`);
    return { timers: summarise(timerSamples, loop), signals: summarise(signalSamples, loop) };
  } finally {
    folder.cleanup();
  }
}

export async function benchLateness(options: BenchOptions): Promise<BenchResult> {
  const count = options.quick ? 200 : 1_000;
  const spreadMs = options.quick ? 3_000 : 10_000;
  const engine = await engineLateness(count, spreadMs, 'full', options.log);
  const disk = await commitLatency(options.quick ? 1_000 : 3_000);
  const normal = await engineLateness(count, spreadMs, 'normal', options.log);
  const plain = await setTimeoutLateness(count, spreadMs);
  const foreign = await foreignLateness(options.quick ? 50 : 200, options.quick ? 20 : 100, spreadMs, options.log);
  options.log(
    `lateness: engine FULL p99 ${ms(engine.delivered.p99)}, NORMAL p99 ${ms(normal.delivered.p99)}, setTimeout p99 ${ms(plain.p99)}, FULL commit p99 ${ms(disk.p99)} max ${ms(disk.max)}`,
  );
  const row = (what: string, l: Lateness, isGoal: boolean, latenessOf = true) => ({
    measured: what,
    p50: ms(l.p50),
    p99: ms(l.p99),
    max: ms(l.max),
    'fired early': latenessOf ? num(l.early) : '',
    'p99 ratio to setTimeout': latenessOf ? ratio(l.p99 / plain.p99) : '',
    'event-loop delay p99 / max': `${ms(l.loopP99)} / ${ms(l.loopMax)}`,
    goal: isGoal ? `p99 < ${GOAL_P99_MS} ms: ${goal(l.p99 < GOAL_P99_MS)}` : '',
  });
  return {
    title: '3. Timer lateness',
    rows: [
      row('engine, FULL (default): deadline → onResume called (primary)', engine.delivered, true),
      row("engine, FULL: deadline → resuming tick's time (wake.at, the 'resumed' event time)", engine.tick, false),
      row('engine, NORMAL: deadline → onResume called', normal.delivered, false),
      row('baseline: plain setTimeout, same deadlines', plain, false),
      row('timer set by a second handle on the file (another process): deadline → onResume', foreign.timers, false),
      row('signal sent as `taskflow signal` does (another process): committed → onResume', foreign.signals, false, false),
      row('the disk meanwhile: latency of one single-row FULL commit (not a lateness)', disk, false, false),
    ],
    notes: [
      `${num(count)} timer waits set with tf.manager.setWaiting, deadlines spread pseudo-randomly over ${num(spreadMs / 1000)} s; real clock; tickInterval 5s; engine started; synchronous FULL, then the same with NORMAL.`,
      `Setup (create, start, wait × ${num(count)}) took ${ms(engine.setupMs)}, done ${ms(engine.slackMs)} before the first deadline: nothing else runs while the timers fire.`,
      'Lateness = time observed − deadline; onResume is measured with performance.timeOrigin + performance.now(). wake.at is whole milliseconds (Date.now() when the resuming tick began, before its commit).',
      'Event-loop delay (perf_hooks monitorEventLoopDelay, 1 ms resolution) while the timers fire: better-sqlite3 is synchronous, so a slow commit (fsync) or checkpoint blocks every timer behind it.',
      'Order, one after the other in one process: engine FULL, disk probe (a raw FULL commit every 5 ms), engine NORMAL, setTimeout baseline (same deadline offsets), then the foreign rows.',
      `Foreign rows: the app runs the engine (tickInterval 5s); a second runtime on the same file, never started, sets ${options.quick ? 50 : 200} timer waits (deadlines over ${num(spreadMs / 1000)} s) and sends ${options.quick ? 20 : 100} signals, one every 20 ms, as the CLI does. The app hears of them through the store's watchForeignCommits (PRAGMA data_version on SQLite), else only at its next sweep: lateness up to the 5 s sweep period means no change check is in place.`,
      'A resume is one write transaction (the flow, its audit event and its notification, queued already claimed and handed to onResume at once); delivered notifications are removed in bulk. Under FULL that transaction waits for an fsync, and better-sqlite3 runs it on the main thread: a stalled fsync stalls every timer behind it. Compare the p99 with the disk row.',
    ],
  };
}

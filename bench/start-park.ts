import { openSqliteStore, openTaskflow, silentLogger, type StartFlowInput, type Taskflow } from '../src/index.js';
import { openPgStore, PG_ADMIN_URL, pgReachable, tempPgDatabase } from './pg-support.js';
import { goal, num, ratio, tempFolder, type BenchOptions, type BenchResult, type Headline, type Row } from './report.js';

/**
 * Start-and-park: an agent step that creates a flow and parks it on a timer.
 * `createAndStart({ wait })` does it in one transaction; the baseline is the
 * same work as three calls (createManaged → startRunning → setWaiting) on the
 * store as it was before this change (one transaction per call: SQLite with
 * `groupCommit: false`, PostgreSQL's bench/baseline store), measured in the
 * same run. The three calls on today's store are shown too.
 */

const GOALS = { sqlite: 5, postgres: 3 } as const;
const BULK = 500;

type Dialect = keyof typeof GOALS;
type Path = 'one call' | 'three calls' | 'bulk';

function input(i: number, wakeAt: number): StartFlowInput {
  return {
    controllerId: 'bench/reminder',
    goal: 'remind the customer about invoice INV-42 in a day',
    ownerSessionKey: `agent:bench:session:${i % 100}`,
    state: { invoice: `INV-${i}` },
    wait: { kind: 'timer', at: wakeAt },
  };
}

async function parkOnce(tf: Taskflow, path: Exclude<Path, 'bulk'>, i: number, wakeAt: number): Promise<void> {
  if (path === 'one call') {
    await tf.manager.createAndStart(input(i, wakeAt));
    return;
  }
  const { wait, ...create } = input(i, wakeAt);
  const flow = await tf.manager.createManaged(create);
  await tf.manager.startRunning(flow.id);
  await tf.manager.setWaiting(flow.id, wait!);
}

/** Flows parked per second with `inFlight` callers, each starting its next flow when the last one is parked. */
async function rate(tf: Taskflow, path: Path, inFlight: number, budgetMs: number): Promise<number> {
  const wakeAt = Date.now() + 86_400_000;
  const started = performance.now();
  let parked = 0;
  let next = 0;
  const worker = async () => {
    while (performance.now() - started < budgetMs) {
      if (path === 'bulk') {
        const base = next;
        next += BULK;
        await tf.manager.createAndStartMany(Array.from({ length: BULK }, (_, k) => input(base + k, wakeAt)));
        parked += BULK;
      } else {
        await parkOnce(tf, path, next++, wakeAt);
        parked++;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (parked * 1000) / (performance.now() - started);
}

async function measure(dialect: Dialect, options: BenchOptions): Promise<Row[]> {
  const budgetMs = options.quick ? 1_000 : 4_000;
  const folder = tempFolder('taskflow-bench-park-');
  const pgNow = dialect === 'postgres' ? await tempPgDatabase('park') : undefined;
  const pgBefore = dialect === 'postgres' ? await tempPgDatabase('park_before') : undefined;
  const tf = await openTaskflow({ database: pgNow?.url ?? folder.path('park.db'), synchronous: 'full', logger: silentLogger });
  const before = await openTaskflow({
    store: pgBefore ? await openPgStore(pgBefore.url, 'before') : openSqliteStore({ path: folder.path('before.db'), synchronous: 'full', groupCommit: false }),
    logger: silentLogger,
  });
  const label = dialect === 'sqlite' ? 'SQLite (FULL)' : 'PostgreSQL';
  const rows: Row[] = [];
  try {
    await rate(tf, 'one call', 4, 300); // warm-up: statements prepared, pool filled
    await rate(before, 'three calls', 4, 300);
    for (const inFlight of [1, 32]) {
      options.log(`start-park: ${dialect}, ${inFlight} in flight`);
      // Interleaved twice, so drift on a shared machine lands on every path alike.
      const old: number[] = [];
      const three: number[] = [];
      const one: number[] = [];
      for (let round = 0; round < 2; round++) {
        old.push(await rate(before, 'three calls', inFlight, budgetMs / 3));
        three.push(await rate(tf, 'three calls', inFlight, budgetMs / 3));
        one.push(await rate(tf, 'one call', inFlight, budgetMs / 3));
      }
      const baseline = mean(old);
      const measured = mean(one);
      const target = inFlight === 32 ? GOALS[dialect] : undefined;
      rows.push({
        store: label,
        'in flight': inFlight,
        'three calls, store before (baseline), flows/s': num(baseline),
        'three calls, this store, flows/s': num(mean(three)),
        'createAndStart, flows/s': num(measured),
        speed: ratio(measured / baseline),
        goal: target === undefined ? 'no worse than 1×' : `≥ ${target}×`,
        met: goal(measured / baseline >= (target ?? 0.9)),
      });
    }
    options.log(`start-park: ${dialect}, bulk`);
    const bulk = await rate(tf, 'bulk', 1, budgetMs);
    const baseline = await rate(before, 'three calls', 32, budgetMs / 2);
    rows.push({
      store: label,
      'in flight': `bulk of ${BULK}`,
      'three calls, store before (baseline), flows/s': num(baseline),
      'three calls, this store, flows/s': '',
      'createAndStart, flows/s': num(bulk),
      speed: ratio(bulk / baseline),
      goal: 'faster than 32 in flight',
      met: goal(bulk > baseline),
    });
  } finally {
    await tf.close();
    await before.close();
    folder.cleanup();
    await pgNow?.drop();
    await pgBefore?.drop();
  }
  return rows;
}

const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

export async function benchStartPark(options: BenchOptions): Promise<BenchResult> {
  const rows = await measure('sqlite', options);
  const notes = [
    'A flow created, started and parked on a timer a day away, by `tf.manager.createAndStart({ wait })` (one transaction) against createManaged → startRunning → setWaiting (three transactions), in the same run.',
    'Baseline: the three calls on the store as it was before this work, one transaction per call (SQLite: `groupCommit: false`; PostgreSQL: bench/baseline/pg-store-before.ts), on a database of its own. "this store": the three calls on today\'s store, whose group commit lets concurrent calls share a transaction.',
    'Each rate is the mean of two interleaved rounds of each path. SQLite at synchronous FULL (an fsync per commit); PostgreSQL on the machine\'s server (fsync on).',
    `Goals at 32 in flight: ≥ ${GOALS.sqlite}× on SQLite, ≥ ${GOALS.postgres}× on PostgreSQL. "bulk" is createAndStartMany with ${BULK} flows a call, against the three-call path at 32 in flight.`,
  ];
  if (await pgReachable()) rows.push(...(await measure('postgres', options)));
  else notes.push(`PostgreSQL rows skipped: ${PG_ADMIN_URL} is not reachable.`);
  return { title: 'Start and park: one transaction per agent step', rows, notes };
}

/** The headline `--against` compares: createAndStart flows/s on the default store (SQLite FULL; PostgreSQL when reachable). */
export async function headlineStartPark(options: BenchOptions): Promise<Headline> {
  const budgetMs = options.quick ? 500 : 1_500;
  const metrics: Headline['metrics'] = [];
  const dialects: Dialect[] = (await pgReachable()) ? ['sqlite', 'postgres'] : ['sqlite'];
  for (const dialect of dialects) {
    const folder = tempFolder('taskflow-bench-park-');
    const pg = dialect === 'postgres' ? await tempPgDatabase('park') : undefined;
    const tf = await openTaskflow({ database: pg?.url ?? folder.path('park.db'), synchronous: 'full', logger: silentLogger });
    try {
      await rate(tf, 'one call', 4, 300);
      const label = dialect === 'sqlite' ? 'SQLite FULL' : 'PostgreSQL';
      for (const inFlight of dialect === 'sqlite' ? [1, 32] : [32]) {
        const rates = [await rate(tf, 'one call', inFlight, budgetMs / 2), await rate(tf, 'one call', inFlight, budgetMs / 2)];
        options.log(`start-park ${label}, ${inFlight} in flight: ${rates.map((r) => num(r)).join(', ')} flows/s`);
        metrics.push({ name: `${label}, ${inFlight} in flight: createAndStart flows/s`, value: mean(rates), unit: 'number', better: 'higher' });
      }
    } finally {
      await tf.close();
      folder.cleanup();
      await pg?.drop();
    }
  }
  return {
    title: 'Start and park',
    metrics,
    notes: [`A flow created, started and parked on a timer a day away by tf.manager.createAndStart({ wait }), with 1 or 32 callers each starting its next flow when the last is parked; default store (SQLite FULL, and PostgreSQL on the shared server when reachable); mean of two runs of ${budgetMs / 2} ms after a warm-up.`],
  };
}

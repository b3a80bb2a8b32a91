import { openTaskflow, silentLogger, type StartFlowInput, type Taskflow } from '../src/index.js';
import { PG_ADMIN_URL, pgReachable, tempPgDatabase } from './pg-support.js';
import { goal, num, ratio, tempFolder, type BenchOptions, type BenchResult, type Row } from './report.js';

/**
 * Start-and-park: an agent step that creates a flow and parks it on a timer.
 * `createAndStart({ wait })` does it in one transaction; the baseline is the
 * same work as three calls (createManaged → startRunning → setWaiting), today's
 * path before this change, measured in the same run on the same store.
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
  const pgDb = dialect === 'postgres' ? await tempPgDatabase('park') : undefined;
  const tf = await openTaskflow({ database: pgDb?.url ?? folder.path('park.db'), synchronous: 'full', logger: silentLogger });
  const rows: Row[] = [];
  try {
    await rate(tf, 'one call', 4, 300); // warm-up: statements prepared, pool filled
    for (const inFlight of [1, 32]) {
      options.log(`start-park: ${dialect}, ${inFlight} in flight`);
      // Interleaved twice, so drift on a shared machine lands on both paths alike.
      const three = [await rate(tf, 'three calls', inFlight, budgetMs / 2)];
      const one = [await rate(tf, 'one call', inFlight, budgetMs / 2)];
      three.push(await rate(tf, 'three calls', inFlight, budgetMs / 2));
      one.push(await rate(tf, 'one call', inFlight, budgetMs / 2));
      const baseline = (three[0]! + three[1]!) / 2;
      const measured = (one[0]! + one[1]!) / 2;
      const target = inFlight === 32 ? GOALS[dialect] : undefined;
      rows.push({
        store: dialect === 'sqlite' ? 'SQLite (FULL)' : 'PostgreSQL',
        'in flight': inFlight,
        'three calls (baseline), flows/s': num(baseline),
        'createAndStart, flows/s': num(measured),
        speed: ratio(measured / baseline),
        goal: target === undefined ? 'no worse than 1×' : `≥ ${target}×`,
        met: goal(measured / baseline >= (target ?? 0.9)),
      });
    }
    options.log(`start-park: ${dialect}, bulk`);
    const bulk = await rate(tf, 'bulk', 1, budgetMs);
    const baseline = await rate(tf, 'three calls', 32, budgetMs / 2);
    rows.push({
      store: dialect === 'sqlite' ? 'SQLite (FULL)' : 'PostgreSQL',
      'in flight': `bulk of ${BULK}`,
      'three calls (baseline), flows/s': num(baseline),
      'createAndStart, flows/s': num(bulk),
      speed: ratio(bulk / baseline),
      goal: 'faster than 32 in flight',
      met: goal(bulk > baseline),
    });
  } finally {
    await tf.close();
    folder.cleanup();
    await pgDb?.drop();
  }
  return rows;
}

export async function benchStartPark(options: BenchOptions): Promise<BenchResult> {
  const rows = await measure('sqlite', options);
  const notes = [
    'A flow created, started and parked on a timer a day away, by `tf.manager.createAndStart({ wait })` (one transaction) against createManaged → startRunning → setWaiting (three transactions), in the same run on the same store.',
    'Each rate is the mean of two interleaved rounds of each path. SQLite at synchronous FULL (an fsync per commit); PostgreSQL on the machine\'s server (fsync on).',
    `Goals at 32 in flight: ≥ ${GOALS.sqlite}× on SQLite, ≥ ${GOALS.postgres}× on PostgreSQL. "bulk" is createAndStartMany with ${BULK} flows a call, against the three-call path at 32 in flight.`,
  ];
  if (await pgReachable()) rows.push(...(await measure('postgres', options)));
  else notes.push(`PostgreSQL rows skipped: ${PG_ADMIN_URL} is not reachable.`);
  return { title: 'Start and park: one transaction per agent step', rows, notes };
}

import { createTaskflowTool, ManualClock, openTaskflow, silentLogger, type Taskflow } from '../src/index.js';
import { goal, median, ms, num, quantile, ratio, tempFolder, type BenchOptions, type BenchResult } from './report.js';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-01-01T09:00:00Z');
/** ~1× is the goal: a long-lived schedule costs what a new one does. Above this, something grows. */
const GOAL_RATIO = 1.5;

interface Subject {
  name: string;
  owner: string;
  id: string;
  /** The occurrence the flow waits for next. */
  next: () => Promise<{ number: number; at: number }>;
}

/**
 * Tick, `status` and `list_mine` for a daily schedule after 10,000 occurrences,
 * beside a fresh one, in the same database and the same run.
 */
export async function benchRecurring(options: BenchOptions): Promise<BenchResult> {
  const aged = options.quick ? 1_000 : 10_000;
  const samples = options.quick ? 200 : 500;
  const folder = tempFolder('recurring');
  const clock = new ManualClock(T0);
  const tf = await openTaskflow({ database: folder.path('recurring.db'), clock, logger: silentLogger, tickInterval: '1h' });
  try {
    const old = await subject(tf, 'aged', 'agent:bench:session:aged', T0 + HOUR);
    const started = performance.now();
    // Age one schedule: each occurrence is a resume (by tick) and a park, two audit rows.
    for (let i = 0; i < aged; i++) {
      const due = await old.next();
      clock.set(due.at);
      await tf.engine.tick();
      await tf.manager.waitNext(old.id, due.number);
    }
    options.log(`recurring: aged one schedule by ${num(aged)} occurrences in ${ms(performance.now() - started)}`);
    const fresh = await subject(tf, 'fresh', 'agent:bench:session:fresh', clock.now() + HOUR / 2);

    const times: Record<string, Record<string, number[]>> = {};
    const record = (what: string, who: string, t: number) => (((times[what] ??= {})[who] ??= []).push(performance.now() - t));
    for (let i = 0; i < samples; i++) {
      // In due order (their days interleave): each tick then finds exactly one flow due.
      const round = await Promise.all([old, fresh].map(async (flow) => ({ flow, due: await flow.next() })));
      for (const { flow, due } of round.sort((a, b) => a.due.at - b.due.at)) {
        clock.set(due.at);
        let t = performance.now();
        const result = await tf.engine.tick();
        record('tick resuming the occurrence', flow.name, t);
        if (result.resumed !== 1) throw new Error(`tick resumed ${result.resumed} flows, expected the one due`);
        t = performance.now();
        await tf.manager.waitNext(flow.id, due.number);
        record('waitNext (park for the next)', flow.name, t);
        t = performance.now();
        await tf.engine.tick(clock.now());
        record('tick with nothing due', flow.name, t);
        const tool = createTaskflowTool(tf, { owner: flow.owner });
        t = performance.now();
        const status = await tool.call({ action: 'status', flow_id: flow.id });
        record('tool status', flow.name, t);
        t = performance.now();
        const list = await tool.call({ action: 'list_mine' });
        record('tool list_mine', flow.name, t);
        if (!status.ok || !list.ok) throw new Error('the tool refused a call');
      }
    }
    const events = async (id: string) => (await tf.manager.listEvents(id)).length;
    const [oldEvents, freshEvents] = [await events(old.id), await events(fresh.id)];
    const rows: BenchResult['rows'] = Object.entries(times).map(([operation, by]) => {
      const f = median(by.fresh!);
      const a = median(by.aged!);
      return {
        operation,
        'fresh p50': ms(f),
        'fresh p99': ms(quantile(by.fresh!, 0.99)),
        [`after ${num(aged)} occurrences p50`]: ms(a),
        [`after ${num(aged)} p99`]: ms(quantile(by.aged!, 0.99)),
        'ratio aged / fresh': ratio(a / f),
        goal: `~1× (≤ ${GOAL_RATIO}×): ${goal(a / f <= GOAL_RATIO)}`,
      };
    });
    return {
      title: `Recurring waits: cost after ${num(aged)} occurrences beside a fresh schedule`,
      rows,
      notes: [
        `One SQLite file (FULL), ManualClock; two daily schedules (every 1d) of two owners. The aged one went through ${num(aged)} occurrences first ` +
          `(${num(oldEvents)} audit rows at the end, against ${num(freshEvents)} for the fresh one).`,
        `Then ${num(samples)} rounds, each flow at its own due time: tick at its due time (resumes it), waitNext, an idle tick, the tool's status and list_mine; p50/p99 of each.`,
        'Taken on a shared 2-core machine under load from other work: read the ratio (both measured in the same run), not the absolute times.',
      ],
    };
  } finally {
    await tf.close();
    folder.cleanup();
  }
}

async function subject(tf: Taskflow, name: string, owner: string, first: number): Promise<Subject> {
  const created = await tf.manager.createManaged({ controllerId: 'bench/recurring', goal: `daily schedule (${name})`, ownerSessionKey: owner });
  await tf.manager.startRunning(created.id);
  await tf.manager.setWaiting(created.id, { kind: 'recurring', every: '1d', startAt: first });
  return {
    name,
    owner,
    id: created.id,
    next: async () => {
      const wait = (await tf.manager.get(created.id))!.wait;
      if (wait?.kind !== 'recurring') throw new Error(`the ${name} flow is not waiting on its schedule`);
      return { number: wait.occurrence, at: wait.at.getTime() };
    },
  };
}

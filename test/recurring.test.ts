import { is, Placeholder } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { createTaskflowTool, FlowError, ManualClock, occurrenceDone, openTaskflow, silentLogger, type Flow, type Taskflow, type Wake } from '../src/index.js';
import { newFlow, openTestTaskflow, T0, tempDatabase } from './support/taskflow.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

type TestTaskflow = Awaited<ReturnType<typeof openTestTaskflow>>;

async function runningFlow(tf: Pick<Taskflow, 'manager'>): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  return tf.manager.startRunning(flow.id);
}

/** Resumes what is due at the clock's time and hands it to onResume (the engine is not started: every step is explicit). */
async function step(tf: Pick<Taskflow, 'engine'>): Promise<void> {
  await tf.engine.tick();
  await tf.engine.deliverNotifications();
}

async function refusal(call: Promise<unknown>): Promise<FlowError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(FlowError.isInstance(error), `expected a FlowError, got ${String(error)}`).toBe(true);
  return error as FlowError;
}

describe('a daily schedule across a simulated year', () => {
  it('resumes 365 times, never counts an occurrence twice under redelivery, loses none across restarts, and costs the same on day 365 as on day 1', async () => {
    const path = await tempDatabase();
    const clock = new ManualClock(T0);
    /** Every call of the handler, redeliveries included. */
    const deliveries: number[] = [];
    /** Occurrences whose work the handler did (the work is recorded with the park, in one write). */
    const worked: number[] = [];
    const failOnce = new Set([30, 90, 270]);
    let hang: { occurrence: number; worked: () => void; release?: () => void } | undefined;

    const handler = (tf: () => Taskflow) => async (flow: Flow, wake: Wake) => {
      const n = wake.occurrence!.number;
      deliveries.push(n);
      const current = (await tf().manager.get(flow.id))!;
      if (occurrenceDone(current, n)) return; // a redelivery: the work is done already
      const reminders = (current.state.reminders as number | undefined) ?? 0;
      await tf().manager.waitNext(flow.id, n, { reminders: reminders + 1, last_reminded: n });
      worked.push(n);
      if (failOnce.delete(n)) throw new Error(`crash after the work of occurrence ${n}`);
      if (hang?.occurrence === n) {
        hang.worked();
        // Never returns: its process is about to go away with the notification still leased.
        await new Promise<void>((resolve) => (hang!.release = resolve));
      }
    };
    const open = async (): Promise<Taskflow> => {
      let tf!: Taskflow;
      tf = await openTaskflow({ database: path, clock, logger: silentLogger, resumeLease: '200ms', onResume: handler(() => tf) });
      return tf;
    };

    let tf = await open();
    try {
      const started = await runningFlow(tf);
      const id = started.id;
      await tf.manager.setWaiting(id, { kind: 'recurring', every: '1d' });
      const probe = costProbe(tf);
      const costOf = async () => {
        const calls: string[] = [];
        probe.record = calls;
        await tf.engine.tick(clock.now() - 1); // nothing due: the engine's idle tick
        const tool = createTaskflowTool(tf, { owner: newFlow.ownerSessionKey });
        await tool.call({ action: 'status', flow_id: id });
        await tool.call({ action: 'list_mine' });
        probe.record = undefined;
        return calls;
      };

      let dayOneCost: string[] | undefined;
      for (let day = 1; day <= 365; day++) {
        clock.advance(DAY);
        if (day === 200) {
          // A restart while an occurrence is due and no engine ran it.
          await tf.close();
          tf = await open();
          probe.attach(tf);
        }
        if (day === 150) {
          // The handler does the work, then its process dies with the notification leased.
          const worked = new Promise<void>((resolve) => (hang = { occurrence: 150, worked: resolve }));
          await tf.engine.tick();
          // Its delivery outlives the runtime; what it writes after the close fails, as a dead process's would.
          void tf.engine.deliverNotifications().catch(() => undefined);
          await worked;
          await tf.close();
          tf = await open();
          probe.attach(tf);
          continue; // the lease ends on the clock; day 151 redelivers it
        }
        await step(tf);
        if (day === 1) dayOneCost = await costOf();
      }
      await step(tf);
      hang?.release?.();

      const flow = (await tf.manager.get(id))!;
      expect(flow.state).toMatchObject({ reminders: 365, last_reminded: 365 });
      expect(worked).toEqual(Array.from({ length: 365 }, (_, i) => i + 1));
      // Redelivered occurrences reached the handler again, and were recognised.
      for (const n of [30, 90, 150, 270]) expect(deliveries.filter((d) => d === n)).toHaveLength(2);
      expect(flow).toMatchObject({ status: 'waiting', wait: { kind: 'recurring', occurrence: 366, at: new Date(T0 + 366 * DAY) } });
      expect(flow.schedule).toMatchObject({ every: DAY, first: new Date(T0 + DAY), last: { number: 365, at: new Date(T0 + 365 * DAY) } });
      const resumed = (await tf.manager.listEvents(id)).filter((e) => e.kind === 'resumed');
      expect(resumed.map((e) => (e.payload.occurrence as { number: number }).number)).toEqual(Array.from({ length: 365 }, (_, i) => i + 1));
      expect(flow.revision + 1).toBe((await tf.manager.listEvents(id)).length);

      // Flat cost: the hot paths make the same store calls, reading as many rows, on day 365 as on day 1.
      const yearCost = await costOf();
      expect(dayOneCost).toEqual(['nextWakeAt:1 row', 'getFlow:1 row', 'lastEvents:1 rows', 'listByOwner:1 rows', 'lastEvents:1 rows']);
      expect(yearCost).toEqual(dayOneCost);
      expect(yearCost.join(' ')).not.toMatch(/listEvents/);
      await expectLastEventReadsOneRow(tf, path, id);
    } finally {
      hang?.release?.();
      await tf.close();
    }
  });
});

/**
 * Records each store call the hot paths make, with the rows it returned
 * (flows, events), so two readings can be compared structurally.
 */
function costProbe(tf: Taskflow) {
  const probe = {
    record: undefined as string[] | undefined,
    attach(runtime: Taskflow) {
      const store = runtime.store as unknown as Record<string, unknown>;
      for (const name of ['nextWakeAt', 'commit', 'commitClaiming', 'getFlow', 'listByOwner', 'lastEvents', 'listEvents', 'listByStatus']) {
        const original = store[name] as (...args: unknown[]) => Promise<unknown>;
        store[name] = async (...args: unknown[]) => {
          const result = await original.apply(runtime.store, args);
          probe.record?.push(`${name}:${rowsOf(result)}`);
          return result;
        };
      }
    },
  };
  probe.attach(tf);
  return probe;
}

function rowsOf(result: unknown): string {
  if (Array.isArray(result)) return `${result.length} rows`;
  if (result instanceof Map) return `${result.size} rows`;
  return result === undefined ? 'none' : '1 row';
}

/** The `status`/`list_mine` read of the last resume: one row of the year's log, by index. */
async function expectLastEventReadsOneRow(tf: Taskflow, database: string, flowId: string): Promise<void> {
  if (tf.store.dialect === 'sqlite') {
    const Database = (await import('better-sqlite3')).default;
    const { prepareStatements } = await import('../src/runtime/store/sqlite/statements.js');
    const { drizzle } = await import('drizzle-orm/better-sqlite3');
    const db = new Database(database, { readonly: true });
    try {
      const query = prepareStatements(drizzle(db)).lastEventOfKind.getQuery();
      const values: Record<string, unknown> = { flowId, kind: 'resumed' };
      const params = query.params.map((param) => (is(param, Placeholder) ? values[param.name] : param));
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).all(...params) as { detail: string }[];
      expect(plan.map((row) => row.detail).join('\n')).toMatch(/SEARCH flow_events USING (COVERING )?INDEX flow_events_flow_kind/);
    } finally {
      db.close();
    }
    return;
  }
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    await client.query('ANALYZE flow_events');
    const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) SELECT e.id FROM unnest($1::text[]) AS f(id)
       CROSS JOIN LATERAL (SELECT * FROM flow_events WHERE flow_id = f.id AND kind = $2 ORDER BY id DESC LIMIT 1) AS e`,
      [[flowId], 'resumed'],
    );
    const scans = nodes(rows[0]!['QUERY PLAN'][0].Plan).filter((node) => node['Relation Name'] === 'flow_events');
    expect(scans.length).toBe(1);
    expect(scans[0]!['Node Type']).toMatch(/Index/);
    // Rows read: the one returned plus those filtered out on the way (at most the park written after it), never the year's log.
    expect((scans[0]!['Actual Rows'] ?? 0) + (scans[0]!['Rows Removed by Filter'] ?? 0)).toBeLessThanOrEqual(2);
  } finally {
    await client.end();
  }
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

describe('cron schedules', () => {
  it('keeps 09:00 Europe/Paris on both sides of the late-March daylight-saving change', async () => {
    const start = Date.parse('2026-03-26T12:00:00Z');
    const woke: Wake[] = [];
    let tf!: TestTaskflow;
    tf = await openTestTaskflow({
      clock: new ManualClock(start),
      onResume: async (flow, wake) => {
        woke.push(wake);
        await tf.manager.waitNext(flow.id, wake.occurrence!.number);
      },
    });
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', cron: '0 9 * * *', timeZone: 'Europe/Paris' });
    for (let i = 0; i < 6; i++) {
      tf.clock.set((await tf.engine.nextDueAt())!);
      await step(tf);
    }
    const scheduled = woke.map((w) => w.occurrence!.scheduledAt.toISOString());
    expect(scheduled).toEqual([
      '2026-03-27T08:00:00.000Z',
      '2026-03-28T08:00:00.000Z',
      '2026-03-29T07:00:00.000Z', // summer time from 02:00 that night
      '2026-03-30T07:00:00.000Z',
      '2026-03-31T07:00:00.000Z',
      '2026-04-01T07:00:00.000Z',
    ]);
    const paris = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' });
    expect(new Set(woke.map((w) => paris.format(w.occurrence!.scheduledAt)))).toEqual(new Set(['09:00']));
    expect(woke.map((w) => w.occurrence!.number)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('runs weekdays only for a MON-FRI cron', async () => {
    const tf = await openTestTaskflow({ clock: new ManualClock(Date.parse('2026-03-26T12:00:00Z')) });
    const flow = await runningFlow(tf);
    const waiting = await tf.manager.setWaiting(flow.id, { kind: 'recurring', cron: '0 9 * * MON-FRI', timeZone: 'Europe/Paris' });
    expect(waiting.wait).toEqual({ kind: 'recurring', occurrence: 1, at: new Date('2026-03-27T08:00:00Z') });
    tf.clock.set(Date.parse('2026-03-27T08:00:00Z'));
    await tf.engine.tick();
    const parked = await tf.manager.waitNext(flow.id, 1);
    // Friday, then Monday: the weekend is skipped.
    expect(parked.wait).toEqual({ kind: 'recurring', occurrence: 2, at: new Date('2026-03-30T07:00:00Z') });
  });
});

describe('the end of a schedule', () => {
  it('ends after count occurrences: the last wake says so and parking again is refused', async () => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', every: '1d', count: 3 });
    const lastFlags: boolean[] = [];
    for (let n = 1; n <= 3; n++) {
      tf.clock.advance(DAY);
      await tf.engine.tick();
      const resumed = await tf.store.lastEvents([flow.id], 'resumed');
      lastFlags.push((resumed.get(flow.id)!.payload.occurrence as { last: boolean }).last);
      if (n < 3) await tf.manager.waitNext(flow.id, n);
    }
    expect(lastFlags).toEqual([false, false, true]);
    const before = (await tf.manager.get(flow.id))!;
    const error = await refusal(tf.manager.waitNext(flow.id, 3));
    expect(error.code).toBe('illegal_transition');
    expect(error.message).toMatch(/ended with occurrence 3/);
    expect(await tf.manager.get(flow.id)).toEqual(before);
  });

  it('ends at until: no occurrence falls after it', async () => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', every: '1d', until: T0 + 2.5 * DAY });
    tf.clock.advance(DAY);
    await tf.engine.tick();
    await tf.manager.waitNext(flow.id, 1);
    tf.clock.advance(DAY);
    await tf.engine.tick();
    const last = (await tf.store.lastEvents([flow.id], 'resumed')).get(flow.id)!;
    expect(last.payload.occurrence).toMatchObject({ number: 2, last: true });
    expect((await refusal(tf.manager.waitNext(flow.id, 2))).code).toBe('illegal_transition');
  });
});

describe('catch-up after downtime', () => {
  it('by default resumes once for the latest occurrence, says how many were missed, and stays anchored', async () => {
    const woke: Wake[] = [];
    const tf = await openTestTaskflow({ onResume: (_flow, wake) => void woke.push(wake) });
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', every: '1h' });
    tf.clock.advance(10 * HOUR + 20 * 60_000); // no engine ran for ten hours and twenty minutes
    await step(tf);
    expect(woke).toHaveLength(1);
    expect(woke[0]!.occurrence).toEqual({ number: 10, scheduledAt: new Date(T0 + 10 * HOUR), missed: 9, last: false });
    const parked = await tf.manager.waitNext(flow.id, 10);
    // The next occurrence counts from the schedule, not from now (10:20).
    expect(parked.wait).toEqual({ kind: 'recurring', occurrence: 11, at: new Date(T0 + 11 * HOUR) });
  });

  it("with catchUp 'each', resumes once for every missed occurrence, in order", async () => {
    const woke: Wake[] = [];
    let tf!: TestTaskflow;
    tf = await openTestTaskflow({
      onResume: async (flow, wake) => {
        woke.push(wake);
        await tf.manager.waitNext(flow.id, wake.occurrence!.number);
      },
    });
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', every: '1h', catchUp: 'each' });
    tf.clock.advance(4 * HOUR + 1);
    for (let i = 0; i < 6; i++) await step(tf);
    expect(woke.map((w) => [w.occurrence!.number, w.occurrence!.missed])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 0],
    ]);
    expect((await tf.manager.get(flow.id))!.wait).toEqual({ kind: 'recurring', occurrence: 5, at: new Date(T0 + 5 * HOUR) });
  });
});

describe('parking for the next occurrence', () => {
  it('is idempotent: parking again for the same occurrence writes nothing', async () => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', every: '3d', count: 5 });
    tf.clock.advance(3 * DAY);
    await tf.engine.tick();
    const parked = await tf.manager.waitNext(flow.id, 1, { reminders: 1 });
    const again = await tf.manager.waitNext(flow.id, 1, { reminders: 2 });
    expect(again).toEqual(parked);
    expect(again.state).toEqual({ reminders: 1 });
    expect(await tf.manager.listEvents(flow.id)).toHaveLength(again.revision + 1);
    // Parking for an occurrence that has not happened is a mistake, not a no-op.
    expect((await refusal(tf.manager.waitNext(flow.id, 4))).code).toBe('invalid_input');
  });

  it('shows the schedule on the flow while it runs between occurrences', async () => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', every: '3d', count: 5, catchUp: 'each' });
    tf.clock.advance(3 * DAY);
    await tf.engine.tick();
    const running = (await tf.manager.get(flow.id))!;
    expect(running).toMatchObject({ status: 'running', wait: null });
    expect(running.schedule).toEqual({ every: 3 * DAY, first: new Date(T0 + 3 * DAY), count: 5, catchUp: 'each', last: { number: 1, at: new Date(T0 + 3 * DAY) } });
    expect(occurrenceDone(running, 1)).toBe(false);
    expect(occurrenceDone(await tf.manager.waitNext(flow.id, 1), 1)).toBe(true);
  });

  it('lets each period, not the whole schedule, fit in the horizon', async () => {
    const tf = await openTestTaskflow({ timerMaxHorizon: '30d' });
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', every: '20d', count: 10 });
    const other = await runningFlow(tf);
    const error = await refusal(tf.manager.setWaiting(other.id, { kind: 'recurring', every: '40d' }));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toMatch(/horizon/);
  });
});

describe('bad recurring waits', () => {
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a cron that does not parse', { cron: 'every monday' }, /not a cron expression/],
    ['an unknown time zone', { cron: '0 9 * * *', timeZone: 'Mars/Olympus' }, /not a known IANA zone/],
    ['a zero interval', { every: '0s' }, /longer than 0/],
    ['a negative interval', { every: -86_400_000 }, /non-negative/],
    ['an interval written backwards', { every: '-3d' }, /not a duration/],
    ['a count of 0', { every: '1d', count: 0 }, /count must be a whole number/],
    ['a fractional count', { every: '1d', count: 2.5 }, /count must be a whole number/],
    ['both every and cron', { every: '1d', cron: '0 9 * * *' }, /exactly one/],
    ['neither every nor cron', {}, /exactly one/],
    ['an end before the first occurrence', { every: '1d', until: T0 + HOUR }, /before the first occurrence/],
    ['an unknown field', { every: '1d', times: 3 }, /times is not a field/],
    ['a zone on an interval', { every: '1d', timeZone: 'Europe/Paris' }, /cron schedule only/],
    ['an unknown catch-up policy', { every: '1d', catchUp: 'all' }, /catchUp must be one of latest, each/],
  ];
  it.each(bad)('refuses %s with invalid_input and changes nothing', async (_name, fields, message) => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    const error = await refusal(tf.manager.setWaiting(flow.id, { kind: 'recurring', ...fields } as never));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toMatch(message);
    expect(await tf.manager.get(flow.id)).toEqual(flow);
    expect(await tf.manager.listEvents(flow.id)).toHaveLength(flow.revision + 1);
  });

  it('refuses parking for a next occurrence on a flow with no schedule', async () => {
    const tf = await openTestTaskflow();
    const flow = await runningFlow(tf);
    const error = await refusal(tf.manager.waitNext(flow.id, 0));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toMatch(/no recurring schedule/);
    expect(await tf.manager.get(flow.id)).toEqual(flow);
  });
});

describe('cron catch-up after a long downtime', () => {
  it('counts every missed occurrence, at most 1,000 per resume, so the next resume follows at once', async () => {
    const woke: Wake[] = [];
    let tf!: TestTaskflow;
    tf = await openTestTaskflow({
      onResume: async (flow, wake) => {
        woke.push(wake);
        await tf.manager.waitNext(flow.id, wake.occurrence!.number);
      },
    });
    const flow = await runningFlow(tf);
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', cron: '* * * * *' }); // every minute
    tf.clock.advance(1_500 * 60_000 + 30_000); // 25 hours without an engine: 1,500 occurrences due
    for (let i = 0; i < 3; i++) await step(tf);
    expect(woke.map((w) => [w.occurrence!.number, w.occurrence!.missed])).toEqual([
      [1_001, 1_000],
      [1_500, 498],
    ]);
    expect(woke[1]!.occurrence!.scheduledAt).toEqual(new Date(T0 + 1_500 * 60_000));
  });
});

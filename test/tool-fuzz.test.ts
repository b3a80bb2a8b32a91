import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTaskflowTool, TASKFLOW_ACTIONS, type TaskflowTool } from '../src/index.js';
import { T0 } from './support/taskflow.js';
import { openToolFixture, OTHER_OWNER, OWNER, startInput } from './support/tool-fixtures.js';

const RUNS = 10_000;
const RUNS_PER_DATABASE = 500;
const wild = fc.anything({ withBigInt: true, withDate: true, withMap: true, withNullPrototype: true, withSparseArray: true, withTypedArray: true, withBoxedValues: true });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: arb }, { weight: 1, arbitrary: wild });
const iso = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();

const waitCondition = fc.record(
  {
    kind: maybe(fc.constantFrom('timer', 'external_event', 'manual', 'alarm')),
    at: maybe(fc.constantFrom(iso(-60_000), iso(60_000), iso(40 * 86_400_000), '2026-01-01T10:00:00', 'tomorrow')),
    in: maybe(fc.constantFrom('90m', '1h', '0s', '40d', '-1h', '3d', 'soon')),
    topic: maybe(fc.constantFrom('payments.invoice.paid', 'orders.1.paid', 'orders.1.shipped', 'payments.*', '', 'a..b')),
    correlation_id: maybe(fc.constantFrom('INV-42', '', '42')),
    timeout_in: maybe(fc.constantFrom('1d', '60d', '0ms')),
    timeout_at: maybe(fc.constantFrom(iso(-1), iso(86_400_000))),
    signal: maybe(fc.constantFrom('approved', '')),
    correlationId: fc.constant('INV-42'),
  },
  { requiredKeys: ['kind'] },
);

/** A call: often shaped like a real one, with every field sometimes wrong, sometimes anything at all. */
const call = fc.record(
  {
    action: maybe(fc.constantFrom(...TASKFLOW_ACTIONS, 'delete', 'START', '')),
    flow: fc.nat(20),
    flow_id_override: maybe(fc.constantFrom('not-a-uuid', '00000000-0000-4000-8000-000000000000', '')),
    controller_id: maybe(fc.constantFrom('kate/shipping', '', '  ')),
    goal: maybe(fc.string()),
    current_step: maybe(fc.constantFrom('await_payment', '')),
    state: maybe(fc.dictionary(fc.string(), fc.jsonValue())),
    idempotency_key: maybe(fc.constantFrom('k1', 'k2', '')),
    patch: maybe(fc.dictionary(fc.string(), fc.jsonValue())),
    wait_condition: maybe(waitCondition),
    final_state: maybe(fc.dictionary(fc.string(), fc.jsonValue())),
    reason: maybe(fc.string()),
    status: maybe(fc.constantFrom('running', 'waiting', 'finished', 'asleep')),
    limit: maybe(fc.integer({ min: -5, max: 200 })),
    offset: maybe(fc.integer({ min: -5, max: 50 })),
  },
  { requiredKeys: [] },
);

const scenario = fc.record({
  input: fc.oneof({ weight: 1, arbitrary: wild }, { weight: 9, arbitrary: call }),
  tool: fc.constantFrom('full', 'restricted', 'resolver'),
  session: fc.constantFrom<string | undefined>(OWNER, OTHER_OWNER, undefined),
});

interface Fixture {
  close: () => void;
  tools: Record<'full' | 'restricted' | 'resolver', TaskflowTool<{ session?: string } | undefined>>;
  ids: string[];
  snapshot: () => string;
}

async function freshFixture(): Promise<Fixture> {
  const { tf } = await openToolFixture();
  const binding = { topics: ['payments.>', 'orders.*.paid'], timerMaxHorizon: '30d' };
  const tools = {
    full: createTaskflowTool<{ session?: string } | undefined>(tf, { owner: OWNER, ...binding }),
    restricted: createTaskflowTool<{ session?: string } | undefined>(tf, { owner: OWNER, allow: ['status', 'list_mine', 'wait'], ...binding }),
    resolver: createTaskflowTool<{ session?: string } | undefined>(tf, { owner: (ctx) => ctx?.session, ...binding }),
  };
  // Flows in every status, and some of another session.
  const ids: string[] = [];
  for (const owner of [OWNER, OWNER, OWNER, OWNER, OTHER_OWNER]) {
    const flow = await tf.manager.createManaged({ controllerId: 'kate/shipping', goal: startInput.goal, ownerSessionKey: owner });
    ids.push(flow.id);
  }
  await tf.manager.startRunning(ids[1]!);
  await tf.manager.startRunning(ids[2]!);
  await tf.manager.setWaiting(ids[2]!, { kind: 'external_event', topic: 'payments.invoice.paid', correlationId: 'INV-42' });
  await tf.manager.startRunning(ids[3]!);
  await tf.manager.finish(ids[3]!);
  const db = new Database(tf.path, { readonly: true });
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(({ name }) =>
    db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`),
  );
  return { tools, ids, close: () => db.close(), snapshot: () => JSON.stringify(tables.map((statement) => statement.all())) };
}

describe('taskflow tool fuzz', () => {
  it(`never throws, and a refused call never changes the database (${RUNS} inputs)`, async () => {
    let fixture = await freshFixture();
    let runs = 0;
    let refusals = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ input, tool, session }) => {
        if (++runs % RUNS_PER_DATABASE === 0) {
          fixture.close();
          fixture = await freshFixture();
        }
        let sent: unknown = input;
        if (typeof input === 'object' && input !== null && 'flow' in input) {
          const { flow, flow_id_override, ...rest } = input as { flow: number; flow_id_override?: unknown };
          sent = { ...rest, flow_id: flow_id_override !== undefined ? flow_id_override : fixture.ids[flow % (fixture.ids.length + 1)] };
        }
        const before = fixture.snapshot();
        const result = await fixture.tools[tool].call(sent, session === undefined ? undefined : { session });
        expect(typeof result.ok).toBe('boolean');
        if (!result.ok) {
          refusals++;
          expect(result.error).toEqual(expect.any(String));
          expect(result.message.length).toBeGreaterThan(0);
          expect(fixture.snapshot()).toBe(before);
        }
      }),
      { numRuns: RUNS },
    );
    fixture.close();
    expect(runs).toBeGreaterThanOrEqual(RUNS);
    // Both kinds of outcome were exercised.
    expect(refusals).toBeGreaterThan(RUNS / 4);
    expect(refusals).toBeLessThan(RUNS);
  }, 300_000);
});

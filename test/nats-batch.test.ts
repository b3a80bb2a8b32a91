/**
 * NATS in batches: the events that arrive together are delivered in one
 * transaction (`engine.deliverBatch` over `store.commitBatch`), each seeing what
 * the ones before it wrote, each refused on its own; JetStream messages are acked
 * only once that transaction committed. On both stores.
 */
import { headers } from '@nats-io/transport-node';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { beforeEach, describe, expect, it } from 'vitest';
import { FlowError, ManualClock, openTaskflow, TELEMETRY_ATTRIBUTES as A, type Flow, type FlowStore, type Taskflow, type TaskflowOptions, type Wake } from '../src/index.js';
import { openSqliteStore } from '../src/runtime/store/sqlite/open.js';
import { openPostgresStore } from '../src/runtime/store/postgres/open.js';
import type { BatchCommit, BatchOutcome, Decision, Loaded } from '../src/runtime/store/contract.js';
import { consumed, usePrivateNats } from './support/private-nats.js';
import { tempPgDatabase } from './support/pg-database.js';
import { tempDbPath } from './support/temp-db.js';
import { newFlow, T0 } from './support/taskflow.js';
import { until } from './support/until.js';
import { resumedCount, waitingOnEvent } from './support/event-flows.js';

type Dialect = 'sqlite' | 'postgres';

const bus = usePrivateNats();
const opened: Taskflow[] = [];
/** How to open a store again on the database of each runtime this file opened. */
const databases = new WeakMap<Taskflow, () => Promise<FlowStore>>();


beforeEach(async () => {
  for (const tf of opened.splice(0)) await tf.close().catch(() => undefined);
  for await (const name of bus.jsm.streams.names()) await bus.jsm.streams.delete(name);
});

/** A fresh database, and how to open a store on it (again). */
async function freshDatabase(dialect: Dialect): Promise<() => Promise<FlowStore>> {
  if (dialect === 'postgres') {
    const url = await tempPgDatabase();
    return () => openPostgresStore({ connectionString: url });
  }
  const path = tempDbPath();
  return async () => openSqliteStore({ path });
}

/** Counts the batches the store commits, and can make one fail in the middle of its transaction. */
interface Spy {
  batches: number[];
  /** While > 0, each batch of more than one item fails at its second item (the disk failing mid-transaction): nothing of it is written. */
  failMidBatch: number;
}

function spied(store: FlowStore, spy: Spy): FlowStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'commitBatch') {
        return <T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> => {
          // Events only: the engine may add an item of its own that removes delivered notifications.
          spy.batches.push(items.filter((item) => item.load.waitingOn !== undefined).length);
          const failing = spy.failMidBatch > 0 && items.length > 1;
          if (failing) spy.failMidBatch--;
          const wrapped = items.map((item, i) => ({
            load: item.load,
            plan: (loaded: Loaded): Decision<T> => {
              if (failing && i === 1) throw Object.assign(new Error('disk I/O error (injected)'), { code: 'SQLITE_IOERR' });
              return item.plan(loaded);
            },
          }));
          return target.commitBatch(wrapped, claim);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function open(dialect: Dialect, options: TaskflowOptions & { spy?: Spy } = {}): Promise<Taskflow> {
  const { spy, ...rest } = options;
  const openStore = await freshDatabase(dialect);
  const store = await openStore();
  const tf = await openTaskflow({ clock: new ManualClock(T0), ...rest, store: spy ? spied(store, spy) : store });
  opened.push(tf);
  databases.set(tf, openStore);
  return tf;
}

function message(correlationId: string, payload: unknown, msgId?: string): { data: string; headers: ReturnType<typeof headers> } {
  const h = headers();
  h.set('Taskflow-Correlation-Id', correlationId);
  if (msgId) h.set('Nats-Msg-Id', msgId);
  return { data: JSON.stringify({ payload }), headers: h };
}

describe.each(['sqlite', 'postgres'] as const)('NATS in batches on %s', (dialect) => {
  it('delivers a batch in order, each event seeing the ones before it; a refused event fails alone', async () => {
    const resumes: string[] = [];
    const tf = await open(dialect, { onResume: (flow) => void resumes.push(flow.id) });
    await tf.start();
    const a = await waitingOnEvent(tf, 'orders.a', 'A-1');
    const b = await waitingOnEvent(tf, 'orders.b', 'B-1');
    const outcomes = await tf.engine.deliverBatch([
      { topic: 'orders.a', correlationId: 'A-1', eventId: 'e-1', payload: { n: 1 } },
      { topic: '', correlationId: 'X' }, // a bad key: refused alone
      { topic: 'orders.a', correlationId: 'A-1', eventId: 'e-1', payload: { n: 2 } }, // the same id again: a duplicate
      { topic: 'orders.b', correlationId: 'B-1', eventId: 'e-2', payload: { n: 3 } },
      { topic: 'orders.b', correlationId: 'B-1', eventId: 'e-3', payload: { n: 4 } }, // B no longer waits: kept
      { topic: 'orders.c', correlationId: 'C-1', payload: 'x'.repeat(2 * 1024 * 1024) }, // over the state limit: refused alone
    ]);
    expect(outcomes.map((o) => (o.ok ? (o.result.duplicate ? 'duplicate' : o.result.kept ? 'kept' : `resumed ${o.result.resumed.length}`) : 'refused'))).toEqual([
      'resumed 1',
      'refused',
      'duplicate',
      'resumed 1',
      'kept',
      'refused',
    ]);
    for (const refused of [outcomes[1]!, outcomes[5]!]) {
      expect(refused.ok).toBe(false);
      if (!refused.ok) expect(FlowError.isInstance(refused.error) && refused.error.code).toBe('invalid_input');
    }
    expect((await tf.manager.get(a.id))!.state.resume_event).toEqual({ n: 1 });
    expect((await tf.manager.get(b.id))!.state.resume_event).toEqual({ n: 3 });
    expect(await resumedCount(tf, a.id)).toBe(1);
    expect(await resumedCount(tf, b.id)).toBe(1);
    expect((await tf.store.listInbox()).map((k) => [k.topic, k.correlationId, k.events])).toEqual([['orders.b', 'B-1', 1]]);
    await until(() => resumes.length === 2);
    expect(resumes.sort()).toEqual([a.id, b.id].sort());
  });

  it('commitBatch: a plan that throws or a refused write fails only its own item; claims stop at the limit', async () => {
    const tf = await open(dialect);
    const store = tf.store;
    const flows: Flow[] = [];
    for (let i = 0; i < 3; i++) flows.push(await tf.manager.startRunning((await tf.manager.createManaged(newFlow)).id));
    const wake: Wake = { reason: 'signal', at: new Date(T0) };
    const touch = (flow: Flow, stale = false): BatchCommit<string> => ({
      load: { flowIds: [flow.id] },
      plan: (loaded) => {
        const current = loaded.flows[0]!;
        return {
          result: `${flow.id}@${current.revision}`,
          writes: [
            {
              flow: { ...current, revision: current.revision + 1, state: { touched: current.revision } },
              fromRevision: stale ? current.revision + 5 : current.revision,
              events: [{ kind: 'resumed', payload: { reason: 'signal' } }],
              wake,
            },
          ],
        };
      },
    });
    const [r0, r1, r2] = flows.map((f) => f.revision);
    const outcomes = await store.commitBatch<string>(
      [
        touch(flows[0]!),
        {
          load: {},
          plan: () => {
            throw new Error('the plan refuses');
          },
        },
        touch(flows[1]!, true), // a stale revision: the write is refused
        touch(flows[0]!), // sees the first item's write
        touch(flows[2]!),
      ],
      { leaseUntil: T0 + 30_000, limit: 2 },
    );
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, false, true, true]);
    expect(outcomes[3]).toMatchObject({ ok: true, result: `${flows[0]!.id}@${r0! + 1}` });
    expect(outcomes.reduce((n, o) => n + (o.ok ? o.claimed.length : 0), 0)).toBe(2);
    expect(outcomes[4]).toMatchObject({ ok: true, claimed: [] });
    expect((await store.getFlow(flows[0]!.id))!.revision).toBe(r0! + 2);
    expect((await store.getFlow(flows[1]!.id))!.revision).toBe(r1);
    expect((await store.getFlow(flows[2]!.id))!.revision).toBe(r2! + 1);
    expect((await store.listEvents(flows[1]!.id)).some((e) => e.kind === 'resumed')).toBe(false);
    // Three wakes queued: two claimed by the batch, one left for any engine.
    expect(await store.listNotifications(flows.map((f) => f.id))).toHaveLength(3);
  });

  it('commits a JetStream backlog in batches: good, malformed, duplicate and same-flow events each get their own outcome', async () => {
    const spy: Spy = { batches: [], failMidBatch: 0 };
    const resumes: string[] = [];
    const tf = await open(dialect, { spy, onResume: (flow) => void resumes.push(flow.id), nats: { servers: bus.server.url, subjects: ['orders.>'] } });
    await tf.start();
    const flows: Flow[] = [];
    for (let i = 0; i < 40; i++) flows.push(await waitingOnEvent(tf, 'orders.paid', `O-${i}`));
    // An event already delivered once: its id is remembered.
    const first = message('O-0', { n: 0 }, 'msg-0');
    await bus.js.publish('orders.paid', first.data, { headers: first.headers });
    await until(() => resumes.length === 1);
    await tf.close();
    spy.batches.length = 0;

    // While the runtime is away the stream fills: a backlog the next pull brings at once.
    for (let i = 1; i < 40; i++) {
      const m = message(`O-${i}`, { n: i }, `msg-${i}`);
      await bus.js.publish('orders.paid', m.data, { headers: m.headers });
    }
    await bus.js.publish('orders.paid', 'not json, no correlation id');
    const again = message('O-5', { n: 'second' }, 'msg-5b'); // the same flow twice: kept, as it no longer waits
    await bus.js.publish('orders.paid', again.data, { headers: again.headers });
    await bus.jsm.streams.update('TASKFLOW', { duplicate_window: 1_000_000_000 }); // 1 s, so msg-0 enters the stream again
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await bus.js.publish('orders.paid', first.data, { headers: first.headers });

    const reopened = await openTaskflow({ clock: new ManualClock(T0), store: spied(await reopen(dialect, tf), spy), onResume: (flow) => void resumes.push(flow.id), nats: { servers: bus.server.url, subjects: ['orders.>'] } });
    opened.push(reopened);
    await reopened.start();
    await consumed(bus);
    await until(() => resumes.length === 40);
    expect(new Set(resumes).size).toBe(40);
    for (const flow of flows) expect(await resumedCount(reopened, flow.id)).toBe(1);
    expect((await reopened.manager.get(flows[5]!.id))!.state.resume_event).toEqual({ n: 5 });
    expect((await reopened.store.listInbox()).map((k) => [k.correlationId, k.events])).toEqual([['O-5', 1]]);
    // 42 messages (one terminated before any commit), in far fewer transactions.
    expect(spy.batches.reduce((n, size) => n + size, 0)).toBe(41);
    expect(Math.max(...spy.batches)).toBeGreaterThan(1);
    expect((await bus.jsm.streams.info('TASKFLOW')).state.messages).toBe(0);
  });

  it('acks nothing of a batch whose transaction failed: it is redelivered and lands once, with no lost and no double resume', async () => {
    const spy: Spy = { batches: [], failMidBatch: 0 };
    const resumes: string[] = [];
    const tf = await open(dialect, { spy, onResume: (flow) => void resumes.push(flow.id), nats: { servers: bus.server.url, subjects: ['orders.>'] } });
    await tf.start();
    const flows: Flow[] = [];
    for (let i = 0; i < 30; i++) flows.push(await waitingOnEvent(tf, 'orders.paid', `P-${i}`));
    await tf.close();
    for (let i = 0; i < 30; i++) {
      const m = message(`P-${i}`, { n: i });
      await bus.js.publish('orders.paid', m.data, { headers: m.headers });
    }
    spy.failMidBatch = 1;
    spy.batches.length = 0;
    const reopened = await openTaskflow({ clock: new ManualClock(T0), store: spied(await reopen(dialect, tf), spy), onResume: (flow) => void resumes.push(flow.id), nats: { servers: bus.server.url, subjects: ['orders.>'] } });
    opened.push(reopened);
    await reopened.start();
    await until(() => resumes.length === 30, 60_000);
    await consumed(bus);
    expect(spy.failMidBatch).toBe(0); // a batch did fail in the middle of its transaction
    expect(new Set(resumes).size).toBe(30);
    for (const flow of flows) {
      expect(await resumedCount(reopened, flow.id)).toBe(1);
      expect((await reopened.manager.get(flow.id))!.status).toBe('running');
    }
    expect(await reopened.store.listInbox()).toEqual([]);
  });
});

describe('NATS in batches, telemetry', () => {
  it('a batch records a span per event, each with its own outcome', async () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }).getTracer('test');
    const tf = await open('sqlite', { telemetry: { tracer } });
    const flow = await waitingOnEvent(tf, 'payments.received', 'INV-42');
    await tf.engine.deliverBatch([
      { topic: 'payments.received', correlationId: 'INV-42' },
      { topic: 'payments.received', correlationId: 'INV-43' },
      { topic: '', correlationId: 'INV-44' },
    ]);
    const spans = exporter.getFinishedSpans().filter((span) => span.name.startsWith('taskflow.deliver'));
    expect(spans).toHaveLength(3);
    const byKey = new Map(spans.map((span) => [span.attributes[A.correlationId], span]));
    expect(byKey.get('INV-42')!.attributes).toMatchObject({ [A.outcome]: 'resumed', [A.flowId]: flow.id });
    expect(byKey.get('INV-43')!.attributes).toMatchObject({ [A.outcome]: 'kept', [A.resumed]: 0 });
    expect(byKey.get('INV-44')!.status.code).toBe(2); // ERROR: refused as invalid input
  });
});

/** A second store on the database the runtime `tf` used (closed by now). */
async function reopen(dialect: Dialect, tf: Taskflow): Promise<FlowStore> {
  const again = databases.get(tf);
  if (!again) throw new Error(`no database recorded for this ${dialect} runtime`);
  return again();
}

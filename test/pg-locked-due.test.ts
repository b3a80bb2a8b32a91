import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { openTaskflow, type Flow, type FlowStore, type Taskflow } from '../src/index.js';
import { openPostgresStore } from '../src/runtime/store/postgres/open.js';
import { tempPgDatabase } from './support/pg-database.js';
import { newFlow } from './support/taskflow.js';
import { until } from './support/until.js';

/**
 * Issue 9.14 on PostgreSQL: due rows that another engine holds (`SKIP LOCKED`
 * finds nothing while the next wake time is already past) must not make an
 * engine re-arm its timer at 0 ms in a loop.
 */

const opened: { close(): Promise<void> }[] = [];

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

/** A view of `store` that counts how often the engine asks for the next wake time. */
function counting(store: FlowStore): { store: FlowStore; asks(): number } {
  let asks = 0;
  const view = new Proxy(store, {
    get(target, property) {
      if (property === 'nextWakeAt') {
        return () => {
          asks++;
          return target.nextWakeAt();
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: view, asks: () => asks };
}

async function timerFlow(tf: Taskflow, at: number): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, { kind: 'timer', at });
}

describe('a due flow locked by another engine', { timeout: 120_000 }, () => {
  it('does not make the engine spin while the lock is held, and is resumed once it is released', async () => {
    const url = await tempPgDatabase();
    const view = counting(await openPostgresStore({ connectionString: url }));
    const resumed: string[] = [];
    // A long sweep: only the engine's own timer can make it look again.
    const tf = await openTaskflow({ store: view.store, tickInterval: '1h', onResume: (flow) => void resumed.push(flow.id) });
    opened.push(tf);
    await tf.start();

    // Another engine's transaction holds the flow's row, as it would while resuming it.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    opened.push({ close: () => holder.end() });
    const at = Date.now() + 3_000;
    const flow = await timerFlow(tf, at);
    await holder.query('BEGIN');
    const { rows } = await holder.query<{ status: string }>('SELECT status FROM flows WHERE id = $1 FOR UPDATE', [flow.id]);
    expect(rows[0]?.status, 'the row was locked before its timer fired').toBe('waiting');

    // The timer fires and finds the row locked; the engine is then watched for a second.
    await until(() => Date.now() > at + 200, 10_000);
    const before = view.asks();
    await new Promise((r) => setTimeout(r, 1_000));
    const asked = view.asks() - before;
    expect(asked, `asked for the next wake time ${asked} times in a second`).toBeLessThan(20);
    expect(resumed).toEqual([]);

    await holder.query('ROLLBACK');
    await until(() => resumed.includes(flow.id), 20_000);
  });
});

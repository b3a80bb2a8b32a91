import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { openTaskflow } from '../src/index.js';
import { prepareStatements } from '../src/runtime/store/sqlite/statements.js';
import type { SqliteFlowStore } from '../src/runtime/store/sqlite/store.js';
import { goal, median, ms, num, quantile, ratio, tempFolder, type BenchOptions, type BenchResult } from './report.js';
import { rawConnection } from './seed.js';

const DAY = 86_400_000;
/** any-of within this factor of a single-key wait. */
const GOAL_RATIO = 2;

/**
 * Bulk-inserts `count` waiting flows with raw SQL, as `setWaiting` leaves them:
 * even rows wait on one event key (`invoice.paid/INV-i`, in the flows row),
 * odd rows on the first of four conditions (`invoice.paid/INV-i`,
 * `invoice.voided/INV-i`, the `cancel_order` signal, a timer), whose two keys
 * go to `flow_wait_keys`.
 */
function seedMixed(sqlite: Database.Database, count: number, now: number): void {
  const flow = sqlite.prepare(
    `INSERT INTO flows (id, controller_id, goal, owner_session_key, requester_origin, current_step, state_json,
       wait_json, status, cancel_requested, revision, idempotency_key, wake_at, wait_topic, wait_correlation_id, created_at, updated_at)
     VALUES (?, 'bench/controller', 'ship the order once its invoice is paid', ?, NULL, 'await-payment', ?, ?, 'waiting', 0, 2, NULL, ?, ?, ?, ?, ?)`,
  );
  const key = sqlite.prepare('INSERT INTO flow_wait_keys (flow_id, topic, correlation_id) VALUES (?, ?, ?)');
  sqlite.transaction(() => {
    for (let i = 0; i < count; i++) {
      const id = randomUUID();
      const owner = `agent:bench:session:${i % 1000}`;
      const state = `{"order":${i}}`;
      const correlationId = `INV-${i}`;
      if (i % 2 === 0) {
        flow.run(id, owner, state, JSON.stringify({ kind: 'external_event', topic: 'invoice.paid', correlationId }), null, 'invoice.paid', correlationId, now, now);
        continue;
      }
      const at = now + 10 * DAY + i;
      const wait = {
        kind: 'any',
        of: [
          { kind: 'external_event', topic: 'invoice.paid', correlationId },
          { kind: 'external_event', topic: 'invoice.voided', correlationId },
          { kind: 'manual', signal: 'cancel_order' },
          { kind: 'timer', at: new Date(at).toISOString() },
        ],
      };
      flow.run(id, owner, state, JSON.stringify(wait), at, null, null, now, now);
      key.run(id, 'invoice.paid', correlationId);
      key.run(id, 'invoice.voided', correlationId);
    }
  })();
}

/** Event matching for an any-of wait beside a single-key wait, among a million waiting flows. */
export async function benchAnyOf(options: BenchOptions): Promise<BenchResult> {
  const size = options.quick ? 100_000 : 1_000_000;
  const iterations = options.quick ? 500 : 2_000;
  const folder = tempFolder('any-of');
  const rows: BenchResult['rows'] = [];
  try {
    const tf = await openTaskflow({ database: folder.path('any-of.db'), tickInterval: '1h', synchronous: 'normal' });
    const sqlite = rawConnection(tf);
    const now = Date.now();
    const started = performance.now();
    sqlite.pragma('cache_size = -262144');
    seedMixed(sqlite, size, now);
    sqlite.pragma('cache_size = -2000');
    sqlite.exec('ANALYZE');
    options.log(`any-of: seeded ${num(size)} waiting flows in ${ms(performance.now() - started)}`);

    // The lookup alone, as a delivery runs it (both paths, every time): indexed reads, no write.
    const q = prepareStatements((tf.store as SqliteFlowStore).db);
    const lookup = (topic: string, correlationId: string) => q.flowsWaitingOn.all({ topic, correlationId }).length + q.flowsWaitingOnAnyOf.all({ topic, correlationId }).length;
    const readSingle: number[] = [];
    const readAny: number[] = [];
    for (let n = 0; n < iterations * 5; n++) {
      const i = (n * 7919) % size;
      const single = i - (i % 2);
      const any = single + 1 < size ? single + 1 : 1;
      let t = performance.now();
      if (lookup('invoice.paid', `INV-${single}`) !== 1) throw new Error('the single-key lookup found no flow');
      readSingle.push(performance.now() - t);
      t = performance.now();
      if (lookup('invoice.voided', `INV-${any}`) !== 1) throw new Error('the any-of lookup found no flow');
      readAny.push(performance.now() - t);
    }
    rows.push(row('lookup only (flows waiting on the key, both paths)', readSingle, readAny));

    // deliver(): load under the write lock, resume the one flow, commit. Alternated, each call a different flow.
    const deliverSingle: number[] = [];
    const deliverAny: number[] = [];
    for (let n = 0; n < iterations; n++) {
      const single = 2 * n;
      const any = 2 * n + 1;
      let t = performance.now();
      let result = await tf.engine.deliver({ topic: 'invoice.paid', correlationId: `INV-${single}` });
      deliverSingle.push(performance.now() - t);
      if (result.resumed.length !== 1) throw new Error('the single-key delivery resumed no flow');
      t = performance.now();
      // The second key of the any-of wait: the one the flows row does not hold.
      result = await tf.engine.deliver({ topic: 'invoice.voided', correlationId: `INV-${any}` });
      deliverAny.push(performance.now() - t);
      if (result.resumed.length !== 1) throw new Error('the any-of delivery resumed no flow');
    }
    rows.push(row('deliver() resuming the flow', deliverSingle, deliverAny));
    await tf.close();
  } finally {
    folder.cleanup();
  }
  return {
    title: 'Any-of waits: event matching beside a single-key wait',
    rows,
    notes: [
      `${num(size)} waiting flows in one SQLite file (WAL, synchronous NORMAL so fsync does not hide the lookup), seeded by raw bulk insert, ANALYZE run: ` +
        'half wait on one event key (flows_status_topic_correlation), half on the first of 2 event keys, a signal and a timer (flow_wait_keys_key, 2 rows each).' +
        (options.quick ? ' Quick run: 100,000 flows, not 1,000,000.' : ''),
      'Every delivery looks on both paths (a key may be awaited by single and any-of waits at once); the any-of event is on the second key of its wait.',
      `Goal: any-of within ${GOAL_RATIO}× (1.x) of the single-key wait. Measured on a shared 2-core machine under load from other work: read the ratio.`,
    ],
  };
}

function row(what: string, single: number[], any: number[]): BenchResult['rows'][number] {
  const r = median(any) / median(single);
  return {
    measure: what,
    'single-key p50': ms(median(single)),
    'single-key p99': ms(quantile(single, 0.99)),
    'any-of p50': ms(median(any)),
    'any-of p99': ms(quantile(any, 0.99)),
    'ratio any-of / single': ratio(r),
    goal: `≤ ${GOAL_RATIO}×: ${goal(r <= GOAL_RATIO)}`,
  };
}

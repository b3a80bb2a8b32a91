/**
 * NATS in batches: events/s sustained through real JetStream into the store at
 * synchronous FULL, and event → onResume latency at a moderate rate, beside the
 * one-commit-per-event path measured in the same run. The baseline is the same
 * runtime whose store commits each item of a batch in a transaction of its own
 * (a view made here, in the benchmark: the runtime has no such path any more).
 * Starts its own nats-server on a free port and stops it.
 *
 *   npx tsx bench/nats-throughput.ts [--quick] [--no-pg] [--skip=per-event|batched]
 */
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { openSqliteStore, openTaskflow, type BatchCommit, type BatchOutcome, type FlowStore, type Taskflow } from '../src/index.js';
import { openPostgresStore } from '../src/postgres.js';
import { startNatsServer, type NatsServer } from '../test/support/nats-server.js';
import { goal, ms, num, quantile, ratio, sleep, tempFolder, type BenchOptions, type BenchResult, type Headline, type Row } from './report.js';
import { rawConnectionAt, seedWaitingFlows } from './seed.js';
import { pgReachable, tempPgDatabase } from './pg-support.js';

const TOPIC = 'invoice.paid';
const GOAL_EVENTS_PER_S = 10_000;
const GOAL_P99_MS = 5;

interface Sizes {
  /** Events published back to back for the sustained figure (each resumes one waiting flow). */
  burst: number;
  /** Events timed at the moderate rate. */
  paced: number;
  /** The moderate rate, events/s. */
  rate: number;
  /** The burst on PostgreSQL (smaller: its commitBatch here makes a round trip per statement). */
  pgBurst: number;
  /**
   * Events sent and waited for before the timed burst, same way, untimed: a fresh
   * process otherwise spends the burst's first thousands of events compiling and
   * optimising the code on the path (measured: 19 µs CPU an event for the ceiling
   * warm, 70 to 80 µs over its first 3,000).
   */
  warmup: number;
}

function sizes(quick: boolean): Sizes {
  return quick ? { burst: 3_000, paced: 200, rate: 100, pgBurst: 1_000, warmup: 3_000 } : { burst: 10_000, paced: 1_000, rate: 100, pgBurst: 2_000, warmup: 5_000 };
}

type Path = 'batched' | 'per-event';
type Dialect = 'sqlite' | 'postgres';

/** The store as the one-commit-per-event path used it: every item of a batch in a transaction of its own. */
function oneCommitPerEvent(store: FlowStore): FlowStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'commitBatch') {
        return async <T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }): Promise<BatchOutcome<T>[]> => {
          const outcomes: BatchOutcome<T>[] = [];
          let left = claim?.limit ?? Infinity;
          for (const item of items) {
            const [outcome] = await target.commitBatch([item], claim ? { leaseUntil: claim.leaseUntil, limit: left } : undefined);
            if (outcome!.ok) left -= outcome!.claimed.length;
            outcomes.push(outcome!);
          }
          return outcomes;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** `count` flows waiting on (invoice.paid, INV-i), in one statement. */
async function seedPg(url: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const now = Date.now();
  await client.query(
    `INSERT INTO flows (id, controller_id, goal, owner_session_key, requester_origin, current_step, state_json, wait_json, status,
       cancel_requested, revision, idempotency_key, wake_at, wait_topic, wait_correlation_id, created_at, updated_at)
     SELECT gen_random_uuid()::text, 'bench/controller', 'ship the order once its invoice is paid', 'agent:bench:session:' || (i % 1000),
       NULL, 'await-payment', '{"order":' || i || '}', '{"kind":"external_event","topic":"${TOPIC}","correlationId":"INV-' || i || '"}',
       'waiting', 0, 2, NULL, NULL, '${TOPIC}', 'INV-' || i, $1, $1
     FROM generate_series(0, $2 - 1) AS i`,
    [now, count],
  );
  await client.query('ANALYZE flows');
  await client.end();
}

interface Run {
  perSecond: number;
  /** CPU time of this process (publisher, runtime, store client) per event of the burst, µs. */
  cpuPerEvent: number;
  p50: number;
  p99: number;
  commits: number;
}

/** One runtime on a fresh database with every flow waiting: a burst, then events at a moderate rate. */
async function run(server: NatsServer, publisher: NatsConnection, dialect: Dialect, path: Path, sizes: Sizes): Promise<Run> {
  const size = dialect === 'postgres' ? { ...sizes, burst: sizes.pgBurst, warmup: Math.min(sizes.warmup, sizes.pgBurst / 5) } : sizes;
  const total = size.warmup + size.burst + size.paced;
  const resumedAt = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const folder = tempFolder('nats-throughput');
  const database = dialect === 'postgres' ? await tempPgDatabase('nats') : undefined;
  let tf: Taskflow | undefined;
  let commits = 0;
  try {
    let store: FlowStore = dialect === 'postgres' ? await openPostgresStore({ connectionString: database!.url }) : openSqliteStore({ path: folder.path('nats.db'), synchronous: 'full' });
    if (dialect === 'postgres') await seedPg(database!.url, total);
    const counted = store;
    store = new Proxy(counted, {
      get(target, property) {
        if (property === 'commitBatch') {
          return <T>(items: readonly BatchCommit<T>[], claim?: { leaseUntil: number; limit?: number }) => {
            commits++;
            return target.commitBatch(items, claim);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    if (path === 'per-event') store = oneCommitPerEvent(store);
    tf = await openTaskflow({
      store,
      tickInterval: '1h',
      resumeConcurrency: 256,
      nats: { servers: server.url, subjects: ['invoice.>'], stream: 'BENCH_T', durable: 'bench' },
      onResume: (_flow, wake) => {
        const key = wake.correlationId ?? '';
        resumedAt.set(key, performance.now());
        waiters.get(key)?.();
      },
    });
    if (dialect === 'sqlite') {
      const raw = rawConnectionAt(folder.path('nats.db'));
      seedWaitingFlows(raw, total, { eventEvery: 1, wakeAt: () => Date.now() + 86_400_000 });
      raw.close();
    }
    await tf.start();
    const send = (i: number) => publisher.publish(TOPIC, JSON.stringify({ correlation_id: `INV-${i}`, payload: { amount: i } }));

    /** Events `from` … `from + count - 1` published back to back; resolves once every one resumed its flow. */
    const burst = async (from: number, count: number): Promise<void> => {
      const allIn = new Promise<void>((resolve) => {
        let left = count;
        for (let i = from; i < from + count; i++) waiters.set(`INV-${i}`, () => void (--left === 0 && resolve()));
      });
      for (let i = from; i < from + count; i++) {
        send(i);
        if ((i - from) % 500 === 499) await publisher.flush();
      }
      await publisher.flush();
      await allIn;
    };
    await burst(0, size.warmup);
    waiters.clear();
    await sleep(200);

    // Sustained: every event published back to back; from the first publish to the last onResume.
    commits = 0;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await burst(size.warmup, size.burst);
    const perSecond = (size.burst * 1000) / (performance.now() - started);
    const cpu = process.cpuUsage(cpuBefore);
    const cpuPerEvent = (cpu.user + cpu.system) / size.burst;
    const burstCommits = commits;
    waiters.clear();
    await sleep(200);

    // Moderate rate: one event every 1000/rate ms, each timed from its publish to its onResume.
    const latencies: number[] = [];
    const gap = 1000 / size.rate;
    const pending: Promise<void>[] = [];
    const began = performance.now();
    for (let k = 0; k < size.paced; k++) {
      const i = size.warmup + size.burst + k;
      const key = `INV-${i}`;
      const due = began + k * gap;
      while (performance.now() < due) await sleep(Math.max(0, Math.min(1, due - performance.now())));
      const sent = performance.now();
      pending.push(new Promise<void>((resolve) => waiters.set(key, () => {
        latencies.push(performance.now() - sent);
        resolve();
      })));
      send(i);
    }
    await Promise.all(pending);
    return { perSecond, cpuPerEvent, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), commits: burstCommits };
  } finally {
    await tf?.close();
    folder.cleanup();
    await database?.drop();
    const jsm = await jetstreamManager(publisher);
    await jsm.streams.delete('BENCH_T').catch(() => false);
  }
}

/** The ceiling: the same events through a work-queue stream, pulled as the bridge pulls and acked at once, no store. */
async function rawJetStream(server: NatsServer, publisher: NatsConnection, count: number, warmup: number): Promise<{ perSecond: number; cpuPerEvent: number }> {
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.add({ name: 'RAW_T', subjects: ['raw.>'], retention: RetentionPolicy.Workqueue });
    await jsm.consumers.add('RAW_T', { durable_name: 'raw', ack_policy: AckPolicy.Explicit });
    const consumer = await jetstream(nc).consumers.get('RAW_T', 'raw');
    const pass = async (from: number, n: number): Promise<void> => {
      let got = 0;
      const consuming = (async () => {
        while (got < n) {
          const batch = await consumer.fetch({ max_messages: 512, expires: 1_000 });
          for await (const msg of batch) {
            JSON.parse(msg.string());
            msg.ack();
            if (++got === n) break;
          }
        }
      })();
      for (let i = from; i < from + n; i++) {
        publisher.publish('raw.paid', JSON.stringify({ correlation_id: `INV-${i}`, payload: { amount: i } }));
        if ((i - from) % 500 === 499) await publisher.flush();
      }
      await publisher.flush();
      await consuming;
    };
    await pass(0, warmup);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await pass(warmup, count);
    const perSecond = (count * 1000) / (performance.now() - started);
    const cpu = process.cpuUsage(cpuBefore);
    return { perSecond, cpuPerEvent: (cpu.user + cpu.system) / count };
  } finally {
    await jsm.streams.delete('RAW_T').catch(() => false);
    await nc.close();
  }
}

/** The benchmark `bench/run.ts` loads as `nats-throughput`. */
export async function benchNatsThroughput(options: Partial<BenchOptions> = {}): Promise<BenchResult> {
  const quick = options.quick ?? process.argv.includes('--quick');
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const size = sizes(quick);
  const dialects: Dialect[] = ['sqlite'];
  if (!process.argv.includes('--no-pg') && (await pgReachable())) dialects.push('postgres');
  const server = await startNatsServer();
  const publisher = await connect({ servers: server.url });
  const rows: Row[] = [];
  try {
    const ceiling = await rawJetStream(server, publisher, size.burst, size.warmup);
    log(`nats throughput raw JetStream: ${num(ceiling.perSecond)} events/s (${num(ceiling.cpuPerEvent)} µs CPU an event)`);
    rows.push({
      store: 'none',
      path: 'ceiling: JetStream pull + ack, no store (same run)',
      events: num(size.burst),
      'events/s sustained': num(ceiling.perSecond),
      'vs baseline': '',
      'commits for the burst': '',
      'CPU per event': `${num(ceiling.cpuPerEvent)} µs`,
      [`p50 at ${size.rate}/s`]: '',
      [`p99 at ${size.rate}/s`]: '',
      goal: '',
    });
    for (const dialect of dialects) {
      const results = new Map<Path, Run>();
      for (const path of (['per-event', 'batched'] as const).filter((p) => !process.argv.includes(`--skip=${p}`))) {
        const result = await run(server, publisher, dialect, path, size);
        results.set(path, result);
        log(`nats throughput ${dialect} ${path}: ${num(result.perSecond)} events/s (${num(result.commits)} commits, ${num(result.cpuPerEvent)} µs CPU an event), p50 ${ms(result.p50)}, p99 ${ms(result.p99)} at ${size.rate}/s`);
      }
      const base = results.get('per-event') ?? results.get('batched')!;
      for (const [path, result] of results) {
        rows.push({
          store: dialect === 'sqlite' ? 'SQLite, synchronous FULL' : 'PostgreSQL (shared server)',
          path: path === 'batched' ? 'batched: one transaction per pulled batch' : 'baseline: one transaction per event (same run)',
          events: num(dialect === 'postgres' ? size.pgBurst : size.burst),
          'events/s sustained': num(result.perSecond),
          'vs baseline': ratio(result.perSecond / base.perSecond),
          'commits for the burst': num(result.commits),
          'CPU per event': `${num(result.cpuPerEvent)} µs`,
          [`p50 at ${size.rate}/s`]: ms(result.p50),
          [`p99 at ${size.rate}/s`]: ms(result.p99),
          // The goal is set for SQLite at FULL; the PostgreSQL row is shown for comparison.
          goal:
            path === 'batched' && dialect === 'sqlite'
              ? `≥ ${num(GOAL_EVENTS_PER_S)}/s: ${goal(result.perSecond >= GOAL_EVENTS_PER_S)}; p99 < ${GOAL_P99_MS} ms: ${goal(result.p99 < GOAL_P99_MS)}`
              : '',
        });
      }
    }
  } finally {
    await publisher.close();
    await server.dispose();
  }
  return {
    title: 'NATS JetStream in batches: events/s sustained and event → resume latency',
    rows,
    notes: [
      'Ceiling: the same publishes into a work-queue stream of their own, pulled as the bridge pulls (fetch of 512) and acked at once: what this machine\'s JetStream sustains with no store behind it.',
      'nats-server started by the benchmark on a free port, JetStream file store in a temp folder; publisher, runtime and store client in one Node.js process.',
      `Sustained: after ${num(size.warmup)} events sent the same way and not timed (warm-up: a fresh process compiles and optimises the path over its first thousands of events), ${num(size.burst)} events published back to back (plain publishes on \`${TOPIC}\`, captured by the runtime's stream) to as many waiting flows; events/s = events ÷ time from the first publish to the last onResume. Every event resumes a flow and is acked after its transaction committed.`,
      'CPU per event: user + system time of the benchmark process (publisher, bridge, engine, SQLite or the pg client; not nats-server nor PostgreSQL) over the burst, ÷ events: what the work costs whatever the machine\'s load, unlike events/s. On the ceiling row: the publisher, the pull, a JSON.parse and an ack an event.',
      `Latency: then ${num(size.paced)} events paced at ${size.rate}/s, each timed from its publish to onResume.`,
      'Batched: what arrived while the previous transaction committed goes into the next one (at most 256), so batches grow with the load and a lone event commits alone. Baseline: the same runtime with each item in a transaction of its own (one fsync per event), the path the bridge had before.',
      'SQLite at synchronous FULL (fsync per commit, the default); the goals are set for it. PostgreSQL, for comparison: the shared server of the machine, a fresh database per run (its fsync settings are the server\'s), a smaller burst; its commitBatch takes a savepoint and two round trips (load, then write) per event inside the batch\'s one transaction.',
    ],
  };
}

/** The headline `--against` compares: the batched path on SQLite FULL, sustained events/s, CPU an event, latency at a moderate rate. */
export async function headlineNatsThroughput(options: BenchOptions): Promise<Headline> {
  const size = sizes(options.quick);
  const server = await startNatsServer();
  const publisher = await connect({ servers: server.url });
  try {
    const result = await run(server, publisher, 'sqlite', 'batched', size);
    options.log(`nats throughput: ${num(result.perSecond)} events/s, ${num(result.cpuPerEvent)} µs CPU an event, p50 ${ms(result.p50)}, p99 ${ms(result.p99)} at ${size.rate}/s`);
    return {
      title: 'NATS JetStream into SQLite FULL',
      metrics: [
        { name: `events/s sustained (${num(size.burst)} published back to back)`, value: result.perSecond, unit: 'number', better: 'higher' },
        { name: 'CPU of this process per event, µs', value: result.cpuPerEvent, unit: 'number', better: 'lower' },
        { name: `publish → onResume p50 at ${size.rate}/s`, value: result.p50, unit: 'ms', better: 'lower' },
        { name: `publish → onResume p99 at ${size.rate}/s`, value: result.p99, unit: 'ms', better: 'lower' },
      ],
      notes: [
        `A nats-server of its own; ${num(size.warmup)} events untimed, then ${num(size.burst)} published back to back to as many flows waiting on SQLite FULL (timed from the first publish to the last onResume), then ${num(size.paced)} paced at ${size.rate}/s (each publish → onResume). CPU: user + system time of the benchmark process over the burst, the figure least moved by a loaded machine.`,
      ],
    };
  } finally {
    await publisher.close();
    await server.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { toMarkdown } = await import('./report.js');
  const result = await benchNatsThroughput({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${toMarkdown(result)}\n`);
  process.exit(0);
}

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FlowError, openTaskflow, type Flow, type Logger, type Taskflow, type Wake } from '../src/index.js';
import { openPostgresStore } from '../src/runtime/store/postgres/open.js';
import type { PostgresFlowStore, PostgresStoreOptions } from '../src/runtime/store/postgres/store.js';
import { startNatsServer } from './support/nats-server.js';
import { startPgCluster, type PgCluster } from './support/pg-cluster.js';
import { newFlow } from './support/taskflow.js';
import { until } from './support/until.js';

/**
 * PostgreSQL restarted, killed, hung under a live runtime (issue 9.1). Every test
 * runs against a private cluster this file starts, stops and freezes by PID.
 */

let cluster: PgCluster;
let url: string;
const opened: { close(): Promise<void> }[] = [];

/** Errors that escaped the runtime: the process would have died of them. */
const escaped: unknown[] = [];
const onEscape = (error: unknown): void => void escaped.push(error);

beforeAll(async () => {
  cluster = await startPgCluster();
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
});

afterAll(async () => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  await cluster?.dispose();
});

beforeEach(async () => {
  escaped.length = 0;
  if (cluster.pid === undefined) await cluster.start();
  url = await cluster.createDatabase();
});

afterEach(async () => {
  cluster.thaw();
  if (cluster.pid === undefined) await cluster.start();
  for (const item of opened.splice(0).reverse()) await item.close().catch(() => undefined);
  expect(escaped).toEqual([]);
});

/** Short timeouts, so a hung server costs the test seconds, not minutes. */
const FAST: PostgresStoreOptions = { queryTimeout: 2_000, connectTimeout: 2_000 };

async function openStore(options: PostgresStoreOptions = {}): Promise<PostgresFlowStore> {
  const store = await openPostgresStore({ connectionString: url, ...FAST, ...options });
  opened.push(store);
  return store;
}

async function openRuntime(onResume?: (flow: Flow, wake: Wake) => void): Promise<Taskflow> {
  const tf = await openTaskflow({ store: await openStore(), tickInterval: '200ms', ...(onResume ? { onResume } : {}) });
  opened.push(tf);
  await tf.start();
  return tf;
}

async function caught(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

function expectStorageError(error: unknown): asserts error is FlowError {
  expect(FlowError.isInstance(error) ? error.code : error).toBe('storage');
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  await work();
  return Date.now() - started;
}

/**
 * Creates flows that wait on a short timer, in `workers` loops, until `stop()`.
 * Every call that failed must have failed with `storage`; every wait that
 * committed is recorded with the revision its caller saw.
 */
function loadOf(tf: Taskflow, workers = 4) {
  const committed = new Map<string, number>();
  const failures: unknown[] = [];
  let running = true;
  let successesSince = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        const flow = await tf.manager.createManaged(newFlow);
        committed.set(flow.id, flow.revision);
        const started = await tf.manager.startRunning(flow.id);
        committed.set(flow.id, started.revision);
        const waiting = await tf.manager.setWaiting(flow.id, { kind: 'timer', at: Date.now() + 50 });
        committed.set(flow.id, waiting.revision);
        successesSince++;
      } catch (error) {
        failures.push(error);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  return {
    committed,
    failures,
    resetSuccesses: () => void (successesSince = 0),
    successes: () => successesSince,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('PostgreSQL restarted under a running runtime', { timeout: 120_000 }, () => {
  it('fails calls with storage during the outage, keeps every commit and resumes every timer once the server is back', async () => {
    const resumed = new Set<string>();
    const tf = await openRuntime((flow) => void resumed.add(flow.id));
    const load = loadOf(tf);
    await until(() => load.successes() >= 10, 30_000);

    await cluster.stop('immediate');
    await until(() => load.failures.length >= 4, 30_000);
    await cluster.start();
    load.resetSuccesses();
    await until(() => load.successes() >= 10, 60_000);
    await load.stop();

    for (const failure of load.failures) expectStorageError(failure);
    for (const [id, revision] of load.committed) {
      const flow = await tf.manager.get(id);
      expect(flow, `flow ${id} committed at revision ${revision}`).toBeDefined();
      expect(flow!.revision).toBeGreaterThanOrEqual(revision);
    }
    // Every flow left waiting on its (short) timer is resumed by the engine once the server is back.
    await until(async () => (await tf.manager.listByStatus('waiting')).length === 0, 60_000);
    const waited = [...load.committed].filter(([, revision]) => revision >= 2).map(([id]) => id);
    await until(() => waited.every((id) => resumed.has(id)), 60_000);
  });

  it('keeps working after the postmaster is killed and the cluster started again', async () => {
    const tf = await openRuntime();
    const before = await tf.manager.createManaged(newFlow);
    await cluster.kill();
    expectStorageError(await caught(tf.manager.get(before.id)));
    await cluster.start();
    await until(async () => (await tf.manager.get(before.id).catch(() => undefined)) !== undefined, 30_000);
    const after = await tf.manager.startRunning(before.id);
    expect(after.status).toBe('running');
  });

  it('closes within a bounded time while the server is down', async () => {
    const tf = await openRuntime();
    const load = loadOf(tf, 2);
    await until(() => load.successes() >= 3, 30_000);
    await cluster.stop('immediate');
    await until(() => load.failures.length >= 2, 30_000);
    const elapsed = await timed(() => tf.close());
    await load.stop();
    expect(elapsed).toBeLessThan(20_000);
    for (const failure of load.failures) expectStorageError(failure);
  });

  it('closes within a bounded time while the server hangs, failing the calls in flight with storage', async () => {
    const tf = await openRuntime();
    const load = loadOf(tf, 3);
    await until(() => load.successes() >= 3, 30_000);
    cluster.freeze();
    const inFlight = caught(tf.manager.createManaged(newFlow));
    const elapsed = await timed(() => tf.close());
    await load.stop();
    expect(elapsed).toBeLessThan(20_000);
    expectStorageError(await inFlight);
    for (const failure of load.failures) expectStorageError(failure);
  });

  it('fails a call with storage when the server stops answering, and serves the next one once it answers again', async () => {
    const store = await openStore();
    const tf = await openTaskflow({ store });
    opened.push(tf);
    const flow = await tf.manager.createManaged(newFlow);
    cluster.freeze();
    const error = await caught(tf.manager.get(flow.id));
    expectStorageError(error);
    expect(error.message).toMatch(/did not answer within 2000 ms/);
    cluster.thaw();
    expect((await tf.manager.get(flow.id))?.id).toBe(flow.id);
  });
});

describe('storage errors from PostgreSQL', { timeout: 120_000 }, () => {
  it('reports a server that is down as storage, with its address and what to check, on every store method', async () => {
    const store = await openStore();
    await cluster.stop('fast');
    const id = '00000000-0000-4000-8000-000000000000';
    const calls: [string, () => Promise<unknown>][] = [
      ['commit', () => store.commit({ flowIds: [id] }, () => ({ result: undefined }))],
      ['commitClaiming', () => store.commitClaiming({ flowIds: [id] }, () => ({ result: undefined }), Date.now() + 1_000)],
      ['getFlow', () => store.getFlow(id)],
      ['listByOwner', () => store.listByOwner('agent:a:session:1')],
      ['listByStatus', () => store.listByStatus('waiting')],
      ['listSteps', () => store.listSteps(id)],
      ['listEvents', () => store.listEvents(id)],
      ['lastEvents', () => store.lastEvents([id], 'resumed')],
      ['pruneTerminal', () => store.pruneTerminal(Date.now())],
      ['nextWakeAt', () => store.nextWakeAt()],
      ['waitingTopics', () => store.waitingTopics()],
      ['claimNotifications', () => store.claimNotifications(Date.now(), 1_000, 10)],
      ['completeNotifications', () => store.completeNotifications([{ id: 1, leaseUntil: Date.now() }])],
      ['retryNotification', () => store.retryNotification({ id: 1, leaseUntil: Date.now() }, Date.now(), 'handler failed')],
      ['parkNotification', () => store.parkNotification({ id: 1, leaseUntil: Date.now() }, Date.now(), 'handler failed')],
      ['releaseNotifications', () => store.releaseNotifications([{ id: 1, leaseUntil: Date.now() }], Date.now())],
      ['requeueDead', () => store.requeueDead(id, Date.now())],
      ['listNotifications', () => store.listNotifications([id])],
      ['listDeadNotifications', () => store.listDeadNotifications(10)],
      ['nextNotificationAt', () => store.nextNotificationAt()],
      ['listInbox', () => store.listInbox()],
      ['purgeExpiredEvents', () => store.purgeExpiredEvents(Date.now())],
    ];
    for (const [name, call] of calls) {
      const error = await caught(call());
      expectStorageError(error);
      expect(error.message, name).toContain(`127.0.0.1:${cluster.port}`);
      expect(error.message, name).toMatch(/is the server running/);
    }
  });

  it('reports a connection the server terminates mid-transaction as storage, and the store goes on', async () => {
    const store = await openStore();
    const tf = await openTaskflow({ store });
    opened.push(tf);
    const flow = await tf.manager.createManaged(newFlow);
    // Another session locks the flow, so the commit waits on it; then an administrator terminates the waiting backend.
    const { default: pg } = await import('pg');
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM flows WHERE id = $1 FOR UPDATE', [flow.id]);
      const update = caught(tf.manager.updateState(flow.id, { step: 1 }));
      let waiting: number | undefined;
      await until(async () => {
        const { rows } = await holder.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        );
        waiting = rows[0]?.pid;
        return waiting !== undefined;
      }, 30_000);
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query('SELECT pg_terminate_backend($1)', [waiting]);
      await admin.end();
      const error = await update;
      expectStorageError(error);
      expect(error.message).toMatch(/connection to PostgreSQL .* was closed by the server \(57P01/);
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    expect((await tf.manager.updateState(flow.id, { step: 2 })).state).toEqual({ step: 2 });
  });
});

describe('watching foreign commits across a restart', { timeout: 120_000 }, () => {
  it('hears commits of another store again once the server is back', async () => {
    const watcher = await openStore();
    const writer = await openTaskflow({ store: await openStore() });
    opened.push(writer);
    let calls = 0;
    watcher.watchForeignCommits(() => void calls++);
    await until(() => calls === 1);
    await cluster.stop('immediate');
    await cluster.start();
    // Back and listening again: it says so once, since commits may have been missed meanwhile.
    await until(() => calls === 2, 30_000);
    const flow = await writer.manager.createManaged(newFlow);
    await writer.manager.startRunning(flow.id);
    await writer.manager.setWaiting(flow.id, { kind: 'timer', at: Date.now() + 60_000 });
    await until(() => calls === 3, 30_000);
  });

  it('closes a watching store within a bounded time while the server hangs', async () => {
    const watcher = await openStore();
    let calls = 0;
    watcher.watchForeignCommits(() => void calls++);
    await until(() => calls === 1);
    cluster.freeze();
    expect(await timed(() => watcher.close())).toBeLessThan(20_000);
  });
});

describe('the NATS bridge while PostgreSQL is down', { timeout: 120_000 }, () => {
  it('does not ack an event it could not commit, and resumes the flow with it once the server is back', async () => {
    const nats = await startNatsServer();
    opened.push({ close: () => nats.dispose() });
    const failedDeliveries: string[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn() {},
      error: (_fields, message) => void (message?.includes('delivering NATS events fails') && failedDeliveries.push(message)),
    };
    const tf = await openTaskflow({ store: await openStore(), tickInterval: '200ms', logger, nats: { servers: nats.url, subjects: ['invoices.>'], connection: { reconnectTimeWait: 50 } } });
    opened.push(tf);
    await tf.start();
    // A declared subject: captured by JetStream, so an event is kept until acked.
    await until(() => tf.bridge?.state === 'connected', 30_000);
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'invoices.paid', correlationId: 'INV-42' });

    const nc = await connect({ servers: nats.url });
    opened.push({ close: () => nc.close() });
    const jsm = await jetstreamManager(nc);
    await cluster.stop('immediate');
    nc.publish('invoices.paid', JSON.stringify({ correlation_id: 'INV-42', payload: { amount: 42 } }));
    await until(() => failedDeliveries.length > 0, 30_000);
    // Work-queue retention: an acked message leaves the stream. It is still there, waiting for redelivery.
    expect((await jsm.streams.info('TASKFLOW')).state.messages).toBe(1);

    await cluster.start();
    await until(async () => (await tf.manager.get(flow.id).catch(() => undefined))?.status === 'running', 60_000);
    expect((await tf.manager.get(flow.id))!.state).toMatchObject({ resume_event: { amount: 42 } });
    await until(async () => (await jsm.streams.info('TASKFLOW')).state.messages === 0, 30_000);
  });
});

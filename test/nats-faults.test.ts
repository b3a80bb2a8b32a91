import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { Flow, Logger, NatsBridgeState, Taskflow, TaskflowOptions } from '../src/index.js';
import { redeliveryDelay } from '../src/runtime/nats/inbound.js';
import { startNatsServer, type NatsServer } from './support/nats-server.js';
import { newFlow, openTestTaskflow } from './support/taskflow.js';
import { until } from './support/until.js';
import { resumedCount, waitingOnEvent } from './support/event-flows.js';

const servers: NatsServer[] = [];
const clients: NatsConnection[] = [];

afterEach(async () => {
  for (const nc of clients.splice(0)) await nc.close().catch(() => undefined);
  for (const server of servers.splice(0)) await server.dispose();
});

async function ownServer(): Promise<NatsServer> {
  const server = await startNatsServer();
  servers.push(server);
  return server;
}

/** Another client on the bus: it reconnects by itself, quickly. */
async function client(server: NatsServer): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
  clients.push(nc);
  return nc;
}

/** A logger that keeps every line. */
function recordingLogger(): Logger & { lines: Array<{ level: string; message: string; at: number }> } {
  const lines: Array<{ level: string; message: string; at: number }> = [];
  const at = (level: string) => (_fields: object, message?: string) => void lines.push({ level, message: message ?? '', at: Date.now() });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function natsOf(server: NatsServer, more: Partial<NonNullable<TaskflowOptions['nats']>> = {}): NonNullable<TaskflowOptions['nats']> {
  return { servers: server.url, subjects: ['jobs.>'], connection: { reconnectTimeWait: 50 }, ...more };
}

async function publishStored(nc: NatsConnection, subject: string, body: unknown, msgID: string): Promise<void> {
  const js = jetstream(nc);
  for (;;) {
    try {
      await js.publish(subject, JSON.stringify(body), { msgID, timeout: 1_000 });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('NATS down at start', () => {
  it('the engine starts, the bridge connects in the background once the bus is up, says so, and takes the backlog', async () => {
    const server = await ownServer();
    // A first run creates the stream and leaves ten flows waiting.
    const first = await openTestTaskflow({ nats: natsOf(server) });
    await first.start();
    const flows: Flow[] = [];
    for (let i = 0; i < 10; i++) flows.push(await waitingOnEvent(first, 'jobs.done', `job-${i}`));
    await first.close();
    // Five events reach the stream while no runtime runs; then the bus goes down.
    const publisher = await client(server);
    for (let i = 0; i < 5; i++) await publishStored(publisher, 'jobs.done', { correlation_id: `job-${i}` }, `down-${i}`);
    await server.stop();

    const logger = recordingLogger();
    const resumes: string[] = [];
    const tf = await openTestTaskflow({ database: first.path, logger, nats: natsOf(server), onResume: (flow) => void resumes.push(flow.id) });
    const states: NatsBridgeState[] = [];
    tf.bridge!.on('state', (state) => states.push(state));
    await tf.start();
    expect(tf.bridge!.state).toBe('connecting');
    expect(String(tf.bridge!.lastError)).toMatch(/ECONNREFUSED|CONNECTION_REFUSED|refused/i);
    expect(logger.lines.some((l) => l.level === 'warn' && /NATS not reachable/.test(l.message))).toBe(true);
    // The engine runs meanwhile: a manual signal resumes a flow and reaches onResume.
    const manual = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(manual.id);
    await tf.manager.setWaiting(manual.id, { kind: 'manual' });
    await tf.engine.signal(manual.id);
    await until(() => resumes.includes(manual.id));

    await server.start();
    // The other five while the bridge may still be between two attempts.
    for (let i = 5; i < 10; i++) await publishStored(publisher, 'jobs.done', { correlation_id: `job-${i}` }, `up-${i}`);
    await until(() => tf.bridge!.state === 'connected', 30_000);
    await until(async () => (await tf.manager.listByStatus('waiting')).length === 0, 30_000);
    for (const flow of flows) expect(await resumedCount(tf, flow.id)).toBe(1);
    expect(states).toEqual(['connecting', 'connected']);
    expect(logger.lines.some((l) => l.level === 'info' && /NATS bridge connected/.test(l.message))).toBe(true);
  }, 60_000);

  it('a wait set while the bus is down is covered once it is up', async () => {
    const server = await ownServer();
    await server.stop();
    const tf = await openTestTaskflow({ nats: natsOf(server) });
    await tf.start();
    const flow = await waitingOnEvent(tf, 'shipments.delivered', 'S-1');
    expect(flow.status).toBe('waiting');
    await server.start();
    await until(() => tf.bridge!.state === 'connected', 30_000);
    const publisher = await client(server);
    publisher.publish('shipments.delivered', JSON.stringify({ correlation_id: 'S-1' }));
    await until(async () => (await tf.manager.get(flow.id))?.status === 'running');
  }, 60_000);
});

describe('NATS server restarts mid-run', () => {
  it('events stored while the bridge is disconnected resume their flows once it reconnects, none lost, none twice', async () => {
    const server = await ownServer();
    // The bridge waits 2 s between reconnect attempts, so the other client publishes while it is away.
    const tf = await openTestTaskflow({ nats: natsOf(server, { connection: { reconnectTimeWait: 2_000 } }) });
    const states: NatsBridgeState[] = [];
    tf.bridge!.on('state', (state) => states.push(state));
    await tf.start();
    const flows: Flow[] = [];
    for (let i = 0; i < 20; i++) flows.push(await waitingOnEvent(tf, 'jobs.done', `job-${i}`));
    const publisher = await client(server);
    for (let i = 0; i < 10; i++) await publishStored(publisher, 'jobs.done', { correlation_id: `job-${i}` }, `before-${i}`);
    const killed = server.pid;
    await server.kill();
    await until(() => tf.bridge!.state === 'reconnecting');
    await server.start();
    expect(server.pid).not.toBe(killed);
    for (let i = 10; i < 20; i++) await publishStored(publisher, 'jobs.done', { correlation_id: `job-${i}` }, `after-${i}`);
    await until(async () => (await tf.manager.listByStatus('waiting')).length === 0, 30_000);
    for (const flow of flows) expect(await resumedCount(tf, flow.id)).toBe(1);
    expect(states.slice(0, 3)).toEqual(['connecting', 'connected', 'reconnecting']);
    expect(tf.bridge!.state).toBe('connected');
  }, 60_000);

  it('a restarted server that lost its store gets the stream and consumer back, and the wait topics their subscriptions', async () => {
    const server = await ownServer();
    const tf = await openTestTaskflow({ nats: natsOf(server) });
    await tf.start();
    const declared = await waitingOnEvent(tf, 'jobs.done', 'J-1');
    const plain = await waitingOnEvent(tf, 'shipments.delivered', 'S-1');
    await server.kill();
    const { rmSync } = await import('node:fs');
    rmSync(server.storeDir, { recursive: true, force: true });
    await server.start();
    const publisher = await client(server);
    const jsm = await jetstreamManager(publisher);
    await until(async () => jsm.consumers.info('TASKFLOW', 'taskflow').then(() => true, () => false), 30_000);
    await publishStored(publisher, 'jobs.done', { correlation_id: 'J-1' }, 'lost-store-1');
    await until(async () => (await tf.manager.get(declared.id))?.status === 'running', 30_000);
    publisher.publish('shipments.delivered', JSON.stringify({ correlation_id: 'S-1' }));
    await until(async () => (await tf.manager.get(plain.id))?.status === 'running');
  }, 60_000);
});

describe('close() is bounded in every state', () => {
  const bound = 5_000;

  async function timedClose(tf: Taskflow): Promise<number> {
    const started = Date.now();
    await tf.close();
    return Date.now() - started;
  }

  it('before start', async () => {
    const server = await ownServer();
    const tf = await openTestTaskflow({ nats: natsOf(server) });
    expect(tf.bridge!.state).toBe('idle');
    expect(await timedClose(tf)).toBeLessThan(bound);
    expect(tf.bridge!.state).toBe('closed');
  });

  it('while connecting to a bus that is down', async () => {
    const server = await ownServer();
    await server.stop();
    const tf = await openTestTaskflow({ nats: natsOf(server) });
    await tf.start();
    expect(tf.bridge!.state).toBe('connecting');
    expect(await timedClose(tf)).toBeLessThan(bound);
    expect(tf.bridge!.state).toBe('closed');
  });

  it('while connected, and a second time', async () => {
    const server = await ownServer();
    const tf = await openTestTaskflow({ nats: natsOf(server) });
    await tf.start();
    expect(tf.bridge!.state).toBe('connected');
    expect(await timedClose(tf)).toBeLessThan(bound);
    expect(await timedClose(tf)).toBeLessThan(bound);
  });

  it('while reconnecting after the server died', async () => {
    const server = await ownServer();
    const tf = await openTestTaskflow({ nats: natsOf(server) });
    await tf.start();
    await waitingOnEvent(tf, 'shipments.delivered', 'S-1');
    await server.kill();
    await until(() => tf.bridge!.state === 'reconnecting');
    expect(await timedClose(tf)).toBeLessThan(bound);
    expect(tf.bridge!.state).toBe('closed');
  });
});

describe('events the engine cannot take', () => {
  it('an event the engine refuses as invalid input is terminated and logged, never redelivered', async () => {
    const server = await ownServer();
    const logger = recordingLogger();
    const tf = await openTestTaskflow({ logger, nats: natsOf(server) });
    await tf.start();
    const flow = await waitingOnEvent(tf, 'jobs.done', 'J-1');
    const publisher = await client(server);
    // A blank flow_id passes the message format; the engine refuses it (invalid_input).
    await jetstream(publisher).publish('taskflow.resume', JSON.stringify({ flow_id: ' ', topic: 'jobs.done', correlation_id: 'J-1' }));
    const jsm = await jetstreamManager(publisher);
    await until(async () => {
      const info = await jsm.consumers.info('TASKFLOW', 'taskflow');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
    expect((await jsm.consumers.info('TASKFLOW', 'taskflow')).num_redelivered).toBe(0);
    expect(logger.lines.some((l) => l.level === 'warn' && /refused by the engine; terminated/.test(l.message))).toBe(true);
    expect((await tf.manager.get(flow.id))?.status).toBe('waiting');
  });

  it('redelivery delays after a storage failure grow from 1 s, doubling, to at most a minute', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 30].map(redeliveryDelay)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('an event that meets a storage failure is redelivered with growing delays, logged once, and lands once storage is back', async () => {
    const server = await ownServer();
    const logger = recordingLogger();
    const tf = await openTestTaskflow({ logger, nats: natsOf(server) });
    await tf.start();
    const flow = await waitingOnEvent(tf, 'jobs.done', 'J-1');
    // The database goes away under the running bridge: every delivery fails with FlowError('storage').
    await tf.store.close();
    const publisher = await client(server);
    await publishStored(publisher, 'jobs.done', { correlation_id: 'J-1' }, 'storage-1');
    const failures = () => logger.lines.filter((l) => /delivering (NATS events fails|a NATS event failed again)/.test(l.message));
    await until(() => failures().length >= 3, 30_000);
    const [a, b, c] = failures().map((l) => l.at);
    // Each redelivery waits for its nak delay (the schedule itself is the next test's): never a hot loop.
    // (The gaps are read from log times, which a loaded machine can shift by a second; the floor cannot move.)
    expect(b! - a!).toBeGreaterThanOrEqual(900);
    expect(c! - b!).toBeGreaterThanOrEqual(900);
    expect(failures().filter((l) => l.level === 'error')).toHaveLength(1);
    await tf.close();
    // Not acked, not terminated: a runtime on the same database takes it.
    const again = await openTestTaskflow({ database: tf.path, nats: natsOf(server) });
    await again.start();
    await until(async () => (await again.manager.get(flow.id))?.status === 'running', 30_000);
    expect(await resumedCount(again, flow.id)).toBe(1);
  }, 60_000);
});

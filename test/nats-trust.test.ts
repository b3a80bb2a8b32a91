import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nkeyAuthenticator, nkeys, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { FlowError, openTaskflow, type Flow, type Taskflow, type TaskflowOptions } from '../src/index.js';
import { freePort, startNatsServer, type NatsServer, type StartNatsServerOptions } from './support/nats-server.js';
import { newFlow, openTestTaskflow } from './support/taskflow.js';
import { until } from './support/until.js';

const servers: NatsServer[] = [];
const clients: NatsConnection[] = [];

afterEach(async () => {
  for (const nc of clients.splice(0)) await nc.close().catch(() => undefined);
  for (const server of servers.splice(0)) await server.dispose();
});

async function ownServer(options: StartNatsServerOptions = {}): Promise<NatsServer> {
  const server = await startNatsServer(options);
  servers.push(server);
  return server;
}

async function client(server: NatsServer, options: Omit<NodeConnectionOptions, 'servers'> = {}): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url, ...options });
  clients.push(nc);
  return nc;
}

async function bridged(server: NatsServer, nats: Partial<NonNullable<TaskflowOptions['nats']>> = {}, options: TaskflowOptions = {}): Promise<Taskflow> {
  const tf = await openTestTaskflow({ ...options, nats: { servers: server.url, subjects: ['payments.>'], ...nats } });
  await tf.start();
  return tf;
}

async function runningFlow(tf: Taskflow): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  return tf.manager.startRunning(flow.id);
}

async function waitingFlow(tf: Taskflow, topic: string, correlationId: string): Promise<Flow> {
  const flow = await runningFlow(tf);
  return tf.manager.setWaiting(flow.id, { kind: 'external_event', topic, correlationId });
}

async function statusOf(tf: Taskflow, id: string): Promise<string | undefined> {
  return (await tf.manager.get(id))?.status;
}

describe('subjects a wait may not take', () => {
  it('refuses $…, _INBOX…, taskflow.… and non-subjects with a reason, changing nothing', async () => {
    const server = await ownServer();
    const tf = await bridged(server);
    const flow = await runningFlow(tf);
    for (const topic of ['$JS.API.STREAM.LIST', '$SYS.ACCOUNT.x', '_INBOX.abc', 'taskflow.resume', 'taskflow.flow.x.waiting', 'two words', 'orders.*']) {
      const refusal = tf.manager.setWaiting(flow.id, { kind: 'external_event', topic, correlationId: 'C-1' });
      await expect(refusal).rejects.toSatisfy((error: unknown) => FlowError.isInstance(error) && error.code === 'invalid_input');
      await expect(refusal).rejects.toThrow(/choose an application subject|not a NATS subject/);
      expect(tf.bridge!.canCover(topic)).toBeDefined();
    }
    expect(await tf.manager.get(flow.id)).toEqual(flow);
    expect(tf.bridge!.canCover('orders.42.paid')).toBeUndefined();
  });

  it('refuses at open a declared pattern that would capture reserved subjects', async () => {
    for (const subjects of [['>'], ['*.paid'], ['_INBOX.>'], ['$JS.>'], ['taskflow.>']]) {
      await expect(openTaskflow({ database: ':memory:', nats: { servers: 'nats://127.0.0.1:1', subjects } })).rejects.toThrow(/nats\.subjects/);
    }
  });

  it('a request/reply service keeps answering while flows wait on its subject; no stream captures it', async () => {
    const server = await ownServer();
    const service = await client(server);
    service.subscribe('pricing.quote', { callback: (_error, msg) => void msg.respond(JSON.stringify({ price: 42 })) });
    await service.flush();
    const tf = await bridged(server);
    const flows = await Promise.all([1, 2, 3].map((i) => waitingFlow(tf, 'pricing.quote', `Q-${i}`)));
    const requester = await client(server);
    for (let i = 0; i < 20; i++) {
      const reply = await requester.request('pricing.quote', JSON.stringify({ item: i }), { timeout: 5_000 });
      expect(reply.json()).toEqual({ price: 42 });
    }
    const jsm = await jetstreamManager(requester);
    for await (const stream of jsm.streams.list()) expect(stream.config.subjects ?? []).not.toContain('pricing.quote');
    // An event on it still reaches the flow that waits for it.
    const reply = await requester.request('pricing.quote', JSON.stringify({ correlation_id: 'Q-2' }), { timeout: 5_000 });
    expect(reply.json()).toEqual({ price: 42 });
    await until(async () => (await statusOf(tf, flows[1]!.id)) === 'running');
    expect(await statusOf(tf, flows[0]!.id)).toBe('waiting');
  });

  it('tells which other stream holds a subject', async () => {
    const server = await ownServer();
    const owner = await client(server);
    await (await jetstreamManager(owner)).streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    const tf = await bridged(server);
    expect(tf.bridge!.foreignStreamFor('orders.42.created')).toBe('ORDERS');
    expect(tf.bridge!.foreignStreamFor('payments.x')).toBeUndefined();
    expect(tf.bridge!.declaredSubjects).toEqual(['payments.>']);
    expect(tf.bridge!.isDeclared('payments.card.paid')).toBe(true);
  });
});

describe('one bad topic never poisons the others', () => {
  it('a topic the server refuses to this runtime fails its own wait, nothing stored; other waits before and after it work', async () => {
    const server = await ownServer({
      config: `authorization { users = [
        { user: bridge, password: b, permissions: { subscribe: { deny: ["secret.>"] } } }
        { user: publisher, password: p }
      ] }`,
    });
    const tf = await bridged(server, { connection: { user: 'bridge', pass: 'b' } });
    const before = await waitingFlow(tf, 'public.before', 'C-1');
    const refused = await runningFlow(tf);
    const attempt = tf.manager.setWaiting(refused.id, { kind: 'external_event', topic: 'secret.plans', correlationId: 'C-2' });
    await expect(attempt).rejects.toSatisfy((error: unknown) => FlowError.isInstance(error) && error.code === 'invalid_input');
    await expect(attempt).rejects.toThrow(/secret\.plans.*permissions violation/i);
    expect(await tf.manager.get(refused.id)).toEqual(refused);
    const after = await waitingFlow(tf, 'public.after', 'C-3');
    const publisher = await client(server, { user: 'publisher', pass: 'p' });
    publisher.publish('public.before', JSON.stringify({ correlation_id: 'C-1' }));
    publisher.publish('public.after', JSON.stringify({ correlation_id: 'C-3' }));
    await until(async () => (await statusOf(tf, before.id)) === 'running' && (await statusOf(tf, after.id)) === 'running');
  });
});

describe('a refusal found later', () => {
  it('a wait stored while the bus was away on a topic the server then refuses is reported by the refused event; the others flow', async () => {
    const server = await ownServer({
      config: `authorization { users = [
        { user: bridge, password: b, permissions: { subscribe: { deny: ["secret.>"] } } }
        { user: publisher, password: p }
      ] }`,
    });
    await server.stop();
    const tf = await openTestTaskflow({ nats: { servers: server.url, subjects: ['payments.>'], connection: { user: 'bridge', pass: 'b', reconnectTimeWait: 50 } } });
    const refusals: Array<{ topic: string; reason: string }> = [];
    tf.bridge!.on('refused', (refusal) => refusals.push(refusal));
    await tf.start();
    const hidden = await waitingFlow(tf, 'secret.plans', 'C-1');
    const open = await waitingFlow(tf, 'public.news', 'C-2');
    await server.start();
    await until(() => refusals.length === 1, 30_000);
    expect(refusals[0]).toMatchObject({ topic: 'secret.plans', reason: expect.stringMatching(/permissions violation/i) });
    const publisher = await client(server, { user: 'publisher', pass: 'p' });
    publisher.publish('public.news', JSON.stringify({ correlation_id: 'C-2' }));
    await until(async () => (await statusOf(tf, open.id)) === 'running');
    expect(await statusOf(tf, hidden.id)).toBe('waiting');
  }, 60_000);
});

describe('taskflow.resume honours flow_id', () => {
  it('a message naming flow X resumes X only; one naming a flow that does not wait on the key resumes nothing and is not kept', async () => {
    const server = await ownServer();
    const tf = await bridged(server);
    const x = await waitingFlow(tf, 'payments.card', 'INV-1');
    const y = await waitingFlow(tf, 'payments.card', 'INV-1');
    const js = jetstream(await client(server));
    await js.publish('taskflow.resume', JSON.stringify({ flow_id: x.id, topic: 'payments.card', correlation_id: 'INV-1', payload: { to: 'x' } }));
    await until(async () => (await statusOf(tf, x.id)) === 'running');
    expect((await tf.manager.get(x.id))!.state.resume_event).toEqual({ to: 'x' });
    // Unknown flow, and a real flow on another key: nothing resumes, nothing is kept for a later waiter.
    await js.publish('taskflow.resume', JSON.stringify({ flow_id: '00000000-0000-4000-8000-000000000000', topic: 'payments.card', correlation_id: 'INV-1' }));
    await js.publish('taskflow.resume', JSON.stringify({ flow_id: y.id, topic: 'payments.card', correlation_id: 'INV-2' }));
    const jsm = await jetstreamManager(clients[0]!);
    await until(async () => {
      const info = await jsm.consumers.info('TASKFLOW', 'taskflow');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
    expect(await statusOf(tf, y.id)).toBe('waiting');
    const later = await waitingFlow(tf, 'payments.card', 'INV-2');
    expect(later.status).toBe('waiting');
  });
});

describe('topics come and go with the waits', () => {
  it('10,000 waits on distinct topics are covered one subscription each, and the subscriptions go once no flow waits', async () => {
    const monitor = await freePort();
    const server = await ownServer({ args: ['-m', String(monitor)] });
    const tf = await bridged(server, { stream: 'MANY', durable: 'many' }, { synchronous: 'normal' });
    // The runtime's subscriptions on the wait topics, as the server counts them (its own
    // JetStream and request inboxes come and go on a busy machine, so they are left out).
    const subscriptions = async (): Promise<number> => {
      const response = await fetch(`http://127.0.0.1:${monitor}/connz?subs=1`);
      const body = (await response.json()) as { connections: Array<{ name?: string; subscriptions_list?: string[] }> };
      const subjects = body.connections.find((c) => c.name === 'nexo-taskflow')!.subscriptions_list ?? [];
      return subjects.filter((subject) => subject.startsWith('entity.')).length;
    };
    const baseline = await subscriptions();
    const total = 10_000;
    const flows: Flow[] = [];
    for (let start = 0; start < total; start += 200) {
      const batch = Array.from({ length: Math.min(200, total - start) }, (_, k) => waitingFlow(tf, `entity.${start + k}.paid`, 'E'));
      flows.push(...(await Promise.all(batch)));
    }
    expect(tf.bridge!.coveredSubjects().length).toBe(2 + total);
    expect(await subscriptions()).toBe(baseline + total);
    // Events reach their flows; then every other flow stops waiting.
    const publisher = await client(server);
    for (let i = 0; i < 50; i++) publisher.publish(`entity.${i}.paid`, JSON.stringify({ correlation_id: 'E' }));
    await until(async () => (await tf.manager.listByStatus('running')).length === 50, 30_000);
    for (let start = 50; start < total; start += 500) await Promise.all(flows.slice(start, start + 500).map((f) => tf.manager.requestCancel(f.id)));
    // A topic unused for a whole sweep period goes: two sweeps.
    await tf.bridge!.sweepTopics();
    await tf.bridge!.sweepTopics();
    expect(tf.bridge!.coveredSubjects()).toEqual(['taskflow.resume', 'payments.>']);
    expect(await subscriptions()).toBe(baseline);
  }, 300_000);
});

describe('a secured bus', () => {
  async function resumesThrough(server: NatsServer, connection: Omit<NodeConnectionOptions, 'servers'>, publisherConnection = connection): Promise<void> {
    const tf = await bridged(server, { connection });
    expect(tf.bridge!.state).toBe('connected');
    const flow = await waitingFlow(tf, 'payments.card', 'INV-7');
    const publisher = await client(server, publisherConnection);
    await jetstream(publisher).publish('payments.card', JSON.stringify({ correlation_id: 'INV-7' }));
    await until(async () => (await statusOf(tf, flow.id)) === 'running');
  }

  it('user and password', async () => {
    const server = await ownServer({ args: ['--user', 'taskflow', '--pass', 'pw-1'] });
    await resumesThrough(server, { user: 'taskflow', pass: 'pw-1' });
  });

  it('a token', async () => {
    const server = await ownServer({ args: ['--auth', 'tok-123'] });
    await resumesThrough(server, { token: 'tok-123' });
  });

  it('an NKey', async () => {
    const user = nkeys.createUser();
    const server = await ownServer({ config: `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }` });
    await resumesThrough(server, { authenticator: nkeyAuthenticator(user.getSeed()) });
  });

  it('wrong credentials leave the engine running and the bridge retrying, with the reason', async () => {
    const server = await ownServer({ args: ['--user', 'taskflow', '--pass', 'pw-1'] });
    const tf = await openTestTaskflow({ nats: { servers: server.url, connection: { user: 'taskflow', pass: 'wrong' } } });
    await tf.start();
    expect(tf.bridge!.state).toBe('connecting');
    expect(String(tf.bridge!.lastError)).toMatch(/authorization/i);
  });

  it('TLS with a self-signed certificate', async () => {
    const dir = (await ownServer({ jetstream: false })).storeDir;
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], {
      stdio: 'ignore',
    });
    const server = await ownServer({ args: ['--tls', '--tlscert', cert, '--tlskey', key] });
    await resumesThrough(server, { tls: { caFile: cert } });
  });
});

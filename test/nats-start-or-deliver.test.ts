import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlowError, type Flow, type TaskflowOptions, type Wake } from '../src/index.js';
import { startNatsServer, type NatsServer } from './support/nats-server.js';
import { newFlow, openTestTaskflow } from './support/taskflow.js';
import { until } from './support/until.js';

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

const startOnInvoice: NonNullable<TaskflowOptions['nats']>['startOrDeliver'] = [
  {
    subject: 'webhooks.invoices.*',
    flowFor: (event) => ({
      owner: 'billing',
      idempotencyKey: `invoice:${event.correlationId}`,
      flow: { controllerId: 'billing/invoice', goal: `collect ${event.correlationId}`, state: { invoice: event.correlationId } },
    }),
  },
];

function publish(subject: string, correlationId: string, payload: unknown, msgId: string): void {
  const h = headers();
  h.set('Taskflow-Correlation-Id', correlationId);
  h.set('Nats-Msg-Id', msgId);
  nc.publish(subject, JSON.stringify({ payload }), { headers: h });
}

describe('start or deliver over NATS (nats.startOrDeliver)', () => {
  it('the first event for an invoice starts its flow, which resumes with it; later ones are kept for it; each once', async () => {
    const woke: [Flow, Wake][] = [];
    const tf = await openTestTaskflow({
      inbox: { maxPerKey: 100 },
      onResume: (flow, wake) => void woke.push([flow, wake]),
      nats: { servers: server.url, subjects: ['webhooks.>'], stream: 'SOD_A', durable: 'sod_a', resumeSubject: 'sod.a.resume', startOrDeliver: startOnInvoice },
    });
    await tf.start();
    await until(() => tf.bridge!.state === 'connected');
    for (let i = 0; i < 20; i++) publish('webhooks.invoices.paid', 'INV-42', { n: i }, `evt-42-${i}`);
    publish('webhooks.invoices.paid', 'INV-43', { n: 0 }, 'evt-43-0');
    await until(async () => (await tf.store.listInbox()).reduce((n, k) => n + k.events, 0) === 19 && (await tf.manager.listByOwner('billing')).length === 2);
    const flows = await tf.manager.listByOwner('billing');
    expect(flows.map((f) => f.state.invoice).sort()).toEqual(['INV-42', 'INV-43']);
    expect(flows.every((f) => f.status === 'running' && f.revision === 3)).toBe(true);
    await until(() => woke.length === 2);
    expect(woke.map(([flow, wake]) => [flow.state.invoice, wake.reason, wake.topic]).sort()).toEqual([
      ['INV-42', 'event', 'webhooks.invoices.paid'],
      ['INV-43', 'event', 'webhooks.invoices.paid'],
    ]);
    // The first event of INV-42 started and resumed its flow; the other 19 wait in the inbox for its next wait.
    const inv42 = flows.find((f) => f.state.invoice === 'INV-42')!;
    expect(inv42.state.resume_event).toEqual({ n: 0 });
    const again = await tf.manager.setWaiting(inv42.id, { kind: 'external_event', topic: 'webhooks.invoices.paid', correlationId: 'INV-42' });
    expect(again.state.resume_event).toEqual({ n: 1 });
  });

  it('refuses a rule outside the declared subjects, naming it', async () => {
    await expect(
      openTestTaskflow({ nats: { servers: server.url, subjects: ['webhooks.>'], startOrDeliver: [{ subject: 'billing.>', flowFor: () => ({ owner: 'o', idempotencyKey: 'k', flow: newFlow }) }] } }),
    ).rejects.toSatisfy((e: unknown) => FlowError.isInstance(e) && e.code === 'invalid_input' && /"billing\.>" is not within nats\.subjects/.test(e.message));
  });

  it('the doctor reads what a running bridge covers from its heartbeat', async () => {
    const tf = await openTestTaskflow({ nats: { servers: server.url, subjects: ['hooks.>'], stream: 'SOD_B', durable: 'sod_b', resumeSubject: 'sod.b.resume' } });
    await tf.start();
    await until(async () => (await tf.store.listHeartbeats(5))[0]?.bridge?.state === 'connected');
    expect((await tf.store.listHeartbeats(5))[0]!.bridge!.subjects).toEqual(expect.arrayContaining(['sod.b.resume', 'hooks.>']));
    // A process without a bridge (here a second handle) parks a flow on a topic nobody declared.
    const other = await openTestTaskflow({ database: tf.path, clock: tf.clock });
    const flow = await other.manager.createManaged(newFlow);
    await other.manager.startRunning(flow.id);
    await other.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'shipping.done', correlationId: 'ORD-1' });
    const covered = await other.manager.createManaged({ ...newFlow, goal: 'covered' });
    await other.manager.startRunning(covered.id);
    await other.manager.setWaiting(covered.id, { kind: 'external_event', topic: 'hooks.orders.done', correlationId: 'ORD-2' });
    const { findings } = await other.diagnose();
    expect(findings).toEqual([expect.objectContaining({ kind: 'uncovered_topic', topic: 'shipping.done', flowIds: [flow.id] })]);
  });
});

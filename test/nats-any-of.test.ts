import { beforeEach, describe, expect, it } from 'vitest';
import type { Flow, Taskflow, WaitInput } from '../src/index.js';
import { usePrivateNats } from './support/private-nats.js';
import { newFlow, openTestTaskflow, T0 } from './support/taskflow.js';
import { until } from './support/until.js';

const bus = usePrivateNats();


beforeEach(async () => {
  for await (const name of bus.jsm.streams.names()) await bus.jsm.streams.delete(name);
});

/** Paid (a declared subject), refunded (a topic only this wait names), or cancelled by signal, or a deadline. */
const firstOf: WaitInput = {
  kind: 'any',
  of: [
    { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' },
    { kind: 'external_event', topic: 'refunds.issued', correlationId: 'INV-42' },
    { kind: 'manual', signal: 'cancel_order' },
    { kind: 'timer', at: T0 + 3 * 86_400_000 },
  ],
};

async function waitingFlow(tf: Taskflow): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, firstOf);
}

async function lastWake(tf: Taskflow, id: string) {
  return (await tf.manager.listEvents(id)).filter((e) => e.kind === 'resumed').at(-1)?.payload;
}

describe('NATS bridge and any-of waits', () => {
  it('covers every topic of the wait as it parks: an event on its second topic resumes the flow', async () => {
    const tf = await openTestTaskflow({ nats: { servers: bus.server.url, subjects: ['payments.>'] } });
    await tf.start();
    const flow = await waitingFlow(tf);
    // setWaiting resolved: both topics are covered already.
    expect(tf.bridge!.coveredSubjects()).toEqual(expect.arrayContaining(['payments.>', 'refunds.issued']));
    bus.nc.publish('refunds.issued', JSON.stringify({ correlation_id: 'INV-42', payload: { amount: 120 } }));
    await until(async () => (await tf.manager.get(flow.id))?.status === 'running');
    expect((await tf.manager.get(flow.id))!.state.resume_event).toEqual({ amount: 120 });
    expect(await lastWake(tf, flow.id)).toMatchObject({ reason: 'event', topic: 'refunds.issued', condition: { index: 1, kind: 'external_event' } });
  });

  it('on start subscribes the topics of any-of waits stored before, read from the database', async () => {
    const offline = await openTestTaskflow();
    const flow = await waitingFlow(offline);
    await offline.close();
    const tf = await openTestTaskflow({ database: offline.path, nats: { servers: bus.server.url, subjects: ['payments.>'] } });
    await tf.start();
    expect(tf.bridge!.coveredSubjects()).toEqual(expect.arrayContaining(['payments.>', 'refunds.issued']));
    bus.nc.publish('refunds.issued', JSON.stringify({ correlation_id: 'INV-42' }));
    await until(async () => (await tf.manager.get(flow.id))?.status === 'running');
    expect(await lastWake(tf, flow.id)).toMatchObject({ topic: 'refunds.issued', condition: { index: 1 } });
  });
});

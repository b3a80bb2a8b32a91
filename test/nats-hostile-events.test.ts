import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { FlowError, type Flow, type Logger } from '../src/index.js';
import { usePrivateNats } from './support/private-nats.js';
import { newFlow, openTestTaskflow } from './support/taskflow.js';
import { until } from './support/until.js';

/**
 * Events from the bus obey the same input rules as deliver(): an event the
 * runtime refuses (invalid_input) is terminated and logged, never redelivered;
 * a padded key matches like any other.
 */

const bus = usePrivateNats();


/** A logger that keeps what it is told. */
function recordingLogger(): Logger & { entries: { level: string; fields: Record<string, unknown> }[] } {
  const entries: { level: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (fields: object) => void entries.push({ level, fields: fields as Record<string, unknown> });
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function waitingFlow(tf: Awaited<ReturnType<typeof openTestTaskflow>>, correlationId: string, state = {}): Promise<Flow> {
  const flow = await tf.manager.createManaged({ ...newFlow, state });
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'invoices.paid', correlationId });
}

describe('hostile events over JetStream', () => {
  it('an oversize payload, a NUL or a lone surrogate is terminated and logged once, never redelivered, and changes nothing', async () => {
    const logger = recordingLogger();
    const tf = await openTestTaskflow({
      stateLimit: 1024,
      logger,
      nats: { servers: bus.server.url, subjects: ['invoices.>'], connection: { reconnectTimeWait: 50 } },
    });
    await tf.start();
    // The bridge connects in the background: wait until its stream captures the declared subjects.
    await until(async () => (await bus.jsm.streams.info('TASKFLOW').catch(() => undefined))?.config.subjects.includes('invoices.>') === true, 30_000);
    const flow = await waitingFlow(tf, 'INV-1', { notes: 'n'.repeat(700) });
    const h = headers();
    h.set('Taskflow-Correlation-Id', 'INV-1');
    await bus.js.publish('invoices.paid', JSON.stringify({ blob: 'x'.repeat(4000) }), { headers: h }); // over the limit by itself
    await bus.js.publish('invoices.paid', JSON.stringify({ memo: 'm'.repeat(400) }), { headers: h }); // over it with the flow's state
    await bus.js.publish('invoices.paid', '{"correlation_id":"INV-1","payload":"a\\u0000b"}'); // a NUL in the payload
    await bus.js.publish('invoices.paid', '{"correlation_id":"INV-\\ud800","payload":1}'); // a lone surrogate in the key
    await until(async () => {
      const info = await bus.jsm.consumers.info('TASKFLOW', 'taskflow');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 30_000);
    expect((await bus.jsm.consumers.info('TASKFLOW', 'taskflow')).num_redelivered).toBe(0);
    expect(await tf.manager.get(flow.id)).toEqual(flow);
    const refused = logger.entries.filter(({ fields }) => FlowError.isInstance(fields.err) && fields.err.code === 'invalid_input');
    expect(refused).toHaveLength(4);
    expect(refused.every((entry) => entry.level === 'warn')).toBe(true);
    // The next good event, its key padded, still lands.
    await bus.js.publish('invoices.paid', JSON.stringify({ correlation_id: ' INV-1 ', payload: { paid: true } }));
    await until(async () => (await tf.manager.get(flow.id))?.status === 'running', 30_000);
    expect((await tf.manager.get(flow.id))!.state).toMatchObject({ resume_event: { paid: true } });
  });
});

import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.js';
import type { FlowWrite } from '../store/contract.js';
import { lifecycleMessages } from './lifecycle.js';
import { MSG_ID_HEADER } from './message.js';

/**
 * Publishes the lifecycle moves of committed writes (`nats.publishLifecycle`) on
 * `nc`, each with its `Nats-Msg-Id`. Fire and forget: nothing is published while
 * the connection is closed or draining, and a failed publish is logged.
 */
export function publishLifecycle(nc: NatsConnection | undefined, writes: readonly FlowWrite[], logger: Logger): void {
  if (!nc || nc.isClosed() || nc.isDraining()) return;
  for (const write of writes) {
    for (const message of lifecycleMessages(write)) {
      const h = headers();
      h.set(MSG_ID_HEADER, message.msgId);
      try {
        nc.publish(message.subject, JSON.stringify(message.event), { headers: h });
      } catch (error) {
        logger.warn({ err: error, subject: message.subject }, 'taskflow: publishing a lifecycle event failed');
      }
    }
  }
}

import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { MSG_ID_HEADER } from '../../src/index.js';
import { EVENT_TOPIC } from './script.js';
import type { EventSender } from './orchestrator.js';
import { headers } from '@nats-io/transport-node';

/**
 * Events published to JetStream by a client of their own, as a payment service
 * would: with a message id, so a publish retried after a crash resumes nothing twice.
 */
export async function natsEvents(url: string): Promise<EventSender> {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100, timeout: 2_000 });
  const js = jetstream(nc, { timeout: 2_000 });
  return {
    async send(correlationId, eventId, payload) {
      const h = headers();
      h.set(MSG_ID_HEADER, eventId);
      try {
        await js.publish(EVENT_TOPIC, JSON.stringify({ correlation_id: correlationId, payload }), { headers: h, msgID: eventId });
        return true;
      } catch {
        return false; // the server is down or the stream not yet created: sent again next round
      }
    },
    async dispose() {
      await nc.close();
    },
  };
}

import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { FlowError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { NatsBridgeMode } from './options.js';

/**
 * The guarantee the bridge runs with on a fresh connection: JetStream when the
 * server has it and `nats.jetstream` allows it, else core NATS (logged). Throws
 * when `nats.jetstream` is true and JetStream is absent or not allowed.
 */
export async function chooseMode(nc: NatsConnection, wanted: 'auto' | boolean, logger: Logger): Promise<{ mode: NatsBridgeMode; jsm?: JetStreamManager }> {
  if (wanted === false) return { mode: 'core' };
  if (nc.info?.jetstream === true) {
    try {
      return { mode: 'jetstream', jsm: await jetstreamManager(nc) };
    } catch (error) {
      if (wanted === true) throw error;
      logger.warn({ err: error }, 'taskflow: JetStream unavailable to this user; the bridge runs on core NATS (at-most-once)');
      return { mode: 'core' };
    }
  }
  if (wanted === true) throw new FlowError('invalid_input', 'nats.jetstream is true but the NATS server has no JetStream');
  logger.warn({}, 'taskflow: the NATS server has no JetStream; the bridge runs on core NATS (at-most-once)');
  return { mode: 'core' };
}

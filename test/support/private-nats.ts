import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
import { startNatsServer, type NatsServer } from './nats-server.js';
import { until } from './until.js';

/** A suite's own nats-server and a client of it (reconnecting, so a test may kill and restart the server). */
export interface PrivateNats {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** Starts a private nats-server and connects to it before the file's tests; closes both after them. */
export function usePrivateNats(): PrivateNats {
  const bus = {} as PrivateNats;
  beforeAll(async () => {
    bus.server = await startNatsServer();
    bus.nc = await connect({ servers: bus.server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
    bus.js = jetstream(bus.nc);
    bus.jsm = await jetstreamManager(bus.nc);
  });
  afterAll(async () => {
    await bus.nc?.close();
    await bus.server?.dispose();
  });
  return bus;
}

/** Waits until every message in the stream was handed to the engine and acked (or terminated). */
export async function consumed(bus: PrivateNats, stream = 'TASKFLOW', durable = 'taskflow'): Promise<void> {
  await until(async () => {
    const info = await bus.jsm.consumers.info(stream, durable);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  });
}

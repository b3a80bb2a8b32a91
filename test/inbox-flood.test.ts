import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { headers, connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../src/index.js';
import { startNatsServer, type NatsServer } from './support/nats-server.js';
import { openTestTaskflow } from './support/taskflow.js';
import { until } from './support/until.js';

const FLOOD = 100_000;
const HOT_KEYS = 50;
const MiB = 1024 * 1024;

// A full collection before each reading, so garbage not yet collected on a busy
// machine is not read as growth (the flag takes effect for a new context's gc).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** A logger that keeps what it is told. */
function recordingLogger() {
  const lines: { level: string; message: string }[] = [];
  const log = (level: string) => (_fields: object, message?: string) => void lines.push({ level, message: message ?? '' });
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  return { logger, lines };
}

function memory() {
  collectGarbage();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

describe('the inbox under a flood from the bus', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  }, 30_000);
  afterAll(async () => {
    await server?.dispose();
  });

  it(`holds its caps when ${FLOOD.toLocaleString('en')} junk messages arrive on a real nats-server, with memory flat`, async () => {
    const { logger, lines } = recordingLogger();
    const tf = await openTestTaskflow({
      synchronous: 'normal',
      logger,
      inbox: { maxPerKey: 5, maxTotal: 1_000 },
      nats: { servers: server.url, subjects: ['junk.>'], stream: 'FLOOD', durable: 'flood', resumeSubject: 'flood.resume' },
    });
    await tf.start();
    // A real event, kept before the flood: the flood must not evict it.
    await tf.engine.deliver({ topic: 'junk.real', correlationId: 'INV-1', payload: { paid: 1 } });

    const before = memory();
    const nc = await connect({ servers: server.url });
    try {
      for (let i = 0; i < FLOOD; i++) {
        const h = headers();
        // Half the flood hammers a few keys, half spreads over keys of its own.
        const hot = i % 2 === 0;
        h.set('Taskflow-Correlation-Id', hot ? `hot-${i % HOT_KEYS}` : `junk-${i}`);
        nc.publish(hot ? 'junk.hot' : `junk.t${i % 7}`, '{"x":1}', { headers: h });
        if (i % 2_000 === 1_999) await nc.flush();
      }
      await nc.flush();
    } finally {
      await nc.drain();
    }

    const keptEvents = async () => (await tf.store.listInbox()).reduce((sum, key) => sum + key.events, 0);
    const handled = async () => {
      const { keyFull, inboxFull } = tf.engine.inboxDrops;
      return keyFull + inboxFull + (await keptEvents()) - 1;
    };
    await until(async () => (await handled()) === FLOOD, 240_000);
    const after = memory();

    const inbox = await tf.store.listInbox();
    expect(await keptEvents()).toBe(1_000);
    expect(Math.max(...inbox.map((key) => key.events))).toBeLessThanOrEqual(5);
    expect(inbox.find((key) => key.topic === 'junk.real')).toMatchObject({ correlationId: 'INV-1', events: 1 });
    expect(tf.engine.inboxDrops.keyFull).toBeGreaterThan(0);
    expect(tf.engine.inboxDrops.inboxFull).toBeGreaterThan(0);
    // Told once per state change, not once per dropped event.
    expect(lines.filter((line) => line.message.startsWith('taskflow: inbox full')).length).toBe(2);
    // Flat: no per-message growth (100,000 kept events would be tens of MiB on the heap of any cache).
    expect(after.heapUsed - before.heapUsed).toBeLessThan(64 * MiB);
    expect(after.rss - before.rss).toBeLessThan(160 * MiB);
    console.log(
      `inbox flood: heapUsed ${(before.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB, ` +
        `rss ${(before.rss / MiB).toFixed(1)} → ${(after.rss / MiB).toFixed(1)} MiB, drops ${JSON.stringify(tf.engine.inboxDrops)}`,
    );
  }, 300_000);
});

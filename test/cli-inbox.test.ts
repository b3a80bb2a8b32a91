import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, openTaskflow } from '../src/index.js';
import { TempFolders, taskflowCli, type CliResult } from './support/cli-run.js';

const temp = new TempFolders();
afterAll(() => temp.removeAll());

/** A database whose inbox keeps two events for a payments key and one for a junk key. */
async function databaseWithKeptEvents(): Promise<string> {
  const db = join(temp.make(), 'taskflow.db');
  // A minute ago, a second apart: the order and the ages are known.
  const clock = new ManualClock(Date.now() - 60_000);
  const tf = await openTaskflow({ database: db, clock });
  try {
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-404', payload: { amount: 1 } });
    clock.advance(1_000);
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-404', payload: { amount: 2 } });
    clock.advance(1_000);
    await tf.engine.deliver({ topic: 'junk.x', correlationId: 'nobody' });
  } finally {
    await tf.close();
  }
  return db;
}

function parse<T>(result: CliResult): T {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe.concurrent('taskflow inbox', () => {
  it('lists kept events by key with their age, oldest first', async () => {
    const db = await databaseWithKeptEvents();
    const result = await taskflowCli(['inbox', '--db', db]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TOPIC\s+CORRELATION\s+EVENTS\s+OLDEST\s+NEWEST\s+EXPIRES$/);
    expect(lines[1]).toMatch(/^payments\.received\s+INV-404\s+2\s+1m\d*s? ago\s+\S+ ago\s+\d{4}-/);
    expect(lines[2]).toMatch(/^junk\.x\s+nobody\s+1\s/);
    expect(lines.at(-1)).toBe('3 events kept for 2 keys');
  });

  it('--json gives { now, keys, events, shown } and --topic filters by NATS pattern', async () => {
    const db = await databaseWithKeptEvents();
    type Shape = { keys: number; events: number; shown: { topic: string; correlationId: string; events: number; ageMs: number; oldestAt: string }[] };
    const all = parse<Shape>(await taskflowCli(['inbox', '--db', db, '--json']));
    expect(all).toMatchObject({ keys: 2, events: 3 });
    expect(all.shown.map((k) => [k.topic, k.correlationId, k.events])).toEqual([
      ['payments.received', 'INV-404', 2],
      ['junk.x', 'nobody', 1],
    ]);
    expect(all.shown.every((k) => k.ageMs >= 58_000 && !Number.isNaN(Date.parse(k.oldestAt)))).toBe(true);
    const payments = parse<Shape>(await taskflowCli(['inbox', '--db', db, '--json', '--topic', 'payments.>']));
    expect(payments).toMatchObject({ keys: 1, events: 2 });
  });

  it('says so when nothing is kept, and refuses a bad pattern with exit 2', async () => {
    const db = await databaseWithKeptEvents();
    expect((await taskflowCli(['inbox', '--db', db, '--topic', 'orders.>'])).stdout).toBe('the inbox keeps no event on orders.>\n');
    const bad = await taskflowCli(['inbox', '--db', db, '--topic', 'a..b']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--topic "a\.\.b" is not a NATS subject pattern/);
    expect((await taskflowCli(['help'])).stdout).toMatch(/\n {2}inbox\s+list events kept for keys no flow waits on/);
  });
});

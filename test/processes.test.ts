import { describe, expect, it } from 'vitest';
import { openTaskflow, type Wake } from '../src/index.js';
import { startWorker } from './support/child.js';
import { tempDbPath } from './support/temp-db.js';
import { newFlow } from './support/taskflow.js';
import { until } from './support/until.js';

describe('several processes on one database file', () => {
  it('lose no update when two processes write the same flow at once', async () => {
    const path = tempDbPath();
    const tf = await openTaskflow({ database: path });
    const flow = await tf.manager.createManaged(newFlow);
    await tf.close();
    const a = startWorker('update', path, flow.id, '100', 'a');
    const b = startWorker('update', path, flow.id, '100', 'b');
    await Promise.all([a.done(), b.done()]);
    const check = await openTaskflow({ database: path });
    const after = (await check.manager.get(flow.id))!;
    expect(after.revision).toBe(200);
    expect(Object.keys(after.state)).toHaveLength(200);
    expect(await check.manager.listEvents(flow.id)).toHaveLength(201);
    await check.close();
  });

  it('never resume one flow twice when two processes tick the same due flows', async () => {
    const path = tempDbPath();
    const tf = await openTaskflow({ database: path });
    const ids: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      const flow = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(flow.id);
      await tf.manager.setWaiting(flow.id, { kind: 'timer', at: Date.now() + 200 });
      ids.push(flow.id);
    }
    await tf.close();
    await new Promise((r) => setTimeout(r, 250));
    const [outA, outB] = await Promise.all([startWorker('tick', path).done(), startWorker('tick', path).done()]);
    expect(Number(outA) + Number(outB)).toBe(1_000);
    const check = await openTaskflow({ database: path });
    for (const id of ids) {
      const resumed = (await check.manager.listEvents(id)).filter((e) => e.kind === 'resumed');
      expect(resumed).toHaveLength(1);
    }
    await check.close();
  });
});

describe('a process killed with SIGKILL', () => {
  it('leaves its waiting flows to resume after a restart', async () => {
    const path = tempDbPath();
    const worker = startWorker('park', path, '20');
    const ids = JSON.parse(await worker.line(/^\[/)) as string[];
    worker.child.kill('SIGKILL');
    const woke: Array<{ id: string; wake: Wake }> = [];
    const tf = await openTaskflow({ database: path, onResume: (flow, wake) => void woke.push({ id: flow.id, wake }) });
    try {
      await tf.start();
      for (let i = 1; i < 20; i += 2) await tf.engine.deliver({ topic: 'parked', correlationId: `c-${i}` });
      await until(() => woke.length === 20);
      expect(new Set(woke.map((w) => w.id))).toEqual(new Set(ids));
      expect(woke.filter((w) => w.wake.reason === 'timer')).toHaveLength(10);
      expect(woke.filter((w) => w.wake.reason === 'event')).toHaveLength(10);
    } finally {
      await tf.close();
    }
  });

  it('has a notification whose handler had not finished delivered again after its lease', async () => {
    const path = tempDbPath();
    const tf = await openTaskflow({ database: path });
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'manual' });
    await tf.manager.resume(flow.id, { approved: true });
    await tf.close();
    const worker = startWorker('hang', path, '300');
    expect(await worker.line(/^claimed /)).toBe(`claimed ${flow.id}`);
    worker.child.kill('SIGKILL');
    const woke: Wake[] = [];
    const again = await openTaskflow({ database: path, onResume: (_f, wake) => void woke.push(wake) });
    try {
      await again.start();
      await until(() => woke.length === 1);
      expect(woke[0]!.reason).toBe('manual');
      // The completion is written in the background (batched, 100 ms on): waited for, not assumed done by a sleep.
      await until(async () => (await again.store.nextNotificationAt()) === undefined);
      await new Promise((r) => setTimeout(r, 400)); // past the dead worker's 300 ms lease
      await again.engine.deliverNotifications();
      expect(woke).toHaveLength(1);
      expect(await again.store.nextNotificationAt()).toBeUndefined();
    } finally {
      await again.close();
    }
  });
});

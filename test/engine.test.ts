import { describe, expect, it } from 'vitest';
import { FlowError, silentLogger, type Flow, type Wake } from '../src/index.js';
import { newFlow, openTestTaskflow, T0 } from './support/taskflow.js';
import { until } from './support/until.js';

type TestTaskflow = Awaited<ReturnType<typeof openTestTaskflow>>;

async function waitingFlow(tf: TestTaskflow, wait: Parameters<TestTaskflow['manager']['setWaiting']>[1]): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, wait);
}

async function resumedEvents(tf: TestTaskflow, id: string) {
  return (await tf.manager.listEvents(id)).filter((e) => e.kind === 'resumed');
}

describe('WaitEngine timers', () => {
  it('resumes a timer only once it is due, with reason timer', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'timer', at: T0 + 60_000 });
    expect(await tf.engine.tick(T0 + 59_999)).toEqual({ resumed: 0, cancelled: 0, timedOut: 0, errors: 0 });
    expect((await tf.manager.get(flow.id))!.status).toBe('waiting');
    expect(await tf.engine.tick(T0 + 60_000)).toEqual({ resumed: 1, cancelled: 0, timedOut: 0, errors: 0 });
    const resumed = (await tf.manager.get(flow.id))!;
    expect(resumed).toMatchObject({ status: 'running', wait: null, revision: 3 });
    expect((await resumedEvents(tf, flow.id))[0]!.payload).toMatchObject({ reason: 'timer' });
  });

  it('leaves manual waits without a timeout alone', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    expect(await tf.engine.tick(T0 + 365 * 86_400_000)).toMatchObject({ resumed: 0, timedOut: 0 });
    expect((await tf.manager.get(flow.id))!.status).toBe('waiting');
  });

  it('reports the earliest wake time among waiting flows', async () => {
    const tf = await openTestTaskflow();
    expect(await tf.engine.nextDueAt()).toBeUndefined();
    await waitingFlow(tf, { kind: 'timer', at: T0 + 5_000 });
    await waitingFlow(tf, { kind: 'external_event', topic: 'a', correlationId: 'b', timeoutAt: T0 + 1_000 });
    await waitingFlow(tf, { kind: 'manual' });
    expect(await tf.engine.nextDueAt()).toEqual(new Date(T0 + 1_000));
  });

  it('resumes many due flows in batches, all of them, each once', async () => {
    const tf = await openTestTaskflow();
    // Parked two transactions of 600 (3,600 commits one by one took PostgreSQL over 120 s on busy cores).
    for (const first of [0, 600]) {
      await tf.manager.createAndStartMany(Array.from({ length: 600 }, (_, i) => ({ ...newFlow, wait: { kind: 'timer', at: T0 + 1_000 + first + i } })));
    }
    expect(await tf.engine.tick(T0 + 10_000)).toEqual({ resumed: 1_200, cancelled: 0, timedOut: 0, errors: 0 });
    expect(await tf.engine.tick(T0 + 10_000)).toEqual({ resumed: 0, cancelled: 0, timedOut: 0, errors: 0 });
    expect(await tf.manager.listByStatus('waiting')).toEqual([]);
  });

  it('fires a timer at its deadline, not at the next sweep', async () => {
    const { systemClock } = await import('../src/index.js');
    const woke: number[] = [];
    // No sweep within the test: only the host timer armed for the deadline can resume the flow, however late a
    // busy machine runs it (the precision is measured by npm run bench).
    const tf = await openTestTaskflow({ clock: systemClock, tickInterval: '1h', onResume: () => void woke.push(Date.now()) });
    await tf.start();
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    const at = Date.now() + 300;
    await tf.manager.setWaiting(flow.id, { kind: 'timer', at });
    await until(() => woke.length === 1);
    expect(woke[0]! - at).toBeGreaterThanOrEqual(0);
  });

  it('re-arms from the database after a restart and fires the timer on time', async () => {
    const { systemClock, openTaskflow } = await import('../src/index.js');
    const first = await openTestTaskflow({ clock: systemClock });
    const flow = await first.manager.createManaged(newFlow);
    await first.manager.startRunning(flow.id);
    const at = Date.now() + 400;
    await first.manager.setWaiting(flow.id, { kind: 'timer', at });
    await first.close();
    const woke: Array<{ at: number; wake: Wake }> = [];
    // No sweep within the test: the timer fires from what start() read in the database (or in start() itself, if
    // a busy machine took longer than 400 ms to reopen), however late a busy machine runs it.
    const second = await openTaskflow({ database: first.path, tickInterval: '1h', onResume: (_f, wake) => void woke.push({ at: Date.now(), wake }) });
    try {
      await second.start();
      await until(() => woke.length === 1);
      expect(woke[0]!.wake.reason).toBe('timer');
      expect(woke[0]!.at - at).toBeGreaterThanOrEqual(0);
    } finally {
      await second.close();
    }
  });
});

describe('WaitEngine events', () => {
  const key = { topic: 'payments.received', correlationId: 'INV-42' };

  it('resumes every flow waiting on the key with state.resume_event = payload', async () => {
    const tf = await openTestTaskflow();
    const a = await waitingFlow(tf, { kind: 'external_event', ...key });
    const b = await waitingFlow(tf, { kind: 'external_event', ...key });
    const other = await waitingFlow(tf, { kind: 'external_event', ...key, correlationId: 'INV-43' });
    const result = await tf.engine.deliver({ ...key, payload: { amount: 120 } });
    expect(result).toEqual({ resumed: expect.arrayContaining([a.id, b.id]), kept: false, duplicate: false });
    expect(result.resumed).toHaveLength(2);
    for (const id of [a.id, b.id]) {
      expect((await tf.manager.get(id))!).toMatchObject({ status: 'running', state: { resume_event: { amount: 120 } } });
      expect((await resumedEvents(tf, id))[0]!.payload).toMatchObject({ reason: 'event', ...key, payload: { amount: 120 } });
    }
    expect((await tf.manager.get(other.id))!.status).toBe('waiting');
  });

  it('does not resume a flow for a wrong topic or correlation id', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'external_event', ...key });
    await tf.engine.deliver({ topic: 'payments.refunded', correlationId: 'INV-42' });
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-4' });
    expect((await tf.manager.get(flow.id))!).toMatchObject({ status: 'waiting', revision: 2 });
  });

  it('keeps an event that arrives before the wait and resumes the flow as soon as it waits', async () => {
    const tf = await openTestTaskflow();
    const early = await tf.engine.deliver({ ...key, payload: { amount: 120 } });
    expect(early).toEqual({ resumed: [], kept: true, duplicate: false });
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    const after = await tf.manager.setWaiting(flow.id, { kind: 'external_event', ...key });
    expect(after).toMatchObject({ status: 'running', wait: null, revision: 3, state: { resume_event: { amount: 120 } } });
    expect((await tf.manager.listEvents(flow.id)).map((e) => e.kind)).toEqual(['created', 'started', 'waiting', 'resumed']);
    const second = await waitingFlow(tf, { kind: 'external_event', ...key });
    expect(second.status).toBe('waiting');
  });

  it('drops a kept event once its retention has passed', async () => {
    const tf = await openTestTaskflow({ eventRetention: '1h' });
    await tf.engine.deliver(key);
    tf.clock.advance(3_600_000);
    const flow = await waitingFlow(tf, { kind: 'external_event', ...key });
    expect(flow.status).toBe('waiting');
    expect(await tf.store.purgeExpiredEvents(tf.clock.now())).toBe(1);
  });

  it('resumes nothing twice for a duplicate event id', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'external_event', ...key });
    expect((await tf.engine.deliver({ ...key, eventId: 'msg-1' })).resumed).toEqual([flow.id]);
    const again = await waitingFlow(tf, { kind: 'external_event', ...key });
    expect(await tf.engine.deliver({ ...key, eventId: 'msg-1' })).toEqual({ resumed: [], kept: false, duplicate: true });
    expect((await tf.manager.get(again.id))!.status).toBe('waiting');
    expect(await resumedEvents(tf, flow.id)).toHaveLength(1);
  });

  it('lists each topic that waiting flows declare once, and no longer once they resume', async () => {
    const tf = await openTestTaskflow();
    await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'a' });
    await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'b' });
    await waitingFlow(tf, { kind: 'external_event', topic: 'orders.shipped', correlationId: 'c' });
    await waitingFlow(tf, { kind: 'timer', at: T0 + 1_000 });
    expect(await tf.store.waitingTopics()).toEqual(['orders.shipped', 'payments.received']);
    await tf.engine.deliver({ topic: 'orders.shipped', correlationId: 'c' });
    expect(await tf.store.waitingTopics()).toEqual(['payments.received']);
  });

  it('refuses an event without topic or correlation id and changes nothing', async () => {
    const tf = await openTestTaskflow();
    await expect(tf.engine.deliver({ topic: '', correlationId: 'x' })).rejects.toThrow(/topic/);
    await expect(tf.engine.deliver({ topic: 'x', correlationId: '  ' })).rejects.toThrow(/correlationId/);
    const flow = await waitingFlow(tf, { kind: 'external_event', topic: 'x', correlationId: 'y' });
    expect(flow.status).toBe('waiting');
  });
});

describe('WaitEngine timeouts', () => {
  it('resumes an event wait at its timeout with reason timeout', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-43', timeoutAt: T0 + 3_600_000 });
    expect(await tf.engine.tick(T0 + 3_599_999)).toMatchObject({ timedOut: 0 });
    expect(await tf.engine.tick(T0 + 3_600_000)).toEqual({ resumed: 0, cancelled: 0, timedOut: 1, errors: 0 });
    expect((await tf.manager.get(flow.id))!.status).toBe('running');
    expect((await resumedEvents(tf, flow.id))[0]!.payload).toMatchObject({ reason: 'timeout' });
  });

  it('resumes a manual wait at its timeout', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'manual', signal: 'approved', timeoutAt: T0 + 1_000 });
    expect(await tf.engine.tick(T0 + 1_000)).toMatchObject({ timedOut: 1 });
    expect((await tf.manager.get(flow.id))!.status).toBe('running');
  });

  it('does not time out a flow that its event already resumed', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'external_event', topic: 't', correlationId: 'c', timeoutAt: T0 + 1_000 });
    await tf.engine.deliver({ topic: 't', correlationId: 'c' });
    expect(await tf.engine.tick(T0 + 2_000)).toMatchObject({ timedOut: 0 });
    expect(await resumedEvents(tf, flow.id)).toHaveLength(1);
  });
});

describe('WaitEngine signals', () => {
  it('resumes a flow waiting on the named signal, with its payload', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'manual', signal: 'approved' });
    const resumed = await tf.engine.signal(flow.id, { signal: 'approved', payload: { by: 'ana' } });
    expect(resumed).toMatchObject({ status: 'running', state: { resume_signal: { by: 'ana' } } });
    expect((await resumedEvents(tf, flow.id))[0]!.payload).toMatchObject({ reason: 'signal', signal: 'approved' });
  });

  it('lets any signal resume an unnamed manual wait', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    expect((await tf.engine.signal(flow.id, { signal: 'whatever' })).status).toBe('running');
  });

  it('refuses a wrong signal name and changes nothing', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingFlow(tf, { kind: 'manual', signal: 'approved' });
    await expect(tf.engine.signal(flow.id, { signal: 'rejected' })).rejects.toThrow(/waits for the signal "approved", not "rejected"/);
    await expect(tf.engine.signal(flow.id)).rejects.toThrow(/not an unnamed one/);
    expect((await tf.manager.get(flow.id))!).toMatchObject({ status: 'waiting', revision: 2 });
  });

  it('refuses a signal to a flow that waits for something else or does not wait', async () => {
    const tf = await openTestTaskflow();
    const timer = await waitingFlow(tf, { kind: 'timer', at: T0 + 1_000 });
    await expect(tf.engine.signal(timer.id)).rejects.toThrow(/a timer, not a signal/);
    const running = await tf.manager.createManaged(newFlow);
    const error = await tf.engine.signal(running.id).catch((e: unknown) => e);
    expect(FlowError.isInstance(error) && error.code).toBe('illegal_transition');
    const missing = await tf.engine.signal('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e);
    expect(FlowError.isInstance(missing) && missing.code).toBe('not_found');
  });
});

describe('resume notifications', () => {
  it('calls onResume once per resume with the wake, for every reason', async () => {
    const calls: Array<{ flow: Flow; wake: Wake }> = [];
    const tf = await openTestTaskflow({ onResume: (flow, wake) => void calls.push({ flow, wake }) });
    await tf.start();
    const timer = await waitingFlow(tf, { kind: 'timer', at: T0 + 10 });
    const event = await waitingFlow(tf, { kind: 'external_event', topic: 't', correlationId: 'c' });
    const signal = await waitingFlow(tf, { kind: 'manual', signal: 's' });
    const timeout = await waitingFlow(tf, { kind: 'manual', timeoutAt: T0 + 20 });
    const manual = await waitingFlow(tf, { kind: 'manual' });
    tf.clock.set(T0 + 100);
    await tf.engine.tick();
    await tf.engine.deliver({ topic: 't', correlationId: 'c', payload: { ok: 1 } });
    await tf.engine.signal(signal.id, { signal: 's' });
    await tf.manager.resume(manual.id);
    await until(() => calls.length === 5);
    await tf.engine.deliverNotifications();
    const reasonOf = (id: string) => calls.filter((c) => c.flow.id === id).map((c) => c.wake.reason);
    expect(reasonOf(timer.id)).toEqual(['timer']);
    expect(reasonOf(event.id)).toEqual(['event']);
    expect(reasonOf(signal.id)).toEqual(['signal']);
    expect(reasonOf(timeout.id)).toEqual(['timeout']);
    expect(reasonOf(manual.id)).toEqual(['manual']);
    expect(calls.find((c) => c.flow.id === event.id)!.wake).toMatchObject({ topic: 't', correlationId: 'c', payload: { ok: 1 } });
    expect(calls).toHaveLength(5);
  });

  it('retries a handler that throws, with backoff, until it succeeds', async () => {
    let attempts = 0;
    const tf = await openTestTaskflow({
      onResume: () => {
        attempts++;
        if (attempts < 3) throw new Error('agent unavailable');
      },
    });
    await tf.start();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    await tf.manager.resume(flow.id);
    await until(() => attempts === 1);
    await tf.engine.deliverNotifications();
    expect(attempts).toBe(1);
    tf.clock.advance(1_000);
    await tf.engine.deliverNotifications();
    expect(attempts).toBe(2);
    tf.clock.advance(1_000);
    await tf.engine.deliverNotifications();
    expect(attempts).toBe(2);
    tf.clock.advance(1_000);
    await tf.engine.deliverNotifications();
    expect(attempts).toBe(3);
    tf.clock.advance(3_600_000);
    await tf.engine.deliverNotifications();
    expect(attempts).toBe(3);
    expect(await tf.store.nextNotificationAt()).toBeUndefined();
  });
});

describe('stopping the engine', () => {
  it('lets a running onResume handler finish, and removes its notification', async () => {
    let release!: () => void;
    let finished = false;
    const tf = await openTestTaskflow({
      onResume: () =>
        new Promise<void>((resolve) => {
          release = () => {
            finished = true;
            resolve();
          };
        }),
    });
    await tf.start();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    await tf.engine.signal(flow.id);
    await until(() => release !== undefined);
    const stopped = tf.engine.stop();
    setTimeout(() => release(), 50);
    await stopped;
    expect(finished).toBe(true);
    expect(await tf.store.nextNotificationAt()).toBeUndefined();
  });
});

describe('onResume handlers, each on its own', () => {
  it('a hung handler delays no other resume', async () => {
    const handled: string[] = [];
    let hung: string | undefined;
    const tf = await openTestTaskflow({
      resumeLease: '300ms',
      logger: silentLogger,
      onResume: (flow) => {
        if (flow.id === hung) return new Promise<void>(() => undefined);
        handled.push(flow.id);
      },
    });
    await tf.start();
    const first = await waitingFlow(tf, { kind: 'manual' });
    hung = first.id;
    const others = [await waitingFlow(tf, { kind: 'manual' }), await waitingFlow(tf, { kind: 'manual' })];
    // Direct resumes queue unclaimed notifications: the engine's claim rounds deliver them.
    await tf.manager.resume(first.id);
    for (const flow of others) await tf.manager.resume(flow.id);
    await until(() => handled.length === others.length);
    expect(handled.sort()).toEqual(others.map((f) => f.id).sort());
  });

  it('runs at most resumeConcurrency handlers at once, and every resume gets its turn', async () => {
    let running = 0;
    let most = 0;
    const handled = new Set<string>();
    const tf = await openTestTaskflow({
      resumeConcurrency: 3,
      onResume: async (flow) => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 100));
        running--;
        handled.add(flow.id);
      },
    });
    await tf.start();
    const flows: Flow[] = [];
    for (let i = 0; i < 12; i++) flows.push(await waitingFlow(tf, { kind: 'manual' }));
    await Promise.all(flows.map((flow) => tf.manager.resume(flow.id)));
    await until(() => handled.size === flows.length, 20_000);
    expect(most).toBe(3);
    await until(async () => (await tf.store.listNotifications(flows.map((f) => f.id))).length === 0);
  });

  it('a handler still running after its lease frees its slot for the next resume', async () => {
    const handled: string[] = [];
    let hung: string | undefined;
    const tf = await openTestTaskflow({
      resumeConcurrency: 1,
      resumeLease: '200ms',
      logger: silentLogger,
      onResume: (flow) => {
        if (flow.id === hung) return new Promise<void>(() => undefined);
        handled.push(flow.id);
      },
    });
    await tf.start();
    const slow = await waitingFlow(tf, { kind: 'manual' });
    const next = await waitingFlow(tf, { kind: 'manual' });
    hung = slow.id;
    await tf.manager.resume(slow.id);
    await tf.manager.resume(next.id);
    await until(() => handled.length === 1);
    expect(handled).toEqual([next.id]);
  });

  it('stop() returns within one lease while a handler hangs', async () => {
    let started = false;
    const tf = await openTestTaskflow({
      resumeLease: '300ms',
      onResume: () => {
        started = true;
        return new Promise<void>(() => undefined);
      },
    });
    await tf.start();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    await tf.manager.resume(flow.id);
    await until(() => started);
    await tf.engine.stop(); // would never return if it waited for the handler
    const [notification] = await tf.store.listNotifications([flow.id]);
    expect(notification).toMatchObject({ flowId: flow.id, deadAt: null, attempts: 1 });
  });
});

describe('poison handlers: failures recorded, dead after maxResumeAttempts, re-queued by an operator', () => {
  /** Waits for the first failure to be recorded, then runs delivery rounds, moving the clock past each retry, until `done`. */
  async function retryUntil(tf: TestTaskflow, done: () => boolean): Promise<void> {
    await until(async () => (await tf.store.listNotifications((await tf.manager.listByStatus('running')).map((f) => f.id))).some((n) => n.lastError !== null));
    for (let round = 0; round < 30 && !done(); round++) {
      tf.clock.advance(10 * 60_000);
      await tf.engine.deliverNotifications();
    }
  }

  it('records the error of every failed attempt on the notification', async () => {
    let attempts = 0;
    const tf = await openTestTaskflow({
      logger: silentLogger,
      onResume: () => {
        attempts++;
        throw new Error(`agent unavailable (attempt ${attempts})`);
      },
    });
    await tf.start();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    await tf.manager.resume(flow.id);
    await until(async () => (await tf.store.listNotifications([flow.id]))[0]?.lastError != null);
    expect((await tf.store.listNotifications([flow.id]))[0]).toMatchObject({ attempts: 1, deadAt: null, lastError: expect.stringContaining('agent unavailable (attempt 1)') });
    await retryUntil(tf, () => attempts >= 2);
    expect((await tf.store.listNotifications([flow.id]))[0]!.lastError).toContain('agent unavailable (attempt 2)');
  });

  it('parks a notification as dead after maxResumeAttempts failures, and never claims it again', async () => {
    let attempts = 0;
    const errors: string[] = [];
    const logger = { ...silentLogger, error: (_fields: object, message?: string) => void errors.push(message ?? '') };
    const tf = await openTestTaskflow({
      maxResumeAttempts: 3,
      logger,
      onResume: () => {
        attempts++;
        throw new Error('agent unavailable');
      },
    });
    await tf.start();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    await tf.manager.resume(flow.id);
    await retryUntil(tf, () => false);
    expect(attempts).toBe(3);
    const [dead] = await tf.store.listNotifications([flow.id]);
    expect(dead).toMatchObject({ flowId: flow.id, attempts: 3, lastError: expect.stringContaining('agent unavailable'), wake: { reason: 'manual' } });
    expect(dead!.deadAt).toBeInstanceOf(Date);
    expect(await tf.store.nextNotificationAt()).toBeUndefined();
    expect((await tf.store.listDeadNotifications(10)).map((n) => n.id)).toEqual([dead!.id]);
    expect(errors).toEqual([expect.stringContaining('parked as dead')]);
  });

  it('counts an expired lease as an attempt: a handler that always hangs ends up dead too', async () => {
    let calls = 0;
    const warnings: string[] = [];
    const tf = await openTestTaskflow({
      maxResumeAttempts: 1,
      resumeLease: '150ms',
      logger: { ...silentLogger, warn: (_f: object, message?: string) => void warnings.push(message ?? '') },
      onResume: () => {
        calls++;
        return new Promise<void>(() => undefined);
      },
    });
    await tf.start();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    await tf.manager.resume(flow.id);
    await until(() => warnings.some((w) => w.includes('still running after its lease')));
    tf.clock.advance(1_000);
    await tf.engine.deliverNotifications();
    // A delivery pass the engine started on its own may be the one that parks it: wait for the outcome, not for one pass.
    await until(async () => (await tf.store.listNotifications([flow.id]))[0]?.deadAt instanceof Date);
    expect(calls).toBe(1);
    const [dead] = await tf.store.listNotifications([flow.id]);
    expect(dead!.deadAt).toBeInstanceOf(Date);
    expect(dead!.lastError).toContain('did not finish within its lease');
  });

  it('requeueDead puts a dead notification back and the engine delivers it', async () => {
    let healthy = false;
    const handled: string[] = [];
    const tf = await openTestTaskflow({
      maxResumeAttempts: 2,
      logger: silentLogger,
      onResume: (flow) => {
        if (!healthy) throw new Error('agent unavailable');
        handled.push(flow.id);
      },
    });
    await tf.start();
    const flow = await waitingFlow(tf, { kind: 'manual' });
    await tf.manager.resume(flow.id);
    await retryUntil(tf, () => false);
    expect((await tf.store.listNotifications([flow.id]))[0]!.deadAt).toBeInstanceOf(Date);
    healthy = true;
    expect(await tf.engine.requeueDead(flow.id)).toBe(1);
    await until(() => handled.length === 1);
    expect(handled).toEqual([flow.id]);
    await until(async () => (await tf.store.listNotifications([flow.id])).length === 0);
    expect(await tf.engine.requeueDead(flow.id)).toBe(0);
  });

  it('requeueDead refuses a malformed flow id or notification id', async () => {
    const tf = await openTestTaskflow();
    await expect(tf.engine.requeueDead('nope')).rejects.toMatchObject({ code: 'not_found' });
    const flow = await tf.manager.createManaged(newFlow);
    await expect(tf.engine.requeueDead(flow.id, { notificationId: -1 })).rejects.toMatchObject({ code: 'invalid_input' });
  });
});

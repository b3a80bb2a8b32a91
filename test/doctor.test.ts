import { describe, expect, it } from 'vitest';
import { silentLogger, type Flow } from '../src/index.js';
import { newFlow, openTestTaskflow, T0 } from './support/taskflow.js';
import { until } from './support/until.js';

type TestTaskflow = Awaited<ReturnType<typeof openTestTaskflow>>;

async function waitingFlow(tf: TestTaskflow, wait: Parameters<TestTaskflow['manager']['setWaiting']>[1], goal = newFlow.goal): Promise<Flow> {
  const flow = await tf.manager.createManaged({ ...newFlow, goal });
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, wait);
}

const MINUTE = 60_000;
const DAY = 86_400_000;

describe('tf.diagnose(): waits that can never wake', () => {
  it('finds nothing on a healthy database', async () => {
    const tf = await openTestTaskflow();
    await waitingFlow(tf, { kind: 'timer', at: T0 + MINUTE });
    await waitingFlow(tf, { kind: 'manual', timeoutAt: T0 + DAY });
    const diagnosis = await tf.diagnose();
    expect(diagnosis).toMatchObject({ ok: true, findings: [], nearMisses: [], truncated: false });
  });

  describe('a due timer while no engine ticks', () => {
    it('is reported once the last engine has been silent for engineSilence, with the due flows', async () => {
      const tf = await openTestTaskflow();
      const engine = await openTestTaskflow({ database: tf.path, clock: tf.clock, logger: silentLogger });
      await engine.start(); // its first sweep records a heartbeat at T0
      const due = await waitingFlow(tf, { kind: 'timer', at: T0 + MINUTE });
      await until(async () => (await tf.store.listHeartbeats(10)).length === 1);
      await engine.close();
      tf.clock.advance(30 * 1_000);
      expect((await tf.diagnose()).ok).toBe(true); // not due yet
      tf.clock.advance(10 * MINUTE);
      const { findings, ok } = await tf.diagnose();
      expect(ok).toBe(false);
      expect(findings).toEqual([
        expect.objectContaining({ kind: 'no_engine', flowIds: [due.id], reason: expect.stringContaining(`no engine has ticked since ${new Date(T0).toISOString()}`) }),
      ]);
      expect(findings[0]!.fix).toMatch(/tf\.start\(\)/);
    });

    it('says when no engine ever ran on the database', async () => {
      const tf = await openTestTaskflow();
      await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-1', timeoutAt: T0 + MINUTE });
      tf.clock.advance(2 * MINUTE);
      const [finding] = (await tf.diagnose()).findings;
      expect(finding).toMatchObject({ kind: 'no_engine', reason: expect.stringContaining('no engine has ever recorded a heartbeat') });
    });

    it('is not reported while an engine beats within engineSilence', async () => {
      const tf = await openTestTaskflow();
      await waitingFlow(tf, { kind: 'timer', at: T0 - MINUTE });
      await tf.store.recordHeartbeat({ id: 'engine-a', host: 'box:1', startedAt: new Date(T0), beatAt: new Date(T0), bridge: null }, 0);
      tf.clock.advance(59_000);
      expect((await tf.diagnose()).findings.map((f) => f.kind)).toEqual([]);
      expect((await tf.diagnose({ engineSilence: '30s' })).findings.map((f) => f.kind)).toEqual(['no_engine']);
    });
  });

  describe('an event wait on a topic no running bridge covers', () => {
    // Another process's runtime with a NATS bridge records what it covers in its heartbeat.
    const beat = (tf: TestTaskflow, subjects: string[], state = 'connected') =>
      tf.store.recordHeartbeat({ id: 'runtime-b', host: 'box:2', startedAt: new Date(T0), beatAt: new Date(tf.clock.now()), bridge: { state, subjects, truncated: false } }, 0);

    it('is reported per topic, naming the flows, when bridges run but none covers it', async () => {
      const tf = await openTestTaskflow();
      const covered = await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-1' });
      const stranded = await waitingFlow(tf, { kind: 'external_event', topic: 'shipping.done', correlationId: 'ORD-1' });
      await beat(tf, ['taskflow.resume', 'payments.>']);
      const { findings } = await tf.diagnose();
      expect(findings).toEqual([expect.objectContaining({ kind: 'uncovered_topic', topic: 'shipping.done', flowIds: [stranded.id] })]);
      expect(findings[0]!.reason).toMatch(/no running NATS bridge covers it/);
      expect(findings[0]!.fix).toMatch(/nats\.subjects/);
      expect(JSON.stringify(findings)).not.toContain(covered.id);
    });

    it('covers nothing while the bridge is not connected, and nothing once its runtime is silent', async () => {
      const tf = await openTestTaskflow();
      await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-1' });
      await beat(tf, [], 'reconnecting');
      expect((await tf.diagnose()).findings[0]!.reason).toMatch(/bridge\(s\) are reconnecting, not connected/);
      await beat(tf, ['payments.>']);
      expect((await tf.diagnose()).ok).toBe(true);
      tf.clock.advance(5 * MINUTE);
      expect((await tf.diagnose()).findings[0]!.reason).toMatch(/no runtime with a NATS bridge is running/);
    });

    it('is never reported where no bridge ever ran (events come through deliver calls)', async () => {
      const tf = await openTestTaskflow();
      await waitingFlow(tf, { kind: 'external_event', topic: 'shipping.done', correlationId: 'ORD-1' });
      expect((await tf.diagnose()).ok).toBe(true);
    });
  });

  describe('a kept event whose key nearly matches a waiting key', () => {
    it('reports a difference of case, of whitespace, and a typo, and nothing for another id', async () => {
      const tf = await openTestTaskflow();
      const byCase = await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'inv-42' });
      const bySpace = await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-2026 0100' });
      const byTypo = await waitingFlow(tf, { kind: 'external_event', topic: 'payments.recieved', correlationId: 'INV-2026-0007' });
      await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-7' });
      for (const correlationId of ['INV-42', 'INV-20260100', 'INV-2026-0007', 'INV-9']) {
        expect((await tf.engine.deliver({ topic: 'payments.received', correlationId, payload: { paid: true } })).kept).toBe(true);
      }
      const { findings, nearMisses } = await tf.diagnose();
      const summary = nearMisses.map((m) => [m.kept.correlationId, m.waiting.topic, m.waiting.correlationId, m.difference, m.distance, m.flowIds]);
      expect(summary).toEqual(
        expect.arrayContaining([
          ['INV-42', 'payments.received', 'inv-42', 'case', 0, [byCase.id]],
          ['INV-20260100', 'payments.received', 'INV-2026 0100', 'whitespace', 0, [bySpace.id]],
          ['INV-2026-0007', 'payments.recieved', 'INV-2026-0007', 'typo', 1, [byTypo.id]],
        ]),
      );
      expect(summary).toHaveLength(3); // INV-9 is another invoice than INV-7, not a typo of it
      expect(findings.filter((f) => f.kind === 'near_miss')).toHaveLength(3);
      const caseFinding = findings.find((f) => f.correlationId === 'inv-42')!;
      expect(caseFinding.reason).toContain('1 event(s) are kept for payments.received/INV-42, which differs only in case');
      expect(caseFinding.fix).toContain('taskflow deliver payments.received inv-42');
    });

    it('are the inspector hints of tf.inboxHints()', async () => {
      const tf = await openTestTaskflow();
      const flow = await waitingFlow(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'inv-42' });
      await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42' });
      expect(await tf.inboxHints()).toEqual([
        expect.objectContaining({ kept: expect.objectContaining({ topic: 'payments.received', correlationId: 'INV-42', events: 1 }), waiting: { topic: 'payments.received', correlationId: 'inv-42' }, flowIds: [flow.id], difference: 'case' }),
      ]);
    });
  });

  describe('an any-of wait', () => {
    const beat = (tf: TestTaskflow, subjects: string[]) =>
      tf.store.recordHeartbeat({ id: 'runtime-b', host: 'box:2', startedAt: new Date(T0), beatAt: new Date(tf.clock.now()), bridge: { state: 'connected', subjects, truncated: false } }, 0);

    it('is a near miss when a kept event nearly matches one of its keys', async () => {
      const tf = await openTestTaskflow();
      const flow = await waitingFlow(tf, {
        kind: 'any',
        of: [{ kind: 'external_event', topic: 'payments.received', correlationId: 'inv-42' }, { kind: 'manual', signal: 'cancel_order' }],
      });
      expect((await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42' })).kept).toBe(true);
      const { findings, nearMisses } = await tf.diagnose();
      expect(nearMisses).toEqual([expect.objectContaining({ waiting: { topic: 'payments.received', correlationId: 'inv-42' }, flowIds: [flow.id], difference: 'case' })]);
      expect(findings).toEqual([expect.objectContaining({ kind: 'near_miss', correlationId: 'inv-42', flowIds: [flow.id] })]);
    });

    it('is reported, once, on a topic of its keys that no running bridge covers', async () => {
      const tf = await openTestTaskflow();
      const flow = await waitingFlow(tf, {
        kind: 'any',
        of: [
          { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-1' },
          { kind: 'external_event', topic: 'shipping.done', correlationId: 'ORD-1' },
          { kind: 'external_event', topic: 'shipping.done', correlationId: 'ORD-2' },
        ],
      });
      await beat(tf, ['taskflow.resume', 'payments.>']);
      const { findings } = await tf.diagnose();
      expect(findings).toEqual([expect.objectContaining({ kind: 'uncovered_topic', topic: 'shipping.done', flowIds: [flow.id] })]);
    });

    it('is seen when startOrDeliver parked a new flow on it', async () => {
      const tf = await openTestTaskflow();
      const started = await tf.startOrDeliver({
        owner: 'billing:webhooks',
        idempotencyKey: 'invoice:INV-42',
        flow: { controllerId: 'billing/invoice', goal: 'refund INV-42' },
        event: { topic: 'payments.received', correlationId: 'INV-42' },
        wait: { kind: 'any', of: [{ kind: 'external_event', topic: 'refunds.issued', correlationId: 'INV-42' }, { kind: 'manual', signal: 'cancel_order' }] },
      });
      expect(started.flow.status).toBe('waiting');
      await beat(tf, ['payments.>']);
      const { findings } = await tf.diagnose();
      expect(findings).toEqual([expect.objectContaining({ kind: 'uncovered_topic', topic: 'refunds.issued', flowIds: [started.flow.id] })]);
    });

    it('is reported when its timer is due while no engine ticks', async () => {
      const tf = await openTestTaskflow();
      const flow = await waitingFlow(tf, { kind: 'any', of: [{ kind: 'manual', signal: 'cancel_order' }, { kind: 'timer', at: T0 + MINUTE }] });
      tf.clock.advance(2 * MINUTE);
      const { findings } = await tf.diagnose();
      expect(findings).toEqual([expect.objectContaining({ kind: 'no_engine', flowIds: [flow.id] })]);
    });

    it('of signals alone is a stale manual wait once older than manualWaitAge', async () => {
      const tf = await openTestTaskflow();
      const flow = await waitingFlow(tf, { kind: 'any', of: [{ kind: 'manual', signal: 'approve' }, { kind: 'manual', signal: 'reject' }] });
      tf.clock.advance(8 * DAY);
      const { findings } = await tf.diagnose({ only: ['stale_manual_wait'] });
      expect(findings).toEqual([expect.objectContaining({ kind: 'stale_manual_wait', flowIds: [flow.id] })]);
      expect(findings[0]!.reason).toContain('the signal "approve" or "reject"');
    });
  });

  describe('a manual wait with no timeout', () => {
    it('is reported once older than manualWaitAge; one with a timeout never is', async () => {
      const tf = await openTestTaskflow();
      const forever = await waitingFlow(tf, { kind: 'manual', signal: 'approve' });
      await waitingFlow(tf, { kind: 'manual', timeoutAt: T0 + 30 * DAY });
      tf.clock.advance(6 * DAY);
      expect((await tf.diagnose({ only: ['stale_manual_wait'] })).ok).toBe(true);
      tf.clock.advance(2 * DAY);
      const { findings } = await tf.diagnose({ only: ['stale_manual_wait'] });
      expect(findings).toEqual([expect.objectContaining({ kind: 'stale_manual_wait', flowIds: [forever.id] })]);
      expect(findings[0]!.reason).toContain('the signal "approve"');
      expect(findings[0]!.fix).toContain(`taskflow signal ${forever.id} --signal approve`);
      expect((await tf.diagnose({ only: ['stale_manual_wait'], manualWaitAge: '30d' })).ok).toBe(true);
    });
  });

  describe('notifications parked as dead', () => {
    it('are reported per flow with the last error and the requeue command', async () => {
      const tf = await openTestTaskflow({
        logger: silentLogger,
        maxResumeAttempts: 1,
        onResume: () => {
          throw new Error('model quota exceeded');
        },
      });
      await tf.start();
      const flow = await waitingFlow(tf, { kind: 'manual' });
      await tf.engine.signal(flow.id);
      await until(async () => (await tf.store.listDeadNotifications(10)).length === 1);
      const { findings } = await tf.diagnose({ only: ['dead_notification'] });
      expect(findings).toEqual([expect.objectContaining({ kind: 'dead_notification', flowIds: [flow.id] })]);
      expect(findings[0]!.reason).toContain('model quota exceeded');
      expect(findings[0]!.fix).toContain(`taskflow requeue ${flow.id}`);
    });
  });

  it('refuses bad options with invalid_input', async () => {
    const tf = await openTestTaskflow();
    await expect(tf.diagnose({ limit: 0 })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(tf.diagnose({ only: ['nope' as never] })).rejects.toMatchObject({ code: 'invalid_input' });
  });
});

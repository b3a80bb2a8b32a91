import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Flow } from '../src/index.js';
import { resumeMove } from '../src/runtime/moves.js';
import type { ClaimedNotification, NotificationClaim, ResumeNotification } from '../src/runtime/store/contract.js';
import { NOTIFICATION_SQL } from '../src/runtime/store/postgres/notification-sql.js';
import { dialect, newFlow, openTestTaskflow, T0 } from './support/taskflow.js';

/**
 * A claim on a resume notification is its id and the lease end it was claimed
 * until. Completing, retrying, parking and releasing act only while the
 * notification is still held by that claim: a claim whose lease ended and that
 * another engine took since changes nothing. Releasing gives back a claim whose
 * handler never started: due at once, the attempt it counted taken back.
 */

type Tf = Awaited<ReturnType<typeof openTestTaskflow>>;

const LEASE = 1_000;

const stores =
  dialect === 'postgres'
    ? [{ store: 'PostgreSQL', open: () => openTestTaskflow() }]
    : [
        { store: 'SQLite', open: () => openTestTaskflow() },
        { store: 'SQLite in a worker thread', open: () => openTestTaskflow({ sqlite: { thread: 'worker' } }) },
      ];

/** `count` flows, each with one resume notification queued (a signal), due at T0 and unclaimed. */
async function queuedNotifications(tf: Tf, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'manual' });
    await tf.engine.signal(flow.id, {});
    ids.push(flow.id);
  }
  return ids;
}

/** The one notification of `flowId`, as stored now; undefined once removed. */
async function notificationOf(tf: Tf, flowId: string): Promise<ResumeNotification | undefined> {
  const found = await tf.store.listNotifications([flowId]);
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0];
}

/** The notification of one flow claimed at T0, then, after that lease ended, claimed again by another engine. */
async function claimedTwice(tf: Tf): Promise<{ flowId: string; stale: ClaimedNotification; holder: ClaimedNotification }> {
  const [flowId] = await queuedNotifications(tf, 1);
  const [stale] = await tf.store.claimNotifications(T0, LEASE, 10);
  const [holder] = await tf.store.claimNotifications(T0 + LEASE, LEASE, 10);
  expect(holder?.id).toBe(stale?.id);
  return { flowId: flowId!, stale: stale!, holder: holder! };
}

const claimOnly = ({ id, leaseUntil }: NotificationClaim): NotificationClaim => ({ id, leaseUntil });

describe.each(stores)('notification claims on $store', ({ open }) => {
  describe('a claim that still holds its notification', () => {
    it('is named by its id and the lease end it was claimed until', async () => {
      const tf = await open();
      const [flowId] = await queuedNotifications(tf, 1);
      const [claim] = await tf.store.claimNotifications(T0 + 5, LEASE, 10);
      expect(claim).toMatchObject({ flowId, leaseUntil: T0 + 5 + LEASE, attempts: 1 });
      expect((await notificationOf(tf, flowId!))?.dueAt.getTime()).toBe(claim!.leaseUntil);
    });

    it('completes: the notification is removed', async () => {
      const tf = await open();
      const [flowId] = await queuedNotifications(tf, 1);
      const [claim] = await tf.store.claimNotifications(T0, LEASE, 10);
      await tf.store.completeNotifications([claimOnly(claim!)]);
      expect(await notificationOf(tf, flowId!)).toBeUndefined();
    });

    it('retries: due at the time given, with its error, its attempt counted', async () => {
      const tf = await open();
      const [flowId] = await queuedNotifications(tf, 1);
      const [claim] = await tf.store.claimNotifications(T0, LEASE, 10);
      expect(await tf.store.retryNotification(claim!, T0 + 5_000, 'onResume threw: payment API down')).toBe(true);
      const stored = await notificationOf(tf, flowId!);
      expect(stored).toMatchObject({ attempts: 1, lastError: 'onResume threw: payment API down', deadAt: null });
      expect(stored?.dueAt.getTime()).toBe(T0 + 5_000);
    });

    it('parks: the notification is dead, with its error', async () => {
      const tf = await open();
      const [flowId] = await queuedNotifications(tf, 1);
      const [claim] = await tf.store.claimNotifications(T0, LEASE, 10);
      expect(await tf.store.parkNotification(claim!, T0 + 10, 'gave up')).toBe(true);
      const stored = await notificationOf(tf, flowId!);
      expect(stored).toMatchObject({ lastError: 'gave up' });
      expect(stored?.deadAt?.getTime()).toBe(T0 + 10);
      expect((await tf.store.listDeadNotifications(10)).map((n) => n.flowId)).toEqual([flowId]);
    });

    it('is released: the notification is due at once and its attempt is given back', async () => {
      const tf = await open();
      const [flowId] = await queuedNotifications(tf, 1);
      const [claim] = await tf.store.claimNotifications(T0, LEASE, 10);
      await tf.store.releaseNotifications([claimOnly(claim!)], T0 + 100);
      const stored = await notificationOf(tf, flowId!);
      expect(stored?.attempts).toBe(0);
      expect(stored?.dueAt.getTime()).toBe(T0 + 100);
      expect(await tf.store.nextNotificationAt()).toBe(T0 + 100);
    });
  });

  it('a released notification is claimed again by the next claim, its attempts counted once', async () => {
    const tf = await open();
    const [flowId] = await queuedNotifications(tf, 1);
    const [first] = await tf.store.claimNotifications(T0, LEASE, 10);
    await tf.store.releaseNotifications([claimOnly(first!)], T0 + 100);
    const [again] = await tf.store.claimNotifications(T0 + 100, LEASE, 10);
    expect(again).toMatchObject({ id: first!.id, flowId, attempts: 1, leaseUntil: T0 + 100 + LEASE });
    expect((await notificationOf(tf, flowId!))?.attempts).toBe(1);
  });

  it('releases a whole list in one call, each notification given back once', async () => {
    const tf = await open();
    const flowIds = await queuedNotifications(tf, 3);
    const claims = await tf.store.claimNotifications(T0, LEASE, 10);
    expect(claims).toHaveLength(3);
    await tf.store.releaseNotifications(claims.map(claimOnly), T0 + 1);
    const stored = await tf.store.listNotifications(flowIds);
    expect(stored.map((n) => [n.attempts, n.dueAt.getTime()])).toEqual([
      [0, T0 + 1],
      [0, T0 + 1],
      [0, T0 + 1],
    ]);
  });

  it('never takes attempts below zero: a claim given back twice at its lease end', async () => {
    const tf = await open();
    const [flowId] = await queuedNotifications(tf, 1);
    const [claim] = await tf.store.claimNotifications(T0, LEASE, 10);
    // Released at its lease end, the notification is due at that very time: the claim still names it.
    await tf.store.releaseNotifications([claimOnly(claim!)], claim!.leaseUntil);
    await tf.store.releaseNotifications([claimOnly(claim!)], claim!.leaseUntil);
    expect((await notificationOf(tf, flowId!))?.attempts).toBe(0);
  });

  describe('a claim whose lease ended and that another claim took since', () => {
    it('has a lease end earlier than the new holder', async () => {
      const tf = await open();
      const { stale, holder } = await claimedTwice(tf);
      expect(holder.leaseUntil).toBeGreaterThan(stale.leaseUntil);
      expect(holder.attempts).toBe(2);
    });

    it('does not complete it: the notification stays with the new holder, who completes it', async () => {
      const tf = await open();
      const { flowId, stale, holder } = await claimedTwice(tf);
      await tf.store.completeNotifications([claimOnly(stale)]);
      expect((await notificationOf(tf, flowId))?.dueAt.getTime()).toBe(holder.leaseUntil);
      await tf.store.completeNotifications([claimOnly(holder)]);
      expect(await notificationOf(tf, flowId)).toBeUndefined();
    });

    it('does not retry it: false, and nothing changes', async () => {
      const tf = await open();
      const { flowId, stale, holder } = await claimedTwice(tf);
      expect(await tf.store.retryNotification(stale, T0 + 60_000, 'late failure')).toBe(false);
      const stored = await notificationOf(tf, flowId);
      expect(stored).toMatchObject({ attempts: 2, lastError: null, deadAt: null });
      expect(stored?.dueAt.getTime()).toBe(holder.leaseUntil);
    });

    it('does not park it: false, and it stays alive with the new holder', async () => {
      const tf = await open();
      const { flowId, stale, holder } = await claimedTwice(tf);
      expect(await tf.store.parkNotification(stale, T0 + 60_000, 'late give-up')).toBe(false);
      const stored = await notificationOf(tf, flowId);
      expect(stored).toMatchObject({ attempts: 2, lastError: null, deadAt: null });
      expect(stored?.dueAt.getTime()).toBe(holder.leaseUntil);
      expect(await tf.store.listDeadNotifications(10)).toEqual([]);
    });

    it('does not release it: its due time and attempts stay the new holder’s', async () => {
      const tf = await open();
      const { flowId, stale, holder } = await claimedTwice(tf);
      await tf.store.releaseNotifications([claimOnly(stale)], T0 + LEASE + 1);
      const stored = await notificationOf(tf, flowId);
      expect(stored?.attempts).toBe(2);
      expect(stored?.dueAt.getTime()).toBe(holder.leaseUntil);
    });
  });

  it('completes, in one call, only the claims of a list that still hold', async () => {
    const tf = await open();
    const { flowId: taken, stale } = await claimedTwice(tf);
    const [held] = await queuedNotifications(tf, 1);
    const [claim] = await tf.store.claimNotifications(T0 + LEASE, LEASE, 10);
    await tf.store.completeNotifications([claimOnly(stale), claimOnly(claim!)]);
    expect(await notificationOf(tf, held!)).toBeUndefined();
    expect(await notificationOf(tf, taken)).toBeDefined();
  });

  it('does not complete a notification its own claim parked', async () => {
    const tf = await open();
    const [flowId] = await queuedNotifications(tf, 1);
    const [claim] = await tf.store.claimNotifications(T0, LEASE, 10);
    await tf.store.parkNotification(claim!, T0 + 1, 'gave up');
    await tf.store.completeNotifications([claimOnly(claim!)]);
    expect((await notificationOf(tf, flowId!))?.deadAt?.getTime()).toBe(T0 + 1);
  });

  describe('completeNotifications in the decision of a commit', () => {
    it('removes the claims that still hold and leaves the ones taken since', async () => {
      const tf = await open();
      const { flowId: taken, stale } = await claimedTwice(tf);
      const [held] = await queuedNotifications(tf, 1);
      const [claim] = await tf.store.claimNotifications(T0 + LEASE, LEASE, 10);
      await tf.store.commit({}, () => ({ result: undefined, completeNotifications: [claimOnly(stale), claimOnly(claim!)] }));
      expect(await notificationOf(tf, held!)).toBeUndefined();
      expect(await notificationOf(tf, taken)).toBeDefined();
    });

    it('does the same in an item of a batch, beside commits that claim', async () => {
      const tf = await open();
      const { flowId: taken, stale } = await claimedTwice(tf);
      const [held] = await queuedNotifications(tf, 1);
      const [claim] = await tf.store.claimNotifications(T0 + LEASE, LEASE, 10);
      const outcomes = await tf.store.commitBatch(
        [{ load: {}, plan: () => ({ result: undefined, completeNotifications: [claimOnly(stale), claimOnly(claim!)] }) }],
        { leaseUntil: T0 + 60_000 },
      );
      expect(outcomes.map((o) => o.ok)).toEqual([true]);
      expect(await notificationOf(tf, held!)).toBeUndefined();
      expect(await notificationOf(tf, taken)).toBeDefined();
    });
  });

  describe('notifications a commit queues already claimed', () => {
    /** A waiting flow, resumed by a signal in a commit that claims its wake until `leaseUntil`. */
    async function resumedClaiming(tf: Tf, leaseUntil: number): Promise<{ flow: Flow; claim: ClaimedNotification }> {
      const created = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(created.id);
      const waiting = await tf.manager.setWaiting(created.id, { kind: 'manual' });
      const now = new Date(T0 + 10);
      const { claimed } = await tf.store.commitClaiming(
        { flowIds: [waiting.id] },
        (loaded) => ({ result: undefined, writes: [resumeMove(loaded.flows[0]!, now, { reason: 'signal', at: now })] }),
        leaseUntil,
      );
      expect(claimed).toHaveLength(1);
      return { flow: waiting, claim: claimed[0]! };
    }

    it('carry the lease passed to the commit, and complete by it', async () => {
      const tf = await open();
      const { flow, claim } = await resumedClaiming(tf, T0 + 60_000);
      expect(claim).toMatchObject({ flowId: flow.id, leaseUntil: T0 + 60_000, attempts: 1 });
      await tf.store.completeNotifications([claimOnly(claim)]);
      expect(await notificationOf(tf, flow.id)).toBeUndefined();
    });

    it('carry the lease of a batch, and are released by it', async () => {
      const tf = await open();
      const created = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(created.id);
      const waiting = await tf.manager.setWaiting(created.id, { kind: 'manual' });
      const now = new Date(T0 + 10);
      const [outcome] = await tf.store.commitBatch(
        [{ load: { flowIds: [waiting.id] }, plan: (loaded) => ({ result: undefined, writes: [resumeMove(loaded.flows[0]!, now, { reason: 'signal', at: now })] }) }],
        { leaseUntil: T0 + 60_000 },
      );
      const claim = outcome?.ok ? outcome.claimed[0] : undefined;
      expect(claim).toMatchObject({ flowId: waiting.id, leaseUntil: T0 + 60_000, attempts: 1 });
      await tf.store.releaseNotifications([claimOnly(claim!)], T0 + 20);
      const stored = await notificationOf(tf, waiting.id);
      expect(stored?.attempts).toBe(0);
      expect(stored?.dueAt.getTime()).toBe(T0 + 20);
    });
  });
});

describe.runIf(dialect === 'postgres')('notification claims on PostgreSQL: query plans', () => {
  it('completes, retries, parks and releases by the primary key, however many claims a call names', async () => {
    const tf = await openTestTaskflow();
    const client = new pg.Client({ connectionString: tf.path });
    await client.connect();
    try {
      await client.query(`INSERT INTO flows (id, controller_id, goal, owner_session_key, current_step, state_json, status, revision, created_at, updated_at)
        SELECT 'f' || i, 'c', 'g', 'o', 's', '{}', 'running', 1, 0, 0 FROM generate_series(1, 100000) AS i`);
      await client.query(`INSERT INTO resume_notifications (flow_id, wake_json, due_at, attempts, created_at)
        SELECT 'f' || i, '{}', 1000 + i % 50, 1, 0 FROM generate_series(1, 100000) AS i`);
      await client.query('ANALYZE');
      const plan = async (sql: string, params: unknown[]) =>
        (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
      // A long list of claims (a flush after a burst of resumes) as well as a short one.
      for (const count of [2, 500]) {
        const ids = Array.from({ length: count }, (_, i) => i + 1);
        const leases = ids.map((id) => 1000 + (id % 50));
        for (const [name, sql, params] of [
          ['complete', NOTIFICATION_SQL.complete, [ids, leases]],
          ['release', NOTIFICATION_SQL.release, [ids, leases, 5, 'channel', 'store']],
        ] as const) {
          const shown = await plan(sql, [...params]);
          expect(shown, `${name} of ${count}`).toMatch(/Index Scan using resume_notifications_pkey on resume_notifications\s.*\n\s*Index Cond: \(id = ANY/);
          expect(shown, `${name} of ${count}`).not.toMatch(/Seq Scan on resume_notifications/);
        }
      }
      for (const sql of [NOTIFICATION_SQL.retry, NOTIFICATION_SQL.park]) {
        const shown = await plan(sql, [7, 1007, 5, 'boom']);
        expect(shown).toMatch(/Index Scan using resume_notifications_pkey on resume_notifications\s.*\n\s*Index Cond: \(id = /);
      }
    } finally {
      await client.end();
    }
  });
});

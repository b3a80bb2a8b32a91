import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { eventInbox, flowEvents, flows, flowSteps, flowWaitKeys, resumeNotifications, seenEvents } from './schema.js';
import { TERMINAL_STATUSES } from '../../flow.js';
import { prepareWaiters } from './waiters.js';

const p = sql.placeholder;

/**
 * The notification is still held by the claim `(id, leaseUntil)`: its due time is
 * that claim's lease end and it was not parked. A later claim has a later lease end.
 */
const heldBy = and(eq(resumeNotifications.id, p('id')), eq(resumeNotifications.dueAt, p('leaseUntil')), isNull(resumeNotifications.deadAt));

/**
 * Every statement the SQLite store sends, prepared once per connection and named
 * for what it does. The index each relies on is named beside it.
 */
export function prepareStatements(db: BetterSQLite3Database) {
  return {
    /** primary key */
    flowById: db.select().from(flows).where(eq(flows.id, p('id'))).prepare(),
    /** flows_owner_idempotency */
    flowByIdempotencyKey: db
      .select()
      .from(flows)
      .where(and(eq(flows.ownerSessionKey, p('owner')), eq(flows.idempotencyKey, p('key'))))
      .prepare(),
    /** flows_status_wake_at */
    dueFlows: db
      .select()
      .from(flows)
      .where(and(eq(flows.status, 'waiting'), lte(flows.wakeAt, p('now'))))
      .orderBy(asc(flows.wakeAt))
      .limit(p('limit'))
      .prepare(),
    /** flows_status_wake_at */
    nextWakeAt: db
      .select({ wakeAt: flows.wakeAt })
      .from(flows)
      .where(and(eq(flows.status, 'waiting'), isNotNull(flows.wakeAt)))
      .orderBy(asc(flows.wakeAt))
      .limit(1)
      .prepare(),
    /** flows_status_wake_at */
    wakingFlows: db
      .select()
      .from(flows)
      .where(and(eq(flows.status, 'waiting'), isNotNull(flows.wakeAt)))
      .orderBy(asc(flows.wakeAt))
      .limit(p('limit'))
      .prepare(),
    /** flows_status_updated (covering) */
    countByStatus: db
      .select({ status: flows.status, count: sql<number>`count(*)` })
      .from(flows)
      .groupBy(flows.status)
      .prepare(),
    /** flows_status_updated, first page */
    flowsPageFirst: db
      .select()
      .from(flows)
      .where(eq(flows.status, p('status')))
      .orderBy(desc(flows.updatedAt), desc(sql`rowid`))
      .limit(p('limit'))
      .prepare(),
    /** flows_status_updated, keyset after (updated_at, rowid of id): the index holds the rowid, so no sort */
    flowsPageAfter: db
      .select()
      .from(flows)
      .where(
        and(
          eq(flows.status, p('status')),
          lte(flows.updatedAt, p('updatedAt')),
          sql`(${flows.updatedAt} < ${p('updatedAt')} OR rowid < (SELECT rowid FROM flows AS after WHERE after.id = ${p('id')}))`,
        ),
      )
      .orderBy(desc(flows.updatedAt), desc(sql`rowid`))
      .limit(p('limit'))
      .prepare(),
    ...prepareWaiters(db),
    /** primary key of flow_wait_keys (flow_id first) */
    clearWaitKeys: db.delete(flowWaitKeys).where(eq(flowWaitKeys.flowId, p('flowId'))).prepare(),
    insertWaitKey: db
      .insert(flowWaitKeys)
      .values({ flowId: p('flowId'), topic: p('topic'), correlationId: p('correlationId') })
      .prepare(),
    insertFlow: db
      .insert(flows)
      .values({
        id: p('id'),
        controllerId: p('controllerId'),
        goal: p('goal'),
        ownerSessionKey: p('ownerSessionKey'),
        requesterOrigin: p('requesterOrigin'),
        currentStep: p('currentStep'),
        stateJson: p('stateJson'),
        waitJson: p('waitJson'),
        status: p('status'),
        cancelRequested: p('cancelRequested'),
        revision: p('revision'),
        idempotencyKey: p('idempotencyKey'),
        wakeAt: p('wakeAt'),
        waitTopic: p('waitTopic'),
        waitCorrelationId: p('waitCorrelationId'),
        scheduleJson: p('scheduleJson'),
        createdAt: p('createdAt'),
        updatedAt: p('updatedAt'),
      })
      .prepare(),
    /** primary key; the revision guard makes a lost update impossible even without the lock */
    updateFlow: db
      .update(flows)
      .set({
        currentStep: sql`${p('currentStep')}`,
        stateJson: sql`${p('stateJson')}`,
        waitJson: sql`${p('waitJson')}`,
        status: sql`${p('status')}`,
        cancelRequested: sql`${p('cancelRequested')}`,
        revision: sql`${p('revision')}`,
        wakeAt: sql`${p('wakeAt')}`,
        waitTopic: sql`${p('waitTopic')}`,
        waitCorrelationId: sql`${p('waitCorrelationId')}`,
        scheduleJson: sql`${p('scheduleJson')}`,
        updatedAt: sql`${p('updatedAt')}`,
      })
      .where(and(eq(flows.id, p('id')), eq(flows.revision, p('fromRevision'))))
      .prepare(),
    appendEvent: db
      .insert(flowEvents)
      .values({ flowId: p('flowId'), kind: p('kind'), payloadJson: p('payloadJson'), at: p('at') })
      .prepare(),
    /** flows_owner_created */
    flowsByOwner: db
      .select()
      .from(flows)
      .where(eq(flows.ownerSessionKey, p('owner')))
      .orderBy(desc(flows.createdAt), desc(sql`rowid`))
      .limit(p('limit'))
      .offset(p('offset'))
      .prepare(),
    /** flows_owner_created, then a filter on status */
    flowsByOwnerAndStatus: db
      .select()
      .from(flows)
      .where(and(eq(flows.ownerSessionKey, p('owner')), eq(flows.status, p('status'))))
      .orderBy(desc(flows.createdAt), desc(sql`rowid`))
      .limit(p('limit'))
      .offset(p('offset'))
      .prepare(),
    /** flows_status_updated */
    flowsByStatus: db
      .select()
      .from(flows)
      .where(eq(flows.status, p('status')))
      .orderBy(asc(flows.updatedAt), asc(sql`rowid`))
      .limit(p('limit'))
      .offset(p('offset'))
      .prepare(),
    /** flow_steps_flow_run */
    stepByRun: db
      .select()
      .from(flowSteps)
      .where(and(eq(flowSteps.flowId, p('flowId')), eq(flowSteps.runId, p('runId'))))
      .prepare(),
    stepsOfFlow: db
      .select()
      .from(flowSteps)
      .where(eq(flowSteps.flowId, p('flowId')))
      .orderBy(asc(flowSteps.createdAt), asc(sql`rowid`))
      .prepare(),
    upsertStep: db
      .insert(flowSteps)
      .values({
        id: p('id'),
        flowId: p('flowId'),
        runtime: p('runtime'),
        childSessionKey: p('childSessionKey'),
        runId: p('runId'),
        task: p('task'),
        status: p('status'),
        resultJson: p('resultJson'),
        createdAt: p('createdAt'),
        updatedAt: p('updatedAt'),
      })
      .onConflictDoUpdate({
        target: [flowSteps.flowId, flowSteps.runId],
        set: {
          runtime: sql`excluded.runtime`,
          childSessionKey: sql`excluded.child_session_key`,
          task: sql`excluded.task`,
          status: sql`excluded.status`,
          resultJson: sql`excluded.result_json`,
          updatedAt: sql`excluded.updated_at`,
        },
      })
      .prepare(),
    /** flow_events_flow */
    eventsOfFlow: db.select().from(flowEvents).where(eq(flowEvents.flowId, p('flowId'))).orderBy(asc(flowEvents.id)).prepare(),
    /** flow_events_flow_kind: one seek, however long the flow's log */
    lastEventOfKind: db
      .select()
      .from(flowEvents)
      .where(and(eq(flowEvents.flowId, p('flowId')), eq(flowEvents.kind, p('kind'))))
      .orderBy(desc(flowEvents.id))
      .limit(1)
      .prepare(),
    /**
     * flows_status_updated for the batch; the cascade finds each flow's rows by
     * flow_steps_flow_run, flow_events_flow and resume_notifications_flow.
     */
    pruneTerminal: db
      .delete(flows)
      .where(
        inArray(
          flows.id,
          db
            .select({ id: flows.id })
            .from(flows)
            .where(and(inArray(flows.status, [...TERMINAL_STATUSES]), lte(flows.updatedAt, p('cutoff'))))
            .limit(p('limit')),
        ),
      )
      .prepare(),
    queueNotification: db
      .insert(resumeNotifications)
      .values({ flowId: p('flowId'), wakeJson: p('wakeJson'), dueAt: p('dueAt'), attempts: p('attempts'), createdAt: p('createdAt') })
      .prepare(),
    /** resume_notifications_due (dead_at IS NULL AND due_at <= now): dead ones are never read */
    dueNotifications: db
      .select()
      .from(resumeNotifications)
      .where(and(isNull(resumeNotifications.deadAt), lte(resumeNotifications.dueAt, p('now'))))
      .orderBy(asc(resumeNotifications.dueAt))
      .limit(p('limit'))
      .prepare(),
    leaseNotification: db
      .update(resumeNotifications)
      .set({ dueAt: sql`${p('dueAt')}`, attempts: sql`${resumeNotifications.attempts} + 1` })
      .where(eq(resumeNotifications.id, p('id')))
      .prepare(),
    /** primary key; only while the claim (id, lease end) still holds it */
    completeNotification: db.delete(resumeNotifications).where(heldBy).prepare(),
    /** primary key; only while the claim still holds it */
    retryNotification: db
      .update(resumeNotifications)
      .set({ dueAt: sql`${p('dueAt')}`, lastError: sql`${p('error')}` })
      .where(heldBy)
      .prepare(),
    /** primary key; only while the claim still holds it */
    parkNotification: db
      .update(resumeNotifications)
      .set({ deadAt: sql`${p('at')}`, lastError: sql`${p('error')}` })
      .where(heldBy)
      .prepare(),
    /** primary key; only while the claim still holds it: due now, the attempt its claim counted taken back */
    releaseNotification: db
      .update(resumeNotifications)
      .set({ dueAt: sql`${p('now')}`, attempts: sql`max(${resumeNotifications.attempts} - 1, 0)` })
      .where(heldBy)
      .prepare(),
    /** resume_notifications_flow */
    requeueDeadOfFlow: db
      .update(resumeNotifications)
      .set({ deadAt: null, attempts: 0, dueAt: sql`${p('now')}` })
      .where(and(eq(resumeNotifications.flowId, p('flowId')), isNotNull(resumeNotifications.deadAt)))
      .prepare(),
    /** primary key */
    requeueDeadById: db
      .update(resumeNotifications)
      .set({ deadAt: null, attempts: 0, dueAt: sql`${p('now')}` })
      .where(and(eq(resumeNotifications.id, p('id')), eq(resumeNotifications.flowId, p('flowId')), isNotNull(resumeNotifications.deadAt)))
      .prepare(),
    /** resume_notifications_flow */
    notificationsOfFlow: db
      .select()
      .from(resumeNotifications)
      .where(eq(resumeNotifications.flowId, p('flowId')))
      .orderBy(asc(resumeNotifications.id))
      .prepare(),
    /** resume_notifications_due (dead_at IS NOT NULL), newest parked first */
    deadNotifications: db
      .select()
      .from(resumeNotifications)
      .where(isNotNull(resumeNotifications.deadAt))
      .orderBy(desc(resumeNotifications.deadAt))
      .limit(p('limit'))
      .prepare(),
    /** resume_notifications_due (dead_at IS NULL), first entry */
    nextNotificationAt: db
      .select({ dueAt: resumeNotifications.dueAt })
      .from(resumeNotifications)
      .where(isNull(resumeNotifications.deadAt))
      .orderBy(asc(resumeNotifications.dueAt))
      .limit(1)
      .prepare(),
    /** event_inbox_key */
    keptEventFor: db
      .select()
      .from(eventInbox)
      .where(
        and(eq(eventInbox.topic, p('topic')), eq(eventInbox.correlationId, p('correlationId')), gt(eventInbox.expiresAt, p('now'))),
      )
      .orderBy(asc(eventInbox.id))
      .limit(1)
      .prepare(),
    keepEvent: db
      .insert(eventInbox)
      .values({
        topic: p('topic'),
        correlationId: p('correlationId'),
        eventId: p('eventId'),
        payloadJson: p('payloadJson'),
        receivedAt: p('receivedAt'),
        expiresAt: p('expiresAt'),
      })
      .prepare(),
    consumeKeptEvent: db.delete(eventInbox).where(eq(eventInbox.id, p('id'))).prepare(),
    /** event_inbox_key: at most inbox.maxPerKey entries */
    countKeptForKey: db
      .select({ n: sql<number>`count(*)` })
      .from(eventInbox)
      .where(and(eq(eventInbox.topic, p('topic')), eq(eventInbox.correlationId, p('correlationId'))))
      .prepare(),
    /** the smallest index, counted page by page (at most inbox.maxTotal entries) */
    countKept: db.select({ n: sql<number>`count(*)` }).from(eventInbox).prepare(),
    /** event_inbox_key, grouped; operators only */
    inboxByKey: db
      .select({
        topic: eventInbox.topic,
        correlationId: eventInbox.correlationId,
        events: sql<number>`count(*)`,
        oldestAt: sql<number>`min(${eventInbox.receivedAt})`,
        newestAt: sql<number>`max(${eventInbox.receivedAt})`,
        expiresAt: sql<number>`min(${eventInbox.expiresAt})`,
      })
      .from(eventInbox)
      .groupBy(eventInbox.topic, eventInbox.correlationId)
      .orderBy(sql`min(${eventInbox.receivedAt})`, eventInbox.topic, eventInbox.correlationId)
      .prepare(),
    /** primary key (topic, event_id): the event's topic, and `''` (ids seen before they were scoped by topic) */
    seenEvent: db
      .select({ eventId: seenEvents.eventId })
      .from(seenEvents)
      .where(and(sql`${seenEvents.topic} IN (${p('topic')}, '')`, eq(seenEvents.eventId, p('id')), gt(seenEvents.expiresAt, p('now'))))
      .limit(1)
      .prepare(),
    rememberEventId: db
      .insert(seenEvents)
      .values({ topic: p('topic'), eventId: p('id'), expiresAt: p('expiresAt') })
      .onConflictDoUpdate({ target: [seenEvents.topic, seenEvents.eventId], set: { expiresAt: sql`excluded.expires_at` } })
      .prepare(),
    /** event_inbox_expires */
    purgeKeptEvents: db.delete(eventInbox).where(lte(eventInbox.expiresAt, p('now'))).prepare(),
    /** seen_events_expires */
    purgeSeenEvents: db.delete(seenEvents).where(lte(seenEvents.expiresAt, p('now'))).prepare(),
  };
}

export type SqliteStatements = ReturnType<typeof prepareStatements>;

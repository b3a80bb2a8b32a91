import { bigint, bigserial, index, integer, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * The PostgreSQL schema: the same tables, columns and indexes as `schema.ts`
 * (times are epoch milliseconds in bigint, JSON is text), so rows map the same way.
 * Migrations in `drizzle/pg` are generated from it by drizzle-kit.
 */
const ms = (name: string) => bigint(name, { mode: 'number' });

export const flows = pgTable(
  'flows',
  {
    id: text('id').primaryKey(),
    controllerId: text('controller_id').notNull(),
    goal: text('goal').notNull(),
    ownerSessionKey: text('owner_session_key').notNull(),
    requesterOrigin: text('requester_origin'),
    currentStep: text('current_step').notNull(),
    stateJson: text('state_json').notNull(),
    waitJson: text('wait_json'),
    status: text('status').notNull(),
    cancelRequested: integer('cancel_requested').notNull().default(0),
    revision: integer('revision').notNull(),
    idempotencyKey: text('idempotency_key'),
    wakeAt: ms('wake_at'),
    waitTopic: text('wait_topic'),
    waitCorrelationId: text('wait_correlation_id'),
    scheduleJson: text('schedule_json'),
    createdAt: ms('created_at').notNull(),
    updatedAt: ms('updated_at').notNull(),
    /** Insertion order, for a stable newest-first listing (SQLite's rowid). */
    seq: bigserial('seq', { mode: 'number' }).notNull(),
  },
  (t) => [
    index('flows_status_wake_at').on(t.status, t.wakeAt),
    index('flows_status_topic_correlation').on(t.status, t.waitTopic, t.waitCorrelationId),
    index('flows_owner_created').on(t.ownerSessionKey, t.createdAt),
    index('flows_status_updated').on(t.status, t.updatedAt),
    uniqueIndex('flows_owner_idempotency').on(t.ownerSessionKey, t.idempotencyKey),
  ],
);

/** The event keys of flows waiting on an any-of wait (see the SQLite schema). */
export const flowWaitKeys = pgTable(
  'flow_wait_keys',
  {
    flowId: text('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    topic: text('topic').notNull(),
    correlationId: text('correlation_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.flowId, t.topic, t.correlationId] }), index('flow_wait_keys_key').on(t.topic, t.correlationId, t.flowId)],
);

export const flowSteps = pgTable(
  'flow_steps',
  {
    id: text('id').primaryKey(),
    flowId: text('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    runtime: text('runtime').notNull(),
    childSessionKey: text('child_session_key'),
    runId: text('run_id').notNull(),
    task: text('task').notNull(),
    status: text('status').notNull(),
    resultJson: text('result_json'),
    createdAt: ms('created_at').notNull(),
    updatedAt: ms('updated_at').notNull(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
  },
  (t) => [uniqueIndex('flow_steps_flow_run').on(t.flowId, t.runId)],
);

export const flowEvents = pgTable(
  'flow_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    flowId: text('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    payloadJson: text('payload_json').notNull(),
    at: ms('at').notNull(),
  },
  (t) => [index('flow_events_flow').on(t.flowId, t.id), index('flow_events_flow_kind').on(t.flowId, t.kind, t.id), index('flow_events_kind_at').on(t.kind, t.at)],
);

export const resumeNotifications = pgTable(
  'resume_notifications',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    flowId: text('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    wakeJson: text('wake_json').notNull(),
    dueAt: ms('due_at').notNull(),
    attempts: integer('attempts').notNull().default(0),
    createdAt: ms('created_at').notNull(),
    lastError: text('last_error'),
    deadAt: ms('dead_at'),
  },
  (t) => [index('resume_notifications_due').on(t.deadAt, t.dueAt), index('resume_notifications_flow').on(t.flowId)],
);

export const eventInbox = pgTable(
  'event_inbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    topic: text('topic').notNull(),
    correlationId: text('correlation_id').notNull(),
    eventId: text('event_id'),
    payloadJson: text('payload_json'),
    receivedAt: ms('received_at').notNull(),
    expiresAt: ms('expires_at').notNull(),
  },
  (t) => [index('event_inbox_key').on(t.topic, t.correlationId, t.id), index('event_inbox_expires').on(t.expiresAt)],
);

/** See the SQLite schema's `seen_events`: an event id is unique per topic; `''` marks rows from before. */
export const seenEvents = pgTable(
  'seen_events',
  {
    topic: text('topic').notNull().default(''),
    eventId: text('event_id').notNull(),
    expiresAt: ms('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.topic, t.eventId] }), index('seen_events_expires').on(t.expiresAt)],
);

/** See the SQLite schema's `runtime_heartbeats`. */
export const runtimeHeartbeats = pgTable(
  'runtime_heartbeats',
  {
    id: text('id').primaryKey(),
    host: text('host').notNull(),
    startedAt: ms('started_at').notNull(),
    beatAt: ms('beat_at').notNull(),
    bridgeJson: text('bridge_json'),
  },
  (t) => [index('runtime_heartbeats_beat_at').on(t.beatAt)],
);

import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * The SQLite schema. Migrations in `drizzle/` are generated from it by drizzle-kit.
 * Times are epoch milliseconds. Each hot query's index sits beside its table;
 * `test/query-plans.test.ts` asserts that SQLite uses them.
 */
export const flows = sqliteTable(
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
    /** While waiting: the timer's time or the wait's timeout; else null. */
    wakeAt: integer('wake_at'),
    /** While waiting on an external event: its topic and correlation id; else null. */
    waitTopic: text('wait_topic'),
    waitCorrelationId: text('wait_correlation_id'),
    /** A recurring schedule (its rule, end and the occurrence last resumed); kept across resumes. */
    scheduleJson: text('schedule_json'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    // due timers and timeouts, and the next due time
    index('flows_status_wake_at').on(t.status, t.wakeAt),
    // flows waiting on an event key
    index('flows_status_topic_correlation').on(t.status, t.waitTopic, t.waitCorrelationId),
    // listByOwner, newest first
    index('flows_owner_created').on(t.ownerSessionKey, t.createdAt),
    // listByStatus and pruneTerminal
    index('flows_status_updated').on(t.status, t.updatedAt),
    uniqueIndex('flows_owner_idempotency').on(t.ownerSessionKey, t.idempotencyKey),
  ],
);

/**
 * The event keys of flows waiting on the first of several conditions (an any-of
 * wait), one row per key, written and cleared in the transaction that sets or
 * clears the wait: a row exists only while its flow waits on it.
 */
export const flowWaitKeys = sqliteTable(
  'flow_wait_keys',
  {
    flowId: text('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    topic: text('topic').notNull(),
    correlationId: text('correlation_id').notNull(),
  },
  (t) => [
    // clearing a flow's keys, and the cascade when a flow is pruned
    primaryKey({ columns: [t.flowId, t.topic, t.correlationId] }),
    // flows waiting on an event key (beside flows_status_topic_correlation), and the bridge's topics
    index('flow_wait_keys_key').on(t.topic, t.correlationId, t.flowId),
  ],
);

export const flowSteps = sqliteTable(
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
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('flow_steps_flow_run').on(t.flowId, t.runId)],
);

export const flowEvents = sqliteTable(
  'flow_events',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    flowId: text('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    payloadJson: text('payload_json').notNull(),
    at: integer('at').notNull(),
  },
  (t) => [
    // listEvents, in order; the cascade when a flow is pruned
    index('flow_events_flow').on(t.flowId, t.id),
    // lastEvents: the latest event of a kind is one seek, however long the log
    index('flow_events_flow_kind').on(t.flowId, t.kind, t.id),
    // the inspector's charts: events of a kind in a time window, newest first
    index('flow_events_kind_at').on(t.kind, t.at),
  ],
);

/** Resume notifications waiting for the `onResume` handler (an outbox). */
export const resumeNotifications = sqliteTable(
  'resume_notifications',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    flowId: text('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    wakeJson: text('wake_json').notNull(),
    /** Next delivery time: now when queued, lease end while claimed, backoff after a failure. */
    dueAt: integer('due_at').notNull(),
    attempts: integer('attempts').notNull().default(0),
    createdAt: integer('created_at').notNull(),
    /** The handler's last failure (message), kept on every failed attempt. */
    lastError: text('last_error'),
    /** Set when the notification was parked as dead after its last allowed attempt; never claimed then. */
    deadAt: integer('dead_at'),
  },
  (t) => [
    // due live notifications (dead_at IS NULL) and the next due time; dead ones by time parked
    index('resume_notifications_due').on(t.deadAt, t.dueAt),
    // a flow's notifications (taskflow show, list) and the cascade when a flow is pruned
    index('resume_notifications_flow').on(t.flowId),
  ],
);

/** Events that matched no waiting flow, kept until a flow waits on their key or they expire. */
export const eventInbox = sqliteTable(
  'event_inbox',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    topic: text('topic').notNull(),
    correlationId: text('correlation_id').notNull(),
    eventId: text('event_id'),
    payloadJson: text('payload_json'),
    receivedAt: integer('received_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('event_inbox_key').on(t.topic, t.correlationId, t.id), index('event_inbox_expires').on(t.expiresAt)],
);

/**
 * Event ids already delivered, so a redelivery resumes nothing twice. An event
 * id is unique per topic: the same id on another topic is another event. Rows
 * remembered before ids were scoped (migration 0007) have the topic `''`, which
 * no event has, and count as seen on every topic until they expire.
 */
export const seenEvents = sqliteTable(
  'seen_events',
  {
    topic: text('topic').notNull().default(''),
    eventId: text('event_id').notNull(),
    expiresAt: integer('expires_at').notNull(),
  },
  // (topic, event_id): whether an event was seen, the upsert's conflict target
  (t) => [primaryKey({ columns: [t.topic, t.eventId] }), index('seen_events_expires').on(t.expiresAt)],
);

/**
 * One row per running runtime (engine), written by its sweep at most every few
 * seconds: when it last ticked and, with a NATS bridge, which subjects it covers.
 * `taskflow doctor` reads it (a due timer with no engine alive, a wait on a topic
 * no bridge covers). Rows silent for a day are removed by the next beat.
 */
export const runtimeHeartbeats = sqliteTable(
  'runtime_heartbeats',
  {
    id: text('id').primaryKey(),
    host: text('host').notNull(),
    startedAt: integer('started_at').notNull(),
    beatAt: integer('beat_at').notNull(),
    /** `{ state, subjects, truncated }` of the NATS bridge, or null without one. */
    bridgeJson: text('bridge_json'),
  },
  (t) => [index('runtime_heartbeats_beat_at').on(t.beatAt)],
);

export const sqliteSchema = { flows, flowWaitKeys, flowSteps, flowEvents, resumeNotifications, eventInbox, seenEvents, runtimeHeartbeats };

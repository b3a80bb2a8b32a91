import { resolve } from 'node:path';
import { systemClock, type Clock } from './clock.js';
import type { Duration } from './duration.js';
import { WaitEngine, type DeliveryOutcome, type EventDelivery, type ResumeHandler } from './engine/engine.js';
import { FlowError } from './errors.js';
import type { InboxLimits } from './inbox.js';
import { defaultLogger, type Logger } from './logger.js';
import { FlowManager } from './manager.js';
import type { NatsBridgeStatus, NatsOptions } from './nats/options.js';
import { guardTopics } from './nats/cover-guard.js';
import { bridgeCover } from './doctor/heartbeat.js';
import { observeCommits } from './store/commit-observer.js';
import { openPostgres } from './store/postgres/loader.js';
import { openSqliteStore } from './store/sqlite/open.js';
import { openSqliteWorkerStore } from './store/sqlite/worker/store.js';
import type { StateSchemas } from './state-schema.js';
import { openTelemetry, type TelemetryOption } from './telemetry.js';
import type { FlowStore } from './store/contract.js';
import { checkTaskflowOptions } from './options.js';
import { readInput } from './text.js';
import { startOrDeliver, type StartOrDeliverInput, type StartOrDeliverResult } from './start-or-deliver-input.js';
import { diagnose, type DiagnoseOptions, type Diagnosis, type NearMiss } from './doctor/diagnose.js';

/** Options of {@link openTaskflow}. Every one has a default. */
export interface TaskflowOptions {
  /**
   * SQLite file path or `:memory:`, or a `postgres://` URL (needs the `pg` package).
   * Default `TASKFLOW_DB_PATH`, then `./data/taskflow.db`.
   */
  database?: string;
  /** SQLite durability: `full` (default) survives power loss, `normal` a process crash. */
  synchronous?: 'full' | 'normal';
  /**
   * SQLite: how long a call waits for a lock another process holds before it fails
   * with `storage`; the wait never blocks the event loop. Default `5s`.
   */
  busyTimeout?: Duration;
  /**
   * SQLite: where the connection lives. `main` (default): on the calling thread,
   * synchronously, the fastest per call. `worker`: in a worker thread, so no
   * statement, fsync or lock wait blocks the host's event loop, and commits made
   * together share one transaction and its fsync (group commit); each call pays a
   * round trip between threads (README, "SQLite off the main thread").
   */
  sqlite?: { thread?: 'main' | 'worker' };
  /** A ready store instead of `database` (for example a PostgreSQL one). */
  store?: FlowStore;
  /** Safety sweep period; timers fire at their own deadline regardless. Default `5s`. */
  tickInterval?: Duration;
  /** How far ahead a timer or timeout may be set. Default `30d`. */
  timerMaxHorizon?: Duration;
  /** Called for every resume, at least once, surviving restarts. */
  onResume?: ResumeHandler;
  /**
   * A notification whose handler has not finished by then is delivered again (its
   * handler keeps running, but no longer holds a slot). Default `30s`.
   */
  resumeLease?: Duration;
  /**
   * How many `onResume` handlers run at once. Each notification is handled on its
   * own: a slow or hung handler holds one slot (for at most one lease) and delays
   * no other. Default 16.
   */
  resumeConcurrency?: number;
  /**
   * Deliveries of one notification (a throw or an expired lease each count) before
   * it is parked as dead, with its last error: visible in `taskflow list --dead`
   * and `taskflow show`, re-queued by `taskflow requeue <flow-id>` or
   * `tf.engine.requeueDead(flowId)`. Failures are retried with backoff (1 s,
   * doubling, at most 5 min) meanwhile. Default 10.
   */
  maxResumeAttempts?: number;
  /** How long an event that matched no flow waits in the inbox. Default `7d`. */
  eventRetention?: Duration;
  /**
   * Caps of the inbox, where unmatched events wait for a later wait: `maxPerKey`
   * (default 10) events per (topic, correlation id), `maxTotal` (default 10,000)
   * in all. When full, new unmatched events are dropped (the newest), logged once.
   */
  inbox?: Partial<InboxLimits>;
  /** Bytes of JSON state a flow may hold. Default 1 MiB. */
  stateLimit?: number;
  /**
   * A schema per controller id (e.g. `{ 'billing/invoice': z.object({ invoice: z.string() }) }`):
   * a create or state write through the manager (and so the tool) that leaves the
   * state unfit is refused with `FlowError('invalid_input')`. The runtime adds
   * `resume_event`, `resume_signal` and `failure` keys: let objects pass unknown keys.
   */
  stateSchemas?: StateSchemas;
  /**
   * Connects the engine to NATS (JetStream when the server has it): events on the
   * topics waits declare, on `subjects` and on `taskflow.resume` resume flows;
   * optionally publishes lifecycle events. Absent: no bridge, nothing connects.
   */
  nats?: NatsOptions;
  clock?: Clock;
  /**
   * A pino-style logger. Default: warnings and errors (a failing `onResume`, a
   * dead notification, a failing database, a lost event) to stderr, one line
   * each; pass `silentLogger` to hear nothing.
   */
  logger?: Logger;
  /**
   * OpenTelemetry spans and metrics (README, "Telemetry"). Default: the global
   * tracer and meter of `@opentelemetry/api` when that package is installed (a
   * no-op until the host registers an SDK); nothing without it. `false`: off.
   */
  telemetry?: TelemetryOption;
}

/** A wired runtime: store, manager and engine. */
export interface Taskflow {
  readonly store: FlowStore;
  readonly manager: FlowManager;
  readonly engine: WaitEngine;
  /** The NATS bridge when the `nats` option is set; it connects on {@link Taskflow.start}. */
  readonly bridge: NatsBridgeStatus | undefined;
  readonly clock: Clock;
  /** The horizon for timers and timeouts, in ms. */
  readonly timerMaxHorizon: number;
  /**
   * Re-arms timers from the database, starts the sweep, delivers due notifications;
   * starts the NATS bridge, which connects in the background when the bus is not
   * reachable (`bridge.state`). Rejects only when the NATS server refuses the
   * bridge's configuration; the engine is stopped then. From then on the runtime
   * keeps the process alive, as a listening server does, until {@link Taskflow.close}.
   */
  start(): Promise<void>;
  /**
   * Starts the flow of `idempotencyKey` for `owner` if there is none, and delivers
   * `event`, in ONE store commit, so concurrent calls (a webhook retried, a burst
   * of events for one invoice) cannot race: one flow, every event resumed, kept or
   * deduplicated. README, "Start or deliver".
   */
  startOrDeliver(input: StartOrDeliverInput): Promise<StartOrDeliverResult>;
  /** Waits in trouble, each with its reason and fix (README, "Doctor"); bounded, indexed reads only. */
  diagnose(options?: DiagnoseOptions): Promise<Diagnosis>;
  /** Kept events whose key nearly matches a waiting key (case, whitespace, a typo): `diagnose()`'s near misses. */
  inboxHints(options?: DiagnoseOptions): Promise<NearMiss[]>;
  /** Drains the NATS bridge, stops the engine and closes the store; the process may exit afterwards. */
  close(): Promise<void>;
  /**
   * Calls `listener` with the ids of the flows written, after each commit made
   * through this runtime (its manager, engine, tool). Commits by other handles
   * and processes are `store.watchForeignCommits`'s; together they see every
   * change (the web inspector follows both). A listener that throws is logged.
   * Returns an unsubscribe.
   */
  onCommit(listener: (flowIds: readonly string[]) => void): () => void;
}

/** Reported as the instrumentation scope version of spans and metrics. */
const RUNTIME_VERSION = '0.1.0';

/** The database path a runtime opens when none is given. */
export function defaultDatabasePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.TASKFLOW_DB_PATH && env.TASKFLOW_DB_PATH.trim() !== '' ? env.TASKFLOW_DB_PATH : resolve('data', 'taskflow.db');
}

/** Whether `database` names a PostgreSQL server rather than a SQLite file. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//.test(database);
}

async function openStore(
  database: string,
  synchronous: 'full' | 'normal' | undefined,
  busyTimeout: number | undefined,
  thread: 'main' | 'worker' = 'main',
): Promise<FlowStore> {
  if (isPostgresUrl(database)) {
    // Loaded only here, so SQLite users never need the pg package.
    return openPostgres({ connectionString: database });
  }
  const options = { path: database, ...(synchronous ? { synchronous } : {}), ...(busyTimeout === undefined ? {} : { busyTimeout }) };
  return thread === 'main' ? openSqliteStore(options) : openSqliteWorkerStore(options);
}

/**
 * The bridge is loaded only when the `nats` option asks for it: the NATS packages
 * are optional peers, so an app without them imports and runs everything else.
 */
async function loadNatsBridge(): Promise<typeof import('./nats/bridge.js').NatsBridge> {
  try {
    return (await import('./nats/bridge.js')).NatsBridge;
  } catch (error) {
    const missing = (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' && /@nats-io\//.test(String((error as Error).message));
    if (!missing) throw error;
    throw new FlowError(
      'missing_dependency',
      'the nats option needs the NATS client packages, which are optional peers: npm install @nats-io/transport-node @nats-io/jetstream',
      { cause: error },
    );
  }
}

/** Opens the runtime: the database (created and migrated as needed), the manager and the engine. */
export async function openTaskflow(options: TaskflowOptions = {}): Promise<Taskflow> {
  // Every option is checked before anything opens: a refused open leaves nothing behind.
  const checked = checkTaskflowOptions(options);
  const { timerMaxHorizon, tickInterval, resumeLease, eventRetention, stateLimit, inbox } = checked;
  const clock = checked.clock ?? systemClock;
  const logger = checked.logger ?? defaultLogger;
  // The bridge checks its options before anything opens; it reaches the engine and store once they exist.
  let deliverBatch: ((events: readonly EventDelivery[]) => Promise<DeliveryOutcome[]>) | undefined;
  let waitingTopics: (() => Promise<string[]>) | undefined;
  let tf: Taskflow | undefined;
  const nats = checked.nats;
  const NatsBridgeClass = nats ? await loadNatsBridge() : undefined;
  const bridge = nats && NatsBridgeClass
    ? readInput('nats', () => new NatsBridgeClass({ ...nats, logger, runtime: { deliverBatch: (events) => deliverBatch!(events), startOrDeliver: (input) => tf!.startOrDeliver(input), waitingTopics: () => waitingTopics!() } }))
    : undefined;
  const store = checked.store ?? (await openStore(checked.database ?? defaultDatabasePath(), checked.synchronous, checked.busyTimeout, checked.sqliteThread));
  const telemetry = await openTelemetry(checked.telemetry, logger, RUNTIME_VERSION);
  // Manager and engine commit through a view that reports each committed write to
  // the engine (timer, notifications) and the bridge (topics, lifecycle events).
  const commitListeners = new Set<(flowIds: readonly string[]) => void>();
  const committing = observeCommits(
    store,
    (writes, info) => {
      if (writes.length > 0) {
        engine.committed(writes, info);
        bridge?.committed(writes);
      }
      if (commitListeners.size > 0) {
        const ids = [...info.inserted, ...writes.map((write) => write.flow.id)];
        for (const listener of commitListeners) {
          try {
            listener(ids);
          } catch (error) {
            logger.warn({ err: error }, 'taskflow: an onCommit listener failed');
          }
        }
      }
    },
    (error) => logger.warn({ err: error }, 'taskflow: a commit listener failed'),
    telemetry.prepareCommit,
  );
  const manager = new FlowManager({
    // With a bridge, a wait's topic is refused or covered on the bus before the wait is stored.
    store: bridge ? guardTopics(committing, bridge) : committing,
    clock,
    stateLimit,
    timerMaxHorizon,
    ...(options.stateSchemas ? { stateSchemas: options.stateSchemas } : {}),
  });
  const engine: WaitEngine = new WaitEngine({
    // Guarded too: a flow startOrDeliver parks on an event wait gets its topic covered first.
    store: bridge ? guardTopics(committing, bridge) : committing,
    clock,
    logger,
    tickInterval,
    resumeLease,
    eventRetention,
    inbox,
    telemetry,
    stateLimit,
    ...(checked.onResume ? { onResume: checked.onResume } : {}),
    ...(checked.resumeConcurrency === undefined ? {} : { resumeConcurrency: checked.resumeConcurrency }),
    ...(checked.maxResumeAttempts === undefined ? {} : { maxResumeAttempts: checked.maxResumeAttempts }),
    heartbeat: () => (bridge ? bridgeCover(bridge) : null),
  });
  deliverBatch = (events) => engine.deliverBatch(events);
  // The doctor reads what the bridge covers from the heartbeat: record it as soon as it connects.
  bridge?.on('state', (state) => {
    if (state === 'connected') void engine.heartbeatNow();
  });
  waitingTopics = () => store.waitingTopics();
  telemetry.observe(store, bridge ? () => bridge.state : undefined);
  let closed = false;
  tf = {
    store,
    manager,
    engine,
    bridge,
    clock,
    timerMaxHorizon,
    startOrDeliver: (input) => startOrDeliver(manager, engine, input, stateLimit),
    diagnose: (diagnoseOptions) => diagnose(store, clock, diagnoseOptions),
    inboxHints: async (diagnoseOptions) => (await diagnose(store, clock, { ...diagnoseOptions, only: ['near_miss'] })).nearMisses,
    async start() {
      await engine.start();
      if (!bridge) return;
      try {
        await bridge.start();
      } catch (error) {
        await engine.stop();
        throw error;
      }
    },
    onCommit(listener) {
      commitListeners.add(listener);
      return () => void commitListeners.delete(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      commitListeners.clear();
      await bridge?.close();
      await engine.stop();
      telemetry.close();
      await store.close();
    },
  };
  return tf;
}

/** Refuses, before anything opens, a count option that is not a positive integer. */

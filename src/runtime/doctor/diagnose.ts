import type { Clock } from '../clock.js';
import { parseDuration, type Duration } from '../duration.js';
import { FlowError } from '../errors.js';
import type { Flow } from '../flow.js';
import { subjectMatches } from '../nats/subject.js';
import type { EventKey, FlowStore, InboxKeySummary } from '../store/contract.js';
import type { Heartbeat, WaitingKey } from '../store/diagnostics.js';
import { describeValue } from '../text.js';
import type { WaitCondition } from '../wait.js';
import { nearMatch, type KeyDifference } from './similarity.js';
import { waitFacts } from './wait-facts.js';

/** The kinds of trouble the doctor finds, in the order it reports them. */
export const FINDING_KINDS = ['no_engine', 'uncovered_topic', 'near_miss', 'stale_manual_wait', 'dead_notification'] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

/** One trouble: which flows, why they cannot (or may never) resume, and what to do. */
export interface Finding {
  kind: FindingKind;
  /** The flows concerned, at most `limit`. */
  flowIds: string[];
  /** Why, in one sentence an operator (or a model) can act on. */
  reason: string;
  /** What to do about it. */
  fix: string;
  /** The event key concerned (`uncovered_topic` has only the topic). */
  topic?: string;
  correlationId?: string;
  /** `near_miss`: the kept event's key that nearly matches. */
  kept?: EventKey;
}

/** A kept event whose key nearly matches the key flows wait on: the inspector's hint. */
export interface NearMiss {
  /** The key of the kept events. */
  kept: EventKey & { events: number; newestAt: Date };
  /** The key flows wait on. */
  waiting: EventKey;
  /** The flows waiting on `waiting`, at most `limit`. */
  flowIds: string[];
  /** How the keys differ: only in case, only in whitespace, or a typo of edit distance `distance` (≤ 2). */
  difference: KeyDifference;
  distance: number;
}

/** What {@link diagnose} found. */
export interface Diagnosis {
  /** The clock time of the diagnosis. */
  at: Date;
  /** True when nothing was found. */
  ok: boolean;
  findings: Finding[];
  /** The near misses behind the `near_miss` findings, with their details. */
  nearMisses: NearMiss[];
  /** Runtimes that recorded a heartbeat recently (within `engineSilence`). */
  engines: Heartbeat[];
  /** True when a bounded read stopped at its limit: there may be more than was reported. */
  truncated: boolean;
}

/** Options of `tf.diagnose()` and `taskflow doctor`. Every one has a default. */
export interface DiagnoseOptions {
  /** An engine whose last heartbeat is older than this counts as gone. Default `1m`. */
  engineSilence?: Duration;
  /** A manual wait with no timeout that has waited longer than this is reported. Default `7d`. */
  manualWaitAge?: Duration;
  /** Flows named per finding, and findings per kind. Default 100, at most 10,000. */
  limit?: number;
  /** Run only these checks. Default all. */
  only?: readonly FindingKind[];
}

interface Settings {
  engineSilence: number;
  manualWaitAge: number;
  limit: number;
  only: ReadonlySet<FindingKind>;
}

/** Waiting keys read per topic by the near-miss check; kept keys compared at most. */
const KEYS_PER_TOPIC = 10_000;
const MAX_KEPT_KEYS = 2_000;
/** Heartbeat rows read. */
const MAX_HEARTBEATS = 200;
/** Oldest waiting flows examined for stale manual waits. */
const MANUAL_SCAN = 2_000;
const PAGE = 500;

export function settings(options: DiagnoseOptions = {}): Settings {
  if (typeof options !== 'object' || options === null) throw new FlowError('invalid_input', 'diagnose options must be an object');
  const limit = options.limit ?? 100;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new FlowError('invalid_input', `limit must be an integer from 1 to 10000, got ${describeValue(limit)}`);
  }
  const only = options.only ?? FINDING_KINDS;
  for (const kind of only) {
    if (!(FINDING_KINDS as readonly string[]).includes(kind)) throw new FlowError('invalid_input', `only: unknown check ${describeValue(kind)}; use ${FINDING_KINDS.join(', ')}`);
  }
  return {
    engineSilence: parseDuration(options.engineSilence ?? '1m', 'engineSilence'),
    manualWaitAge: parseDuration(options.manualWaitAge ?? '7d', 'manualWaitAge'),
    limit,
    only: new Set(only),
  };
}

/** What every check reads from, with the shared reads done once. */
export class DoctorContext {
  private heartbeats: Promise<Heartbeat[]> | undefined;
  private topics: Promise<string[]> | undefined;
  private readonly keys = new Map<string, Promise<WaitingKey[]>>();
  truncated = false;
  /** What the near-miss check found, with details (`Diagnosis.nearMisses`). */
  nearMisses: NearMiss[] = [];

  constructor(
    readonly store: FlowStore,
    readonly now: number,
    readonly settings: Settings,
  ) {}

  allHeartbeats(): Promise<Heartbeat[]> {
    this.heartbeats ??= this.store.listHeartbeats(MAX_HEARTBEATS);
    return this.heartbeats;
  }

  async liveEngines(): Promise<Heartbeat[]> {
    return (await this.allHeartbeats()).filter((beat) => beat.beatAt.getTime() >= this.now - this.settings.engineSilence);
  }

  waitingTopics(): Promise<string[]> {
    this.topics ??= this.store.waitingTopics();
    return this.topics;
  }

  /** Flows waiting on `topic`, by correlation id (bounded). */
  waitingKeys(topic: string): Promise<WaitingKey[]> {
    let keys = this.keys.get(topic);
    if (!keys) {
      keys = this.store.waitingKeys(topic, KEYS_PER_TOPIC).then((rows) => {
        if (rows.length >= KEYS_PER_TOPIC) this.truncated = true;
        return rows;
      });
      this.keys.set(topic, keys);
    }
    return keys;
  }

  async flowsOn(key: EventKey): Promise<string[]> {
    return (await this.waitingKeys(key.topic)).filter((k) => k.correlationId === key.correlationId).slice(0, this.settings.limit).map((k) => k.flowId);
  }
}

/** One check of the doctor. A new kind of trouble (or of wait) is one more entry in {@link DOCTOR_CHECKS}. */
export interface DoctorCheck {
  kind: FindingKind;
  run(context: DoctorContext): Promise<Finding[]>;
}

const key = (k: EventKey) => `${k.topic}/${k.correlationId}`;

/** (c) Timers due while no engine has ticked for `engineSilence`. */
const noEngine: DoctorCheck = {
  kind: 'no_engine',
  async run(c) {
    const due = (await c.store.listWaking(c.settings.limit)).filter((flow) => {
      const wakeAt = flow.wait ? waitFacts(flow.wait).wakeAt : undefined;
      return wakeAt !== undefined && wakeAt.getTime() <= c.now;
    });
    if (due.length === 0 || (await c.liveEngines()).length > 0) return [];
    const last = (await c.allHeartbeats())[0];
    const since = last ? `no engine has ticked since ${last.beatAt.toISOString()} (${last.host})` : 'no engine has ever recorded a heartbeat on this database';
    return [
      {
        kind: 'no_engine',
        flowIds: due.map((flow) => flow.id),
        reason: `${due.length}${due.length >= c.settings.limit ? '+' : ''} timer(s) or timeout(s) are due, but ${since}`,
        fix: 'start a runtime with tf.start() (its engine resumes due flows at its first tick); a runtime that only opens the database, like the CLI, resumes nothing',
      },
    ];
  },
};

/**
 * Why no NATS event on `topic` can reach this database's flows, or undefined when
 * a live, connected bridge covers it, or when no bridge ever ran here (events then
 * come through `deliver` calls, which the doctor cannot see).
 */
export async function uncoveredWhy(c: DoctorContext, topic: string): Promise<string | undefined> {
  const everBridged = (await c.allHeartbeats()).some((beat) => beat.bridge !== null);
  if (!everBridged) return undefined;
  const bridges = (await c.liveEngines()).filter((beat) => beat.bridge !== null).map((beat) => beat.bridge!);
  if (bridges.some((bridge) => bridge.truncated)) return undefined;
  const covering = bridges.filter((bridge) => bridge.state === 'connected');
  if (covering.some((bridge) => bridge.subjects.some((pattern) => subjectMatches(pattern, topic)))) return undefined;
  if (bridges.length === 0) return 'no runtime with a NATS bridge is running';
  if (covering.length === 0) return `the NATS bridge(s) are ${[...new Set(bridges.map((b) => b.state))].join(', ')}, not connected`;
  return 'no running NATS bridge covers it';
}

/** (a) Event waits on a topic no running bridge covers, when the deployment runs NATS bridges. */
const uncoveredTopic: DoctorCheck = {
  kind: 'uncovered_topic',
  async run(c) {
    const findings: Finding[] = [];
    for (const topic of await c.waitingTopics()) {
      const why = await uncoveredWhy(c, topic);
      if (why === undefined) continue;
      // An any-of flow with two keys on the topic is named once.
      const flowIds = [...new Set((await c.waitingKeys(topic)).map((k) => k.flowId))].slice(0, c.settings.limit);
      if (flowIds.length === 0) continue;
      findings.push({
        kind: 'uncovered_topic',
        topic,
        flowIds,
        reason: `flows wait on events of ${topic}, but ${why}: no NATS event on it can reach them`,
        fix: `start a runtime with the NATS bridge and declare the topic in nats.subjects (for example "${topic.split('.')[0]}.>"), or deliver the event yourself (tf.engine.deliver or taskflow deliver ${topic} <correlation-id>)`,
      });
      if (findings.length >= c.settings.limit) break;
    }
    return findings;
  },
};

/** (b) Kept events whose key nearly matches a key flows wait on. */
export async function findNearMisses(c: DoctorContext, kept: readonly InboxKeySummary[]): Promise<NearMiss[]> {
  const topics = await c.waitingTopics();
  const misses: NearMiss[] = [];
  if (kept.length > MAX_KEPT_KEYS) c.truncated = true;
  for (const k of kept.slice(0, MAX_KEPT_KEYS)) {
    for (const topic of topics) {
      const topicMatch = topic === k.topic ? { difference: undefined, distance: 0 } : nearMatch(k.topic, topic);
      if (!topicMatch) continue;
      const seen = new Map<string, NearMiss>();
      for (const w of await c.waitingKeys(topic)) {
        if (topic === k.topic && w.correlationId === k.correlationId) continue;
        const idMatch = w.correlationId === k.correlationId ? { difference: undefined, distance: 0 } : nearMatch(k.correlationId, w.correlationId);
        if (!idMatch) continue;
        const distance = topicMatch.distance + idMatch.distance;
        if (distance > 2) continue;
        const existing = seen.get(w.correlationId);
        if (existing) {
          if (existing.flowIds.length < c.settings.limit) existing.flowIds.push(w.flowId);
          continue;
        }
        const difference: KeyDifference = topicMatch.difference === 'typo' || idMatch.difference === 'typo' ? 'typo' : (idMatch.difference ?? topicMatch.difference ?? 'typo');
        const miss: NearMiss = {
          kept: { topic: k.topic, correlationId: k.correlationId, events: k.events, newestAt: k.newestAt },
          waiting: { topic, correlationId: w.correlationId },
          flowIds: [w.flowId],
          difference,
          distance,
        };
        seen.set(w.correlationId, miss);
        misses.push(miss);
      }
    }
  }
  return misses;
}

const DIFFERENCE_TEXT: Record<KeyDifference, string> = { case: 'differs only in case', whitespace: 'differs only in whitespace', typo: 'looks like a typo' };

/** The sentence a near miss is reported with. */
export function describeNearMiss(miss: NearMiss): { reason: string; fix: string } {
  return {
    reason: `${miss.flowIds.length} flow(s) wait on ${key(miss.waiting)}, and ${miss.kept.events} event(s) are kept for ${key(miss.kept)}, which ${DIFFERENCE_TEXT[miss.difference]}${miss.difference === 'typo' ? ` (edit distance ${miss.distance})` : ''}: keys match exactly, so they never meet`,
    fix: `if they are the same thing, fix the key at its source (the sender or the wait), or deliver the event again on ${key(miss.waiting)} (taskflow deliver ${miss.waiting.topic} ${miss.waiting.correlationId} --payload ...)`,
  };
}

const nearMiss: DoctorCheck = {
  kind: 'near_miss',
  async run(c) {
    const misses = (await findNearMisses(c, await c.store.listInbox())).slice(0, c.settings.limit);
    c.nearMisses = misses;
    return misses.map((miss) => ({ kind: 'near_miss', topic: miss.waiting.topic, correlationId: miss.waiting.correlationId, kept: { topic: miss.kept.topic, correlationId: miss.kept.correlationId }, flowIds: miss.flowIds, ...describeNearMiss(miss) }));
  },
};

/** (d) Manual waits with no timeout that have waited longer than `manualWaitAge`. */
const staleManualWait: DoctorCheck = {
  kind: 'stale_manual_wait',
  async run(c) {
    const cutoff = c.now - c.settings.manualWaitAge;
    const stale: Flow[] = [];
    for (let offset = 0; offset < MANUAL_SCAN; offset += PAGE) {
      const page = await c.store.listByStatus('waiting', { limit: PAGE, offset });
      for (const flow of page) {
        if (flow.updatedAt.getTime() > cutoff) return report(stale);
        const facts = flow.wait ? waitFacts(flow.wait) : undefined;
        if (facts?.signal && facts.wakeAt === undefined && facts.eventKeys.length === 0) stale.push(flow);
        if (stale.length >= c.settings.limit) return report(stale);
      }
      if (page.length < PAGE) return report(stale);
    }
    c.truncated = true;
    return report(stale);

    function report(flows: Flow[]): Finding[] {
      return flows.map((flow) => {
        const names = signalNames(flow.wait);
        const signal = names.length > 0 ? `the signal ${names.map((name) => `"${name}"`).join(' or ')}` : 'a signal';
        return {
          kind: 'stale_manual_wait' as const,
          flowIds: [flow.id],
          reason: `flow ${flow.id} has waited for ${signal} since ${flow.updatedAt.toISOString()}, with no timeout: nothing but that signal will ever resume it`,
          fix: `send it (taskflow signal ${flow.id}${names.length > 0 ? ` --signal ${names[0]}` : ''}), cancel it (taskflow cancel ${flow.id}), or give manual waits a timeoutAt`,
        };
      });
    }
  },
};

/** The signal names a wait accepts: a manual wait's, or the manual conditions' of an any-of wait. */
function signalNames(wait: WaitCondition | null): string[] {
  if (wait?.kind === 'manual') return wait.signal === undefined ? [] : [wait.signal];
  if (wait?.kind === 'any') return wait.of.flatMap((c) => (c.kind === 'manual' ? [c.signal] : []));
  return [];
}

/** (e) Resume notifications parked as dead. */
const deadNotification: DoctorCheck = {
  kind: 'dead_notification',
  async run(c) {
    const dead = await c.store.listDeadNotifications(c.settings.limit);
    const byFlow = new Map<string, typeof dead>();
    for (const n of dead) byFlow.set(n.flowId, [...(byFlow.get(n.flowId) ?? []), n]);
    return [...byFlow].map(([flowId, notes]) => ({
      kind: 'dead_notification' as const,
      flowIds: [flowId],
      reason: `${notes.length} resume notification(s) of flow ${flowId} were parked as dead after ${notes[0]!.attempts} failed deliveries to onResume; last error: ${notes[0]!.lastError ?? 'none recorded'}`,
      fix: `fix what makes onResume fail, then requeue it: taskflow requeue ${flowId} (or tf.engine.requeueDead)`,
    }));
  },
};

/** Every check, in report order. Add one here to teach the doctor a new trouble. */
export const DOCTOR_CHECKS: readonly DoctorCheck[] = [noEngine, uncoveredTopic, nearMiss, staleManualWait, deadNotification];

/**
 * Lists waits in trouble, each with its reason and fix: due timers with no engine
 * alive, event waits on a topic no running NATS bridge covers, kept events whose
 * key nearly matches a waiting key, old manual waits with no timeout, dead
 * notifications. Only bounded, indexed reads; writes nothing.
 */
export async function diagnose(store: FlowStore, clock: Clock, options?: DiagnoseOptions & { checks?: readonly DoctorCheck[] }): Promise<Diagnosis> {
  const s = settings(options);
  const now = clock.now();
  const c = new DoctorContext(store, now, s);
  const findings: Finding[] = [];
  for (const check of options?.checks ?? DOCTOR_CHECKS) {
    if (s.only.has(check.kind)) findings.push(...(await check.run(c)));
  }
  return { at: new Date(now), ok: findings.length === 0, findings, nearMisses: c.nearMisses, engines: await c.liveEngines(), truncated: c.truncated };
}

import type { Backoff } from '../backoff.js';
import { parseDuration } from '../duration.js';
import { FlowError } from '../errors.js';
import { RESUME_SUBJECT } from './message.js';
import type { NatsConnectionOptions, NatsOptions, NatsStartRule } from './options.js';
import { checkStartRules } from './start-rules.js';
import { declaredPatternProblem, isLiteralSubject, minimalCover } from './subject.js';

const DEFAULT_STREAM = 'TASKFLOW';
const DEFAULT_DURABLE = 'taskflow';
const DEFAULT_COVER_TIMEOUT_MS = 2_000;
/** The first delay between connection attempts (unless `connection.reconnectTimeWait` says otherwise), and the longest. */
const CONNECT_RETRY_FIRST_MS = 500;
const CONNECT_RETRY_MAX_MS = 10_000;

/** The bridge's options, checked and defaulted once, before any part of the bridge exists. */
export interface BridgeSettings {
  readonly servers: string | string[];
  readonly connection: NatsConnectionOptions | undefined;
  readonly jetstream: 'auto' | boolean;
  readonly stream: string;
  readonly durable: string;
  readonly resumeSubject: string;
  /** `nats.subjects`, minimal (no pattern another one already matches). */
  readonly declared: readonly string[];
  /** The resume subject and the declared patterns, minimal: what the stream captures (or, on core NATS, pinned subscriptions). */
  readonly fixedSubjects: readonly string[];
  readonly startRules: readonly NatsStartRule[];
  readonly publishLifecycle: boolean;
  /** How long covering a new topic may hold up its wait, ms. */
  readonly coverTimeout: number;
  /** How often unused topic subscriptions are swept, ms. */
  readonly sweepInterval: number;
  /** Delays between connection attempts (jittered by the connection loop). */
  readonly connectRetry: Backoff;
}

/** Checks and defaults the bridge's options; throws `FlowError('invalid_input')` naming the first bad one. */
export function resolveBridgeOptions(options: NatsOptions & { coverTimeout?: number }): BridgeSettings {
  const resumeSubject = options.resumeSubject ?? RESUME_SUBJECT;
  if (typeof resumeSubject !== 'string' || !isLiteralSubject(resumeSubject)) {
    throw new FlowError('invalid_input', `nats.resumeSubject: ${JSON.stringify(resumeSubject)} is not a NATS subject without wildcards`);
  }
  const sweepInterval = parseDuration(options.topicSweep ?? '60s', 'nats.topicSweep');
  if (sweepInterval <= 0) throw new FlowError('invalid_input', 'nats.topicSweep must be a positive duration');
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
  if (servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.trim() === '')) {
    throw new FlowError('invalid_input', 'nats.servers must name at least one server URL');
  }
  const configured = options.subjects ?? [];
  if (!Array.isArray(configured)) throw new FlowError('invalid_input', 'nats.subjects must be an array of subject patterns');
  for (const pattern of configured) {
    const problem = typeof pattern === 'string' ? declaredPatternProblem(pattern) : 'a subject pattern must be a string';
    if (problem) throw new FlowError('invalid_input', `nats.subjects: ${problem}`);
  }
  const declared = minimalCover(configured);
  return {
    servers: options.servers,
    connection: options.connection,
    jetstream: options.jetstream ?? 'auto',
    stream: options.stream ?? DEFAULT_STREAM,
    durable: options.durable ?? DEFAULT_DURABLE,
    resumeSubject,
    declared,
    fixedSubjects: minimalCover([resumeSubject, ...configured]),
    startRules: checkStartRules(options.startOrDeliver, declared),
    publishLifecycle: Boolean(options.publishLifecycle),
    coverTimeout: options.coverTimeout ?? DEFAULT_COVER_TIMEOUT_MS,
    sweepInterval,
    connectRetry: { initialMs: Math.max(1, options.connection?.reconnectTimeWait ?? CONNECT_RETRY_FIRST_MS), maxMs: CONNECT_RETRY_MAX_MS },
  };
}

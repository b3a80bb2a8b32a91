import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from './clock.js';
import { parseDuration, type Duration } from './duration.js';
import { FlowError } from './errors.js';
import {
  FLOW_STATUSES,
  STEP_STATUSES,
  isFlowStatus,
  type Flow,
  type FlowEvent,
  type FlowStatus,
  type FlowStep,
  type JsonObject,
  type StepStatus,
} from './flow.js';
import {
  cancelMove,
  failMove,
  finishMove,
  observeStepMove,
  requestCancelMove,
  resumeMove,
  startMove,
  chain,
  updateStateMove,
  waitMove,
} from './moves.js';
import { checkStateSchema, type StateSchemas } from './state-schema.js';
import type { Decision, FlowStore, FlowWrite, ListOptions, Loaded, LoadRequest } from './store.js';
import { checkFlowId, checkPatch, checkState, DEFAULT_STATE_LIMIT, optionalText, requireText } from './validate.js';
import { assertWithinHorizon, parseWait, type WaitInput } from './wait.js';
import type { Wake } from './wake.js';

/** Input of {@link FlowManager.createManaged} and {@link FlowManager.createMirrored}. */
export interface CreateFlowInput {
  controllerId: string;
  goal: string;
  ownerSessionKey: string;
  requesterOrigin?: string;
  /** Default `init`. */
  currentStep?: string;
  /** Default `{}`. */
  state?: JsonObject;
  /** Unique per owner: creating again with the same key returns the first flow. */
  idempotencyKey?: string;
}

/** Input of {@link FlowManager.recordStepObservation}. */
export interface StepObservation {
  flowId: string;
  runId: string;
  task: string;
  status: StepStatus;
  childSessionKey?: string;
  result?: unknown;
  /** What ran the step. Default `external`. */
  runtime?: string;
}

/** Optimistic concurrency: refuse the write with `revision_mismatch` unless the flow is at this revision. */
export interface WriteOptions {
  expectedRevision?: number;
}

export interface FlowManagerOptions {
  store: FlowStore;
  clock?: Clock;
  /** Bytes of JSON state a flow may hold. Default 1 MiB. */
  stateLimit?: number;
  /** How far ahead a timer or timeout may be, in ms. Default: unlimited. */
  timerMaxHorizon?: number;
  /** A schema per controller id: a write that leaves a flow's state unfit is refused (`invalid_input`). */
  stateSchemas?: StateSchemas;
}

const MAX_PAGE = 10_000;

/**
 * Every mutation of a flow. Each is one transaction that reads the flow, checks
 * the move, writes it at revision + 1 and appends one audit event; a refused
 * call throws a `FlowError` and writes nothing. Concurrent callers never see
 * each other as errors: the store serialises them.
 */
export class FlowManager {
  private readonly store: FlowStore;
  private readonly clock: Clock;
  private readonly stateLimit: number;
  private readonly horizon: number;
  private readonly stateSchemas: StateSchemas | undefined;

  constructor(options: FlowManagerOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.stateLimit = options.stateLimit ?? DEFAULT_STATE_LIMIT;
    this.horizon = options.timerMaxHorizon ?? Number.POSITIVE_INFINITY;
    this.stateSchemas = options.stateSchemas;
  }

  /** Creates a flow in `created`, at revision 0, with its `created` audit event. */
  async createManaged(input: CreateFlowInput): Promise<Flow> {
    return this.create(input, 'created');
  }

  /** Creates a flow that records work done elsewhere: born `running`. */
  async createMirrored(input: CreateFlowInput): Promise<Flow> {
    return this.create(input, 'running');
  }

  private async create(input: CreateFlowInput, status: 'created' | 'running'): Promise<Flow> {
    if (typeof input !== 'object' || input === null) throw new FlowError('invalid_input', 'create needs an input object');
    const controllerId = requireText(input.controllerId, 'controllerId');
    const goal = requireText(input.goal, 'goal');
    const owner = requireText(input.ownerSessionKey, 'ownerSessionKey');
    const requesterOrigin = optionalText(input.requesterOrigin, 'requesterOrigin') ?? null;
    const currentStep = optionalText(input.currentStep, 'currentStep') ?? 'init';
    const idempotencyKey = optionalText(input.idempotencyKey, 'idempotencyKey');
    const state = input.state ?? {};
    const stateJson = checkState(state, this.stateLimit);
    checkStateSchema(this.stateSchemas, controllerId, state);
    const now = new Date(this.clock.now());
    const flow: Flow = {
      id: randomUUID(),
      controllerId,
      goal,
      ownerSessionKey: owner,
      requesterOrigin,
      currentStep,
      state,
      wait: null,
      status,
      cancelRequested: false,
      revision: 0,
      createdAt: now,
      updatedAt: now,
    };
    const load: LoadRequest = idempotencyKey ? { idempotency: { owner, key: idempotencyKey } } : {};
    return this.store.commit(load, (loaded) => {
      if (loaded.idempotent) return { result: loaded.idempotent };
      const payload: JsonObject = { status, controllerId, goal };
      const event = { kind: 'created' as const, payload };
      const insert = idempotencyKey ? { flow, idempotencyKey, event, stateJson } : { flow, event, stateJson };
      return { result: flow, inserts: [insert] };
    });
  }

  /** The flow, or `undefined` when the id is unknown or malformed. */
  async get<S extends object = JsonObject>(id: string): Promise<Flow<S> | undefined> {
    if (typeof id !== 'string') return undefined;
    try {
      return (await this.store.getFlow(checkFlowId(id))) as Flow<S> | undefined;
    } catch (error) {
      if (FlowError.isInstance(error) && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  /** An owner's flows, newest first. */
  async listByOwner(owner: string, options: ListOptions = {}): Promise<Flow[]> {
    return this.store.listByOwner(requireText(owner, 'owner'), checkList(options));
  }

  /** Flows in a status, least recently updated first. */
  async listByStatus(status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
    if (!isFlowStatus(status)) {
      throw new FlowError('invalid_input', `status must be one of ${FLOW_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
    }
    return this.store.listByStatus(status, checkList(options));
  }

  /** created → running. */
  async startRunning(id: string, options?: WriteOptions): Promise<Flow> {
    return this.mutate(id, options, (flow, now) => startMove(flow, now));
  }

  /**
   * running → waiting. An event wait whose key already has a kept event (one that
   * arrived before anyone waited) resumes at once, in the same transaction.
   */
  async setWaiting(id: string, wait: WaitInput, options?: WriteOptions): Promise<Flow> {
    const condition = parseWait(wait);
    const now = this.clock.now();
    assertWithinHorizon(condition, now, this.horizon);
    const key = condition.kind === 'external_event' ? { topic: condition.topic, correlationId: condition.correlationId, now } : undefined;
    return this.mutate(
      id,
      options,
      (current, at, loaded) => {
        const waiting = waitMove(current, at, condition);
        const kept = loaded.keptEvent;
        if (!kept) return { write: waiting };
        const wake: Wake = { reason: 'event', at, topic: kept.topic, correlationId: kept.correlationId };
        if (kept.payload !== undefined) wake.payload = kept.payload;
        return { write: chain(waiting, (next) => resumeMove(next, at, wake)), consumeKeptEvent: kept.id };
      },
      key ? { keptEventFor: key } : {},
    );
  }

  /** waiting → running, merging `patch` and clearing the wait; recorded as a `manual` resume. */
  async resume(id: string, patch?: JsonObject, options?: WriteOptions): Promise<Flow> {
    const checked = patch === undefined ? undefined : checkPatch(patch, this.stateLimit);
    return this.mutate(id, options, (flow, now) => resumeMove(flow, now, { reason: 'manual', at: now }, checked));
  }

  /** running → finished, merging `finalState`. */
  async finish(id: string, finalState?: JsonObject, options?: WriteOptions): Promise<Flow> {
    const checked = finalState === undefined ? undefined : checkPatch(finalState, this.stateLimit, 'finalState');
    return this.mutate(id, options, (flow, now) => finishMove(flow, now, checked));
  }

  /** running or waiting → failed, stamping `state.failure = { reason, at }`. */
  async fail(id: string, reason: string, options?: WriteOptions): Promise<Flow> {
    const why = requireText(reason, 'reason');
    return this.mutate(id, options, (flow, now) => failMove(flow, now, why));
  }

  /**
   * Sets the sticky cancel flag. A waiting flow is cancelled at once; a created or
   * running one keeps going until its controller calls {@link cancel}. A terminal
   * flow, or one already asked, is returned unchanged.
   */
  async requestCancel(id: string, options?: WriteOptions): Promise<Flow> {
    return this.mutate(id, options, (flow, now) => requestCancelMove(flow, now));
  }

  /** Any non-terminal status → cancelled. */
  async cancel(id: string, options?: WriteOptions): Promise<Flow> {
    return this.mutate(id, options, (flow, now) => cancelMove(flow, now));
  }

  /** Shallow-merges `patch` into the state and optionally moves `currentStep`. */
  async updateState(id: string, patch: JsonObject, nextStep?: string, options?: WriteOptions): Promise<Flow> {
    const checked = checkPatch(patch, this.stateLimit);
    const step = optionalText(nextStep, 'nextStep');
    return this.mutate(id, options, (flow, now) => updateStateMove(flow, now, checked, step));
  }

  /**
   * Records (or updates, by flow + run id) a step of work done elsewhere. An
   * earlier `childSessionKey` is kept when the new observation has none.
   */
  async recordStepObservation(observation: StepObservation, options?: WriteOptions): Promise<FlowStep> {
    if (typeof observation !== 'object' || observation === null) throw new FlowError('invalid_input', 'an observation object is required');
    const flowId = checkFlowId(observation.flowId);
    const runId = requireText(observation.runId, 'runId');
    const task = requireText(observation.task, 'task');
    const status = observation.status;
    if (!(STEP_STATUSES as readonly string[]).includes(status)) {
      throw new FlowError('invalid_input', `step status must be one of ${STEP_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
    }
    const childSessionKey = optionalText(observation.childSessionKey, 'childSessionKey');
    const runtime = optionalText(observation.runtime, 'runtime') ?? 'external';
    if (observation.result !== undefined) checkJson(observation.result, this.stateLimit);
    const now = new Date(this.clock.now());
    return this.store.commit({ flowIds: [flowId], step: { flowId, runId } }, (loaded) => {
      const flow = this.found(loaded, flowId, options);
      const write = observeStepMove(flow, now, { runId, task, status });
      const earlier = loaded.step;
      const step: FlowStep = {
        id: earlier?.id ?? randomUUID(),
        flowId,
        runtime,
        childSessionKey: childSessionKey ?? earlier?.childSessionKey ?? null,
        runId,
        task,
        status,
        result: observation.result === undefined ? (earlier?.result ?? null) : observation.result,
        createdAt: earlier?.createdAt ?? now,
        updatedAt: now,
      };
      return { result: step, writes: [write], upsertStep: step };
    });
  }

  async listSteps(flowId: string): Promise<FlowStep[]> {
    return this.store.listSteps(checkFlowId(flowId));
  }

  async listEvents(flowId: string): Promise<FlowEvent[]> {
    return this.store.listEvents(checkFlowId(flowId));
  }

  /**
   * Deletes terminal flows last updated at or before now − `olderThan`, with their
   * steps and events; returns how many went. `0` removes every terminal flow.
   */
  async pruneTerminal(olderThan: Duration): Promise<number> {
    return this.store.pruneTerminal(this.clock.now() - parseDuration(olderThan, 'olderThan'));
  }

  /**
   * The one path every single-flow mutation takes: load under lock, check the
   * expected revision, build the write, check the resulting state's size.
   */
  private async mutate(
    id: string,
    options: WriteOptions | undefined,
    build: (flow: Flow, now: Date, loaded: Loaded) => FlowWrite | undefined | { write: FlowWrite; consumeKeptEvent?: number },
    extraLoad: LoadRequest = {},
  ): Promise<Flow> {
    const flowId = checkFlowId(id);
    const now = new Date(this.clock.now());
    return this.store.commit({ ...extraLoad, flowIds: [flowId] }, (loaded): Decision<Flow> => {
      const current = this.found(loaded, flowId, options);
      const built = build(current, now, loaded);
      if (built === undefined) return { result: current };
      const { write, consumeKeptEvent } = 'write' in built ? built : { write: built, consumeKeptEvent: undefined };
      const checked: FlowWrite = { ...write, stateJson: checkState(write.flow.state, this.stateLimit) };
      if (write.flow.state !== current.state) checkStateSchema(this.stateSchemas, write.flow.controllerId, write.flow.state);
      return consumeKeptEvent === undefined
        ? { result: write.flow, writes: [checked] }
        : { result: write.flow, writes: [checked], consumeKeptEvent };
    });
  }

  private found(loaded: Loaded, id: string, options: WriteOptions | undefined): Flow {
    const flow = loaded.flows[0];
    if (!flow) throw new FlowError('not_found', `no flow with id ${id}`);
    const expected = options?.expectedRevision;
    if (expected !== undefined && flow.revision !== expected) {
      throw new FlowError('revision_mismatch', `flow ${id} is at revision ${flow.revision}, not ${expected}; read it again and retry`);
    }
    return flow;
  }
}

function checkList(options: ListOptions): ListOptions {
  const limit = options.limit ?? 1000;
  const offset = options.offset ?? 0;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new FlowError('invalid_input', `limit must be an integer from 1 to ${MAX_PAGE}, got ${limit}`);
  }
  if (!Number.isInteger(offset) || offset < 0) throw new FlowError('invalid_input', `offset must be a non-negative integer, got ${offset}`);
  if (options.status !== undefined && !isFlowStatus(options.status)) {
    throw new FlowError('invalid_input', `status must be one of ${FLOW_STATUSES.join(', ')}`);
  }
  return { ...options, limit, offset };
}

function checkJson(value: unknown, limit: number): void {
  checkState({ result: value }, limit, 'result');
}

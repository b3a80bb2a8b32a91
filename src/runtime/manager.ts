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
import type { Decision, FlowStore, FlowWrite, ListOptions, Loaded, LoadRequest } from './store/contract.js';
import { checkText, describeValue, normaliseKey, optionalKey, optionalText, readInput } from './text.js';
import {
  checkExpectedRevision,
  checkFlowId,
  checkJsonObject,
  checkJsonValue,
  DEFAULT_STATE_LIMIT,
  inputObject,
  optionsObject,
  sizedWrite,
} from './validate.js';
import { assertWithinHorizon, parseWait, type WaitCondition, type WaitInput } from './wait.js';
import { anyOfKeysOf, eventWakeFor } from './any-of.js';
import { nextOccurrenceMove, scheduleMove } from './recurring/moves.js';
import { isRecurringInput, parseRecurring } from './recurring/parse.js';
import { createInsert, type PreparedFlow } from './prepared-flow.js';
import { timeOrderedId } from './time-ordered-id.js';
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

/** Input of {@link FlowManager.createAndStart}: a new flow, started, and parked when `wait` is given. */
export interface StartFlowInput extends CreateFlowInput {
  /** Park the flow at once on this wait (validated as {@link FlowManager.setWaiting} would). */
  wait?: WaitInput;
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
/** Flows one {@link FlowManager.createAndStartMany} call may create. */
export const MAX_BULK_CREATE = 1_000;

/** A create checked and ready to commit: what to load and the pure plan. */
interface PreparedCreate {
  load: LoadRequest;
  plan: (loaded: Loaded) => Decision<Flow>;
}

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
    if (!Number.isInteger(this.stateLimit) || this.stateLimit < 2) {
      throw new FlowError('invalid_input', `stateLimit must be a whole number of bytes of at least 2, got ${describeValue(this.stateLimit)}`);
    }
    if (typeof this.horizon !== 'number' || !(this.horizon > 0)) {
      throw new FlowError('invalid_input', `timerMaxHorizon must be a positive number of milliseconds, got ${describeValue(this.horizon)}`);
    }
  }

  /** Creates a flow in `created`, at revision 0, with its `created` audit event. */
  async createManaged(input: CreateFlowInput): Promise<Flow> {
    return this.create(input, 'created');
  }

  /** Creates a flow that records work done elsewhere: born `running`. */
  async createMirrored(input: CreateFlowInput): Promise<Flow> {
    return this.create(input, 'running');
  }

  /**
   * One agent step in one transaction: creates a managed flow and starts it
   * (`created` → `running`), and parks it on `wait` when given (→ `waiting`).
   * The audit log holds one event per move (`created`, `started`, `waiting`), as
   * if the calls were made one by one. An event wait whose key already has a
   * kept event resumes at once, as {@link setWaiting} does. With an
   * `idempotencyKey` already used, returns that flow as it is now.
   */
  async createAndStart(input: StartFlowInput): Promise<Flow> {
    const prepared = this.prepareStart(input);
    return this.store.commit(prepared.load, prepared.plan);
  }

  /**
   * {@link createAndStart} for many flows at once (at most {@link MAX_BULK_CREATE}),
   * in one transaction. Every input is checked first: one bad input refuses the
   * whole call with `invalid_input` naming its index, and nothing is written.
   * Returns the flows in input order.
   */
  async createAndStartMany(inputs: readonly StartFlowInput[]): Promise<Flow[]> {
    if (!Array.isArray(inputs) || inputs.length > MAX_BULK_CREATE) {
      throw new FlowError('invalid_input', `createAndStartMany takes an array of at most ${MAX_BULK_CREATE} flows, got ${describeValue(inputs)}`);
    }
    const prepared = inputs.map((input, index) => {
      try {
        return this.prepareStart(input);
      } catch (error) {
        if (FlowError.isInstance(error) && error.code === 'invalid_input') throw new FlowError('invalid_input', `flow ${index}: ${error.message}`);
        throw error;
      }
    });
    const outcomes = await this.store.commitBatch(prepared);
    return outcomes.map((outcome) => {
      if (!outcome.ok) throw outcome.error;
      return outcome.result;
    });
  }

  private prepareStart(input: StartFlowInput): PreparedCreate {
    const now = this.clock.now();
    const requested = readInput('create input', () => inputObject(input, 'create input').wait);
    const schedule = requested !== undefined && isRecurringInput(requested) ? parseRecurring(requested, now) : undefined;
    const condition = requested === undefined || schedule ? undefined : parseWait(requested);
    if (condition) assertWithinHorizon(condition, now, this.horizon);
    const created = this.prepareCreateCommit(input, 'created');
    const at = new Date(now);
    const park = (flow: Flow): FlowWrite => {
      const started = startMove(flow, at);
      if (schedule) return chain(started, (next) => scheduleMove(next, at, schedule, this.horizon));
      return condition ? chain(started, (next) => waitMove(next, at, condition)) : started;
    };
    // A schedule is checked against the horizon as it is placed: try it now, so a bad one refuses the call before any commit.
    if (schedule) park(created.plan({ flows: [], eventSeen: false }).inserts![0]!.flow);
    return {
      load: condition ? { ...created.load, ...keptEventLoad(condition, now) } : created.load,
      plan: (loaded) => {
        const decision = created.plan(loaded);
        const [insert] = decision.inserts ?? [];
        if (!insert) return decision; // the idempotent flow, as it is
        const { write, consumeKeptEvent } = condition
          ? this.parkWrite(park(insert.flow), condition, insert.flow.state, at, loaded)
          : { write: park(insert.flow), consumeKeptEvent: undefined };
        if (write.flow.state !== insert.flow.state) checkStateSchema(this.stateSchemas, write.flow.controllerId, write.flow.state);
        const parked: Decision<Flow> = { result: write.flow, inserts: [insert], writes: [write] };
        return consumeKeptEvent === undefined ? parked : { ...parked, consumeKeptEvent };
      },
    };
  }

  private async create(input: CreateFlowInput, status: 'created' | 'running'): Promise<Flow> {
    const prepared = this.prepareCreateCommit(input, status);
    return this.store.commit(prepared.load, prepared.plan);
  }

  /** A create as one commit: the idempotency key's lookup and the insert with its `created` event. */
  private prepareCreateCommit(input: CreateFlowInput, status: 'created' | 'running'): PreparedCreate {
    const { flow, idempotencyKey, stateJson } = this.prepareCreate(input, status);
    const load: LoadRequest = idempotencyKey ? { idempotency: { owner: flow.ownerSessionKey, key: idempotencyKey } } : {};
    return {
      load,
      plan: (loaded) => (loaded.idempotent ? { result: loaded.idempotent } : { result: flow, inserts: [createInsert(flow, idempotencyKey, stateJson)] }),
    };
  }

  /**
   * Checks a create input (and the controller's state schema) and builds the flow
   * it would insert at revision 0, writing nothing: `tf.startOrDeliver` inserts it
   * in a commit of its own. Refuses bad input with `invalid_input`.
   */
  prepareCreate(input: CreateFlowInput, status: 'created' | 'running' = 'created'): PreparedFlow {
    const { controllerId, goal, owner, requesterOrigin, currentStep, idempotencyKey, state, stateJson } = readInput('create input', () => {
      const i = inputObject(input, 'create input');
      const checked = i.state === undefined ? { value: {}, json: '{}' } : checkJsonObject(i.state, this.stateLimit, 'state');
      return {
        controllerId: normaliseKey(i.controllerId, 'controllerId'),
        goal: checkText(i.goal, 'goal'),
        owner: normaliseKey(i.ownerSessionKey, 'ownerSessionKey'),
        requesterOrigin: optionalText(i.requesterOrigin, 'requesterOrigin') ?? null,
        currentStep: optionalKey(i.currentStep, 'currentStep') ?? 'init',
        idempotencyKey: optionalKey(i.idempotencyKey, 'idempotencyKey'),
        state: checked.value,
        stateJson: checked.json,
      };
    });
    checkStateSchema(this.stateSchemas, controllerId, state);
    const now = new Date(this.clock.now());
    const flow: Flow = {
      id: timeOrderedId(),
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
    return idempotencyKey === undefined ? { flow, stateJson } : { flow, idempotencyKey, stateJson };
  }

  /** Parses a wait and checks it against the horizon, as {@link setWaiting} does; writes nothing. */
  prepareWait(wait: WaitInput): WaitCondition {
    const condition = parseWait(wait);
    assertWithinHorizon(condition, this.clock.now(), this.horizon);
    return condition;
  }

  /** The flow, or `undefined` when the id is unknown or malformed. */
  async get<S extends object = JsonObject>(id: string): Promise<Flow<S> | undefined> {
    try {
      return (await this.store.getFlow(checkFlowId(id))) as Flow<S> | undefined;
    } catch (error) {
      if (FlowError.isInstance(error) && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  /** An owner's flows, newest first. */
  async listByOwner(owner: string, options: ListOptions = {}): Promise<Flow[]> {
    const checked = readInput('listByOwner', () => ({ owner: normaliseKey(owner, 'ownerSessionKey'), options: checkList(options) }));
    return this.store.listByOwner(checked.owner, checked.options);
  }

  /** Flows in a status, least recently updated first. */
  async listByStatus(status: FlowStatus, options: ListOptions = {}): Promise<Flow[]> {
    if (!isFlowStatus(status)) {
      throw new FlowError('invalid_input', `status must be one of ${FLOW_STATUSES.join(', ')}, got ${describeValue(status)}`);
    }
    return this.store.listByStatus(status, readInput('list options', () => checkList(options)));
  }

  /** created → running. */
  async startRunning(id: string, options?: WriteOptions): Promise<Flow> {
    return this.mutate(id, options, (flow, now) => startMove(flow, now));
  }

  /**
   * running → waiting. An event wait whose key already has a kept event (one that
   * arrived before anyone waited) resumes at once, in the same transaction; so does
   * an any-of wait with a kept event for any of its keys (the first received wins).
   */
  async setWaiting(id: string, wait: WaitInput, options?: WriteOptions): Promise<Flow> {
    if (isRecurringInput(wait)) {
      const schedule = parseRecurring(wait, this.clock.now());
      return this.mutate(checkFlowId(id), options, (flow, now) => scheduleMove(flow, now, schedule, this.horizon));
    }
    const condition = parseWait(wait);
    const now = this.clock.now();
    checkFlowId(id);
    assertWithinHorizon(condition, now, this.horizon);
    return this.mutate(
      id,
      options,
      (current, at, loaded) => this.parkWrite(waitMove(current, at, condition), condition, current.state, at, loaded),
      keptEventLoad(condition, now),
    );
  }

  /**
   * Parks a flow resumed for occurrence `after` of its recurring schedule until
   * the next occurrence (counted from `after`'s scheduled time, never from now),
   * merging `patch` into the state in the same write. Idempotent: when the flow
   * has already moved past `after`, nothing is written and the flow is returned
   * as it is. The schedule's end refuses it (`illegal_transition`).
   */
  async waitNext(id: string, after: number, patch?: JsonObject, options?: WriteOptions): Promise<Flow> {
    const checked = readInput('waitNext', () => {
      if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) {
        throw new FlowError('invalid_input', `after must be the number of the occurrence just handled (0 or more), got ${describeValue(after)}`);
      }
      return patch === undefined ? undefined : checkJsonObject(patch, this.stateLimit, 'patch').value;
    });
    return this.mutate(id, options, (flow, now) => {
      const write = nextOccurrenceMove(flow, now, after, this.horizon, checked);
      return write === undefined || checked === undefined ? write : this.sized(write, flow, 'the patch');
    });
  }

  /** waiting → running, merging `patch` and clearing the wait; recorded as a `manual` resume. */
  async resume(id: string, patch?: JsonObject, options?: WriteOptions): Promise<Flow> {
    const checked = readInput('patch', () => (patch === undefined ? undefined : checkJsonObject(patch, this.stateLimit, 'patch').value));
    return this.mutate(id, options, (flow, now) => this.sized(resumeMove(flow, now, { reason: 'manual', at: now }, checked), flow, 'the patch'));
  }

  /** running → finished, merging `finalState`. */
  async finish(id: string, finalState?: JsonObject, options?: WriteOptions): Promise<Flow> {
    const checked = readInput('finalState', () =>
      finalState === undefined ? undefined : checkJsonObject(finalState, this.stateLimit, 'finalState').value,
    );
    return this.mutate(id, options, (flow, now) => this.sized(finishMove(flow, now, checked), flow, 'finalState'));
  }

  /**
   * running or waiting → failed, stamping `state.failure = { reason, at }`. Never
   * refused for the state's size: a flow can always be failed.
   */
  async fail(id: string, reason: string, options?: WriteOptions): Promise<Flow> {
    const why = readInput('reason', () => checkText(reason, 'reason'));
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

  /** Any non-terminal status → cancelled. Never refused for the state's size. */
  async cancel(id: string, options?: WriteOptions): Promise<Flow> {
    return this.mutate(id, options, (flow, now) => cancelMove(flow, now));
  }

  /** Shallow-merges `patch` into the state and optionally moves `currentStep`. */
  async updateState(id: string, patch: JsonObject, nextStep?: string, options?: WriteOptions): Promise<Flow> {
    const { checked, step } = readInput('updateState', () => ({
      checked: checkJsonObject(patch, this.stateLimit, 'patch').value,
      step: optionalKey(nextStep, 'currentStep'),
    }));
    return this.mutate(id, options, (flow, now) => this.sized(updateStateMove(flow, now, checked, step), flow, 'the patch'));
  }

  /**
   * Records (or updates, by flow + run id) a step of work done elsewhere. An
   * earlier `childSessionKey` is kept when the new observation has none.
   */
  async recordStepObservation(observation: StepObservation, options?: WriteOptions): Promise<FlowStep> {
    const { flowId, runId, task, status, childSessionKey, runtime, result } = readInput('step observation', () => {
      const o = inputObject(observation, 'step observation');
      const stepStatus = o.status;
      if (typeof stepStatus !== 'string' || !(STEP_STATUSES as readonly string[]).includes(stepStatus)) {
        throw new FlowError('invalid_input', `step status must be one of ${STEP_STATUSES.join(', ')}, got ${describeValue(stepStatus)}`);
      }
      const fields = {
        runId: normaliseKey(o.runId, 'runId'),
        task: checkText(o.task, 'task'),
        status: stepStatus as StepStatus,
        childSessionKey: optionalKey(o.childSessionKey, 'childSessionKey'),
        runtime: optionalKey(o.runtime, 'runtime') ?? 'external',
        result: checkJsonValue(o.result, this.stateLimit, 'result'),
      };
      // Last: an observation valid but for its flow id is answered like one for an unknown flow.
      return { ...fields, flowId: checkFlowId(o.flowId) };
    });
    const expected = readInput('write options', () => checkExpectedRevision(options));
    const now = new Date(this.clock.now());
    return this.store.commit({ flowIds: [flowId], step: { flowId, runId } }, (loaded) => {
      const flow = this.found(loaded, flowId, expected);
      const write = observeStepMove(flow, now, { runId, task, status });
      const earlier = loaded.step;
      const step: FlowStep = {
        id: earlier?.id ?? timeOrderedId(),
        flowId,
        runtime,
        childSessionKey: childSessionKey ?? earlier?.childSessionKey ?? null,
        runId,
        task,
        status,
        result: result === undefined ? (earlier?.result ?? null) : result.value,
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
    const ms = parseDuration(olderThan, 'olderThan');
    return this.store.pruneTerminal(this.clock.now() - ms);
  }

  /**
   * The one path every single-flow mutation takes: load under lock, check the
   * expected revision, build the write. Builders that add caller data to the state
   * pass their write through {@link sized}; the others (start, wait, fail, cancel)
   * are never refused for the state's size.
   */
  private async mutate(
    id: string,
    options: WriteOptions | undefined,
    build: (flow: Flow, now: Date, loaded: Loaded) => FlowWrite | undefined | { write: FlowWrite; consumeKeptEvent?: number },
    extraLoad: LoadRequest = {},
  ): Promise<Flow> {
    const flowId = checkFlowId(id);
    const expected = readInput('write options', () => checkExpectedRevision(options));
    const now = new Date(this.clock.now());
    return this.store.commit({ ...extraLoad, flowIds: [flowId] }, (loaded): Decision<Flow> => {
      const current = this.found(loaded, flowId, expected);
      const built = build(current, now, loaded);
      if (built === undefined) return { result: current };
      const { write, consumeKeptEvent } = 'write' in built ? built : { write: built, consumeKeptEvent: undefined };
      if (write.flow.state !== current.state) checkStateSchema(this.stateSchemas, write.flow.controllerId, write.flow.state);
      return consumeKeptEvent === undefined
        ? { result: write.flow, writes: [write] }
        : { result: write.flow, writes: [write], consumeKeptEvent };
    });
  }

  /** A write that parks a flow, resumed at once by the kept event of its key when there is one. */
  private parkWrite(waiting: FlowWrite, condition: WaitCondition, before: JsonObject, at: Date, loaded: Loaded): { write: FlowWrite; consumeKeptEvent?: number } {
    const kept = loaded.keptEvent;
    if (!kept) return { write: waiting };
    const event: Wake = { reason: 'event', at, topic: kept.topic, correlationId: kept.correlationId };
    if (kept.payload !== undefined) event.payload = kept.payload;
    const wake = eventWakeFor(condition, event);
    const resumed = chain(waiting, (next) => resumeMove(next, at, wake));
    return { write: sizedWrite(resumed, before, this.stateLimit, 'the kept event waiting on this key'), consumeKeptEvent: kept.id };
  }

  /** Refuses a write that takes the state over the limit (one that does not grow it passes). */
  private sized(write: FlowWrite, before: Flow, what: string): FlowWrite {
    return sizedWrite(write, before.state, this.stateLimit, what);
  }

  private found(loaded: Loaded, id: string, expected: number | undefined): Flow {
    const flow = loaded.flows[0];
    if (!flow) throw new FlowError('not_found', `no flow with id ${id}`);
    if (expected !== undefined && flow.revision !== expected) {
      throw new FlowError('revision_mismatch', `flow ${id} is at revision ${flow.revision}, not ${expected}; read it again and retry`);
    }
    return flow;
  }
}

/** What a parking commit loads to find an event kept for its wait: the key of an event wait, or every key of an any-of wait. */
function keptEventLoad(condition: WaitCondition, now: number): LoadRequest {
  if (condition.kind === 'external_event') return { keptEventFor: { topic: condition.topic, correlationId: condition.correlationId, now } };
  const keys = anyOfKeysOf(condition);
  return keys.length > 0 ? { keptEventForAny: { keys, now } } : {};
}

function checkList(options: unknown): ListOptions {
  const o = optionsObject(options, 'list options');
  const limit = o.limit === undefined ? 1000 : o.limit;
  const offset = o.offset === undefined ? 0 : o.offset;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new FlowError('invalid_input', `limit must be an integer from 1 to ${MAX_PAGE}, got ${describeValue(limit)}`);
  }
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new FlowError('invalid_input', `offset must be a non-negative integer, got ${describeValue(offset)}`);
  }
  const status = o.status;
  if (status !== undefined && !isFlowStatus(status)) {
    throw new FlowError('invalid_input', `status must be one of ${FLOW_STATUSES.join(', ')}, got ${describeValue(status)}`);
  }
  return status === undefined ? { limit, offset } : { status, limit, offset };
}

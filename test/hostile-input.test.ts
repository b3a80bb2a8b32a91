import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createTaskflowTool, FlowError, openTaskflow, type Flow, type FlowErrorCode } from '../src/index.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { dialect, newFlow, openTestTaskflow, T0, tempDatabase } from './support/taskflow.js';

/**
 * Every public call of the manager, the engine and openTaskflow, fed hostile
 * values in each argument (and each field of an input object): each is refused
 * with a FlowError (invalid_input, or not_found for an id) and leaves the
 * database exactly as it was.
 */

const HUGE = 'x'.repeat(5_000_000);
const cyclic: Record<string, unknown> = { a: 1 };
cyclic.self = cyclic;
const trap = () => {
  throw new Error('trap');
};
const revocable = Proxy.revocable({}, {});
revocable.revoke();

const HOSTILE = {
  undefined: () => undefined,
  null: () => null,
  emptyObject: () => ({}),
  emptyArray: () => [],
  NaN: () => Number.NaN,
  Infinity: () => Number.POSITIVE_INFINITY,
  minusOne: () => -1,
  emptyString: () => '',
  blank: () => ' \t\n ',
  hugeString: () => HUGE,
  nul: () => 'INV\u000042',
  loneSurrogate: () => 'INV-\ud800',
  symbol: () => Symbol('hostile'),
  bigint: () => 10n,
  function: () => () => 1,
  cyclic: () => cyclic,
  toJSON: () => ({ toJSON: () => 'a string' }),
  throwingGetter: () => Object.defineProperty({}, 'x', { get: trap, enumerable: true }),
  throwingProxy: () => new Proxy({}, { get: trap, ownKeys: trap, getPrototypeOf: trap, has: trap, getOwnPropertyDescriptor: trap }),
  revokedProxy: () => revocable.proxy,
  invalidDate: () => new Date(Number.NaN),
  map: () => new Map([['a', 1]]),
  nestedNaN: () => ({ a: Number.NaN }),
  nestedBigint: () => ({ a: 1n }),
  nestedNul: () => ({ 'k\u0000': 1 }),
  nestedLoneSurrogate: () => ({ a: '\udc00' }),
  hugeObject: () => ({ big: HUGE }),
} satisfies Record<string, () => unknown>;
type Hostile = keyof typeof HOSTILE;
const ALL = Object.keys(HOSTILE) as Hostile[];

/** Values JSON carries faithfully (or that mean "none"): accepted where any JSON value is. */
const JSON_VALUES: Hostile[] = ['undefined', 'null', 'emptyObject', 'emptyArray', 'minusOne', 'emptyString', 'blank', 'invalidDate', 'map', 'toJSON'];

type Tf = Awaited<ReturnType<typeof openTestTaskflow>>;
interface Fixture {
  tf: Tf;
  created: Flow;
  running: Flow;
  /** Waits for the unnamed manual signal. */
  manual: Flow;
  /** Waits on payments.received / INV-42. */
  event: Flow;
  finished: Flow;
}

async function fixture(): Promise<Fixture> {
  const tf = await openTestTaskflow();
  const m = tf.manager;
  const created = await m.createManaged(newFlow);
  const running = await m.startRunning((await m.createManaged(newFlow)).id);
  const manual = await m.setWaiting((await m.startRunning((await m.createManaged(newFlow)).id)).id, { kind: 'manual' });
  const event = await m.setWaiting((await m.startRunning((await m.createManaged(newFlow)).id)).id, {
    kind: 'external_event',
    topic: 'payments.received',
    correlationId: 'INV-42',
  });
  const finished = await m.finish((await m.startRunning((await m.createManaged(newFlow)).id)).id);
  tf.clock.set(T0 + 86_400_000);
  return { tf, created, running, manual, event, finished };
}

interface Position {
  /** The call, with the hostile value in one place. */
  call: (f: Fixture, value: unknown) => Promise<unknown>;
  /** Values that are valid in this place (skipped: a valid call may change things). */
  accepts?: readonly Hostile[];
  /** The refusal expected; default invalid_input. */
  code?: FlowErrorCode;
}

const optional: Hostile[] = ['undefined', 'null'];
/** Objects (or nothing) that carry none of the optional fields a call reads: valid options. */
const objectsWithoutFields: Hostile[] = [
  'undefined',
  'emptyObject',
  'cyclic',
  'toJSON',
  'throwingGetter',
  'invalidDate',
  'map',
  'nestedNaN',
  'nestedBigint',
  'nestedNul',
  'nestedLoneSurrogate',
  'hugeObject',
];

const id = (call: Position['call']): Position => ({ call, code: 'not_found' });

const POSITIONS: Record<string, Position> = {
  // FlowManager
  'createManaged(input)': { call: (f, v) => f.tf.manager.createManaged(v as never) },
  'createManaged({ controllerId })': { call: (f, v) => f.tf.manager.createManaged({ ...newFlow, controllerId: v as never }) },
  'createManaged({ goal })': { call: (f, v) => f.tf.manager.createManaged({ ...newFlow, goal: v as never }) },
  'createManaged({ ownerSessionKey })': { call: (f, v) => f.tf.manager.createManaged({ ...newFlow, ownerSessionKey: v as never }) },
  'createManaged({ requesterOrigin })': { call: (f, v) => f.tf.manager.createManaged({ ...newFlow, requesterOrigin: v as never }), accepts: optional },
  'createManaged({ currentStep })': { call: (f, v) => f.tf.manager.createManaged({ ...newFlow, currentStep: v as never }), accepts: optional },
  'createManaged({ idempotencyKey })': { call: (f, v) => f.tf.manager.createManaged({ ...newFlow, idempotencyKey: v as never }), accepts: optional },
  'createManaged({ state })': { call: (f, v) => f.tf.manager.createManaged({ ...newFlow, state: v as never }), accepts: ['undefined', 'emptyObject'] },
  'createMirrored(input)': { call: (f, v) => f.tf.manager.createMirrored(v as never) },
  'createMirrored({ goal })': { call: (f, v) => f.tf.manager.createMirrored({ ...newFlow, goal: v as never }) },
  'listByOwner(owner)': { call: (f, v) => f.tf.manager.listByOwner(v as never) },
  'listByOwner(_, options)': { call: (f, v) => f.tf.manager.listByOwner(newFlow.ownerSessionKey, v as never), accepts: objectsWithoutFields },
  'listByOwner(_, { limit })': { call: (f, v) => f.tf.manager.listByOwner(newFlow.ownerSessionKey, { limit: v as never }), accepts: ['undefined'] },
  'listByOwner(_, { offset })': { call: (f, v) => f.tf.manager.listByOwner(newFlow.ownerSessionKey, { offset: v as never }), accepts: ['undefined'] },
  'listByOwner(_, { status })': { call: (f, v) => f.tf.manager.listByOwner(newFlow.ownerSessionKey, { status: v as never }), accepts: ['undefined'] },
  'listByStatus(status)': { call: (f, v) => f.tf.manager.listByStatus(v as never) },
  'listByStatus(_, { limit })': { call: (f, v) => f.tf.manager.listByStatus('running', { limit: v as never }), accepts: ['undefined'] },
  'startRunning(id)': id((f, v) => f.tf.manager.startRunning(v as never)),
  'startRunning(_, { expectedRevision })': {
    call: (f, v) => f.tf.manager.startRunning(f.created.id, { expectedRevision: v as never }),
    accepts: ['undefined'],
  },
  'startRunning(_, options)': { call: (f, v) => f.tf.manager.startRunning(f.created.id, v as never), accepts: objectsWithoutFields },
  'setWaiting(id)': id((f, v) => f.tf.manager.setWaiting(v as never, { kind: 'manual' })),
  'setWaiting(_, wait)': { call: (f, v) => f.tf.manager.setWaiting(f.running.id, v as never) },
  'setWaiting(_, { kind })': { call: (f, v) => f.tf.manager.setWaiting(f.running.id, { kind: v } as never) },
  'setWaiting(_, timer { at })': { call: (f, v) => f.tf.manager.setWaiting(f.running.id, { kind: 'timer', at: v as never }), accepts: ['minusOne'] },
  'setWaiting(_, event { topic })': {
    call: (f, v) => f.tf.manager.setWaiting(f.running.id, { kind: 'external_event', topic: v as never, correlationId: 'INV-7' }),
  },
  'setWaiting(_, event { correlationId })': {
    call: (f, v) => f.tf.manager.setWaiting(f.running.id, { kind: 'external_event', topic: 'payments.received', correlationId: v as never }),
  },
  'setWaiting(_, event { timeoutAt })': {
    call: (f, v) =>
      f.tf.manager.setWaiting(f.running.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-7', timeoutAt: v as never }),
    accepts: ['undefined', 'minusOne'],
  },
  'setWaiting(_, manual { signal })': { call: (f, v) => f.tf.manager.setWaiting(f.running.id, { kind: 'manual', signal: v as never }), accepts: optional },
  'resume(id)': id((f, v) => f.tf.manager.resume(v as never)),
  'resume(_, patch)': { call: (f, v) => f.tf.manager.resume(f.manual.id, v as never), accepts: ['undefined', 'emptyObject'] },
  'finish(id)': id((f, v) => f.tf.manager.finish(v as never)),
  'finish(_, finalState)': { call: (f, v) => f.tf.manager.finish(f.running.id, v as never), accepts: ['undefined', 'emptyObject'] },
  'fail(id)': id((f, v) => f.tf.manager.fail(v as never, 'broken')),
  'fail(_, reason)': { call: (f, v) => f.tf.manager.fail(f.running.id, v as never) },
  'requestCancel(id)': id((f, v) => f.tf.manager.requestCancel(v as never)),
  'requestCancel(_, options)': { call: (f, v) => f.tf.manager.requestCancel(f.running.id, v as never), accepts: objectsWithoutFields },
  'cancel(id)': id((f, v) => f.tf.manager.cancel(v as never)),
  'cancel(_, { expectedRevision })': { call: (f, v) => f.tf.manager.cancel(f.running.id, { expectedRevision: v as never }), accepts: ['undefined'] },
  'updateState(id)': id((f, v) => f.tf.manager.updateState(v as never, { a: 1 })),
  'updateState(_, patch)': { call: (f, v) => f.tf.manager.updateState(f.running.id, v as never), accepts: ['emptyObject'] },
  'updateState(_, _, nextStep)': { call: (f, v) => f.tf.manager.updateState(f.running.id, { a: 1 }, v as never), accepts: optional },
  'recordStepObservation(observation)': { call: (f, v) => f.tf.manager.recordStepObservation(v as never) },
  'recordStepObservation({ flowId })': id((f, v) => f.tf.manager.recordStepObservation({ ...step(f), flowId: v as never })),
  'recordStepObservation({ runId })': { call: (f, v) => f.tf.manager.recordStepObservation({ ...step(f), runId: v as never }) },
  'recordStepObservation({ task })': { call: (f, v) => f.tf.manager.recordStepObservation({ ...step(f), task: v as never }) },
  'recordStepObservation({ status })': { call: (f, v) => f.tf.manager.recordStepObservation({ ...step(f), status: v as never }) },
  'recordStepObservation({ childSessionKey })': {
    call: (f, v) => f.tf.manager.recordStepObservation({ ...step(f), childSessionKey: v as never }),
    accepts: optional,
  },
  'recordStepObservation({ runtime })': { call: (f, v) => f.tf.manager.recordStepObservation({ ...step(f), runtime: v as never }), accepts: optional },
  'recordStepObservation({ result })': { call: (f, v) => f.tf.manager.recordStepObservation({ ...step(f), result: v }), accepts: JSON_VALUES },
  'listSteps(flowId)': id((f, v) => f.tf.manager.listSteps(v as never)),
  'listEvents(flowId)': id((f, v) => f.tf.manager.listEvents(v as never)),
  'pruneTerminal(olderThan)': { call: (f, v) => f.tf.manager.pruneTerminal(v as never) },
  // WaitEngine
  'tick(now)': { call: (f, v) => f.tf.engine.tick(v as never), accepts: ['undefined', 'minusOne'] },
  'deliver(event)': { call: (f, v) => f.tf.engine.deliver(v as never) },
  'deliver({ topic })': { call: (f, v) => f.tf.engine.deliver({ topic: v as never, correlationId: 'INV-42' }) },
  'deliver({ correlationId })': { call: (f, v) => f.tf.engine.deliver({ topic: 'payments.received', correlationId: v as never }) },
  'deliver({ eventId })': { call: (f, v) => f.tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', eventId: v as never }), accepts: optional },
  'deliver({ payload })': { call: (f, v) => f.tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: v }), accepts: JSON_VALUES },
  'signal(flowId)': id((f, v) => f.tf.engine.signal(v as never)),
  'signal(_, input)': { call: (f, v) => f.tf.engine.signal(f.manual.id, v as never), accepts: objectsWithoutFields },
  'signal(_, { signal })': { call: (f, v) => f.tf.engine.signal(f.manual.id, { signal: v as never }), accepts: optional },
  'signal(_, { payload })': { call: (f, v) => f.tf.engine.signal(f.manual.id, { payload: v }), accepts: JSON_VALUES },
};

function step(f: Fixture) {
  return { flowId: f.running.id, runId: 'run-1', task: 'check the invoice', status: 'running' as const };
}

async function refusalCode(call: () => Promise<unknown>): Promise<FlowErrorCode | 'accepted' | string> {
  try {
    await call();
    return 'accepted';
  } catch (error) {
    if (FlowError.isInstance(error)) return error.code;
    return `raw ${String(error)}`;
  }
}

describe(`hostile input (${dialect})`, () => {
  it.each(Object.entries(POSITIONS))('%s: every hostile value is refused with a FlowError and changes nothing', async (_name, position) => {
    const f = await fixture();
    const before = await snapshotDatabase(f.tf.path);
    const outcomes: Record<string, string> = {};
    for (const name of ALL) {
      if (position.accepts?.includes(name)) continue;
      outcomes[name] = await refusalCode(() => position.call(f, HOSTILE[name]()));
    }
    const expected = Object.fromEntries(Object.keys(outcomes).map((name) => [name, position.code ?? 'invalid_input']));
    expect(outcomes).toEqual(expected);
    expect(await snapshotDatabase(f.tf.path)).toEqual(before);
  });

  it('get(id) answers undefined for every hostile id and changes nothing', async () => {
    const f = await fixture();
    const before = await snapshotDatabase(f.tf.path);
    for (const name of ALL) expect(await f.tf.manager.get(HOSTILE[name]() as never), name).toBeUndefined();
    expect(await snapshotDatabase(f.tf.path)).toEqual(before);
  });
});

/** openTaskflow options: each hostile value in each option is refused before anything opens. */
const OPTION_POSITIONS: Record<string, readonly Hostile[]> = {
  tickInterval: ['undefined'],
  timerMaxHorizon: ['undefined'],
  resumeLease: ['undefined'],
  eventRetention: ['undefined'],
  stateLimit: ['undefined'],
  database: ['undefined'],
  synchronous: ['undefined'],
  onResume: ['undefined', 'function'],
  clock: ['undefined'],
  logger: ['undefined'],
  store: ['undefined'],
  nats: ['undefined'],
  busyTimeout: ['undefined'],
  resumeConcurrency: ['undefined'],
  maxResumeAttempts: ['undefined'],
  // Objects without maxPerKey or maxTotal take the defaults.
  inbox: objectsWithoutFields.filter((name) => name !== 'throwingGetter'),
};

const NOT_AN_OPTIONS_OBJECT: Hostile[] = [
  'null',
  'emptyArray',
  'NaN',
  'Infinity',
  'minusOne',
  'emptyString',
  'blank',
  'hugeString',
  'nul',
  'loneSurrogate',
  'symbol',
  'bigint',
  'function',
  'throwingProxy',
  'revokedProxy',
];

describe(`openTaskflow refuses hostile options (${dialect})`, () => {
  it.each(Object.entries(OPTION_POSITIONS))('%s', async (option, accepts) => {
    const database = await tempDatabase();
    const before = await snapshotDatabase(database);
    const outcomes: Record<string, string> = {};
    for (const name of ALL) {
      if (accepts.includes(name)) continue;
      outcomes[name] = await refusalCode(() => openTaskflow({ database, [option]: HOSTILE[name]() }));
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((name) => [name, 'invalid_input'])));
    expect(await snapshotDatabase(database)).toEqual(before);
    if (dialect === 'sqlite') expect(existsSync(database)).toBe(false);
  });

  it('the options object itself', async () => {
    const outcomes: Record<string, string> = {};
    for (const name of ALL) {
      // Plain objects are valid options (they would open the default database); proxies that throw are not.
      if (!NOT_AN_OPTIONS_OBJECT.includes(name)) continue;
      const value = HOSTILE[name]();
      outcomes[name] = await refusalCode(() => openTaskflow(value as never));
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((name) => [name, 'invalid_input'])));
  });

  it.each([
    ['tickInterval', 0],
    ['tickInterval', '0s'],
    ['tickInterval', '30d'],
    ['resumeLease', 0],
    ['resumeLease', -5],
    ['timerMaxHorizon', 0],
    ['eventRetention', '-1d'],
    ['stateLimit', 1.5],
    ['stateLimit', 0],
  ])('%s: %s makes no sense and is refused', async (option, value) => {
    const database = await tempDatabase();
    expect(await refusalCode(() => openTaskflow({ database, [option]: value }))).toBe('invalid_input');
  });
});

describe(`the tool refuses a binding it cannot honour (${dialect})`, () => {
  it('a timerMaxHorizon wider than the runtime one is refused at creation', async () => {
    const tf = await openTestTaskflow({ timerMaxHorizon: '30d' });
    expect(await refusalCode(async () => createTaskflowTool(tf, { owner: newFlow.ownerSessionKey, timerMaxHorizon: '90d' }))).toBe('invalid_input');
    const narrower = createTaskflowTool(tf, { owner: newFlow.ownerSessionKey, timerMaxHorizon: '7d' });
    expect(narrower.description).toMatch(/at most 7d away/);
  });

  it('a hostile binding.timerMaxHorizon is refused at creation', async () => {
    const tf = await openTestTaskflow();
    const outcomes: Record<string, string> = {};
    for (const name of ALL) {
      if (name === 'undefined') continue;
      outcomes[name] = await refusalCode(async () => createTaskflowTool(tf, { owner: newFlow.ownerSessionKey, timerMaxHorizon: HOSTILE[name]() as never }));
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((name) => [name, 'invalid_input'])));
  });
});

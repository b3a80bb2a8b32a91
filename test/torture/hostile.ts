import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { createTaskflowTool, FlowError, openTaskflow, type Taskflow } from '../../src/index.js';

/** One row of the torture table for the hostile-input run. */
export interface HostileResult {
  name: string;
  calls: number;
  refused: number;
  accepted: number;
  /** A refusal that was not a `FlowError`, or a call that hung. */
  untyped: number;
  /** A refused call after which the database was not byte for byte what it was. */
  changedByRefusal: number;
  /** Flows whose revision no longer matches their audit trail. */
  illegal: number;
  problems: string[];
  seconds: number;
  ok: boolean;
}

const OWNER = 'agent:hostile:session:1';

/**
 * Values fast-check must not look into (it probes every generated value, and a
 * revoked proxy throws on any probe): generated as a {@link Made} marker and
 * made just before the call.
 */
const MAKERS: Array<() => unknown> = [
  () => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    return revoked.proxy;
  },
  () =>
    new Proxy(
      {},
      {
        get: () => {
          throw new Error('proxy trap throws');
        },
        ownKeys: () => {
          throw new Error('proxy trap throws');
        },
      },
    ),
];

class Made {
  constructor(readonly index: number) {}
}

function make(value: unknown): unknown {
  return value instanceof Made ? MAKERS[value.index]!() : value;
}

/** Values callers, models and the bus have been seen to send, and worse. */
function hostileValue(validIds: readonly string[]): fc.Arbitrary<unknown> {
  const throwing = {
    get topic(): string {
      throw new Error('getter that throws');
    },
  };
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  return fc.oneof(
    fc.constantFrom(...validIds),
    fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true }),
    fc.constantFrom<unknown>(
      undefined, null, '', ' ', '\u0000', 'a\u0000b', '\uD800', 'x\uDFFFy', 'INV-42 ', ' INV-42', NaN, Infinity, -1, 0, 1e308, -0,
      {}, [], [[]], { toJSON: () => 'not an object' }, throwing, cyclic, new Date(Number.NaN), Symbol('s'), 10n,
      'x'.repeat(2_000_000), '2026-13-45T99:99:99Z', 'tomorrow', '30', '-5s', '1e400ms', '__proto__', { __proto__: { polluted: true } },
      () => 'function', Object.create(null),
    ),
    fc.integer({ min: 0, max: MAKERS.length - 1 }).map((i) => new Made(i)),
  );
}

type Call = (tf: Taskflow, args: unknown[]) => Promise<unknown>;

/** Every public call of the runtime and the tool, fed whatever the arbitrary makes. */
const CALLS: Record<string, Call> = {
  createManaged: (tf, [a, b, c]) => tf.manager.createManaged({ controllerId: a, goal: b, ownerSessionKey: OWNER, state: c } as never),
  createManagedRaw: (tf, [a]) => tf.manager.createManaged(a as never),
  createMirrored: (tf, [a, b]) => tf.manager.createMirrored({ controllerId: 'c', goal: a, ownerSessionKey: b } as never),
  get: (tf, [a]) => tf.manager.get(a as never),
  listByOwner: (tf, [a, b]) => tf.manager.listByOwner(a as never, b as never),
  listByStatus: (tf, [a, b]) => tf.manager.listByStatus(a as never, b as never),
  startRunning: (tf, [a, b]) => tf.manager.startRunning(a as never, b as never),
  setWaiting: (tf, [a, b]) => tf.manager.setWaiting(a as never, b as never),
  setWaitingEvent: (tf, [a, b, c]) => tf.manager.setWaiting(a as never, { kind: 'external_event', topic: b, correlationId: c } as never),
  setWaitingTimer: (tf, [a, b]) => tf.manager.setWaiting(a as never, { kind: 'timer', at: b } as never),
  resume: (tf, [a, b]) => tf.manager.resume(a as never, b as never),
  finish: (tf, [a, b]) => tf.manager.finish(a as never, b as never),
  fail: (tf, [a, b]) => tf.manager.fail(a as never, b as never),
  requestCancel: (tf, [a]) => tf.manager.requestCancel(a as never),
  cancel: (tf, [a, b]) => tf.manager.cancel(a as never, b as never),
  updateState: (tf, [a, b, c, d]) => tf.manager.updateState(a as never, b as never, c as never, d as never),
  recordStepObservation: (tf, [a, b, c]) => tf.manager.recordStepObservation({ flowId: a, runId: b, task: 't', status: c } as never),
  listSteps: (tf, [a]) => tf.manager.listSteps(a as never),
  listEvents: (tf, [a]) => tf.manager.listEvents(a as never),
  pruneTerminal: (tf, [a]) => tf.manager.pruneTerminal(a as never),
  tick: (tf, [a]) => tf.engine.tick(a as never),
  deliver: (tf, [a, b, c, d]) => tf.engine.deliver({ topic: a, correlationId: b, payload: c, eventId: d } as never),
  deliverRaw: (tf, [a]) => tf.engine.deliver(a as never),
  signal: (tf, [a, b]) => tf.engine.signal(a as never, b as never),
  toolCall: (tf, [a, b, c]) => createTaskflowTool(tf, { owner: OWNER, topics: ['hostile.>'] }).call({ action: a, flow_id: b, wait_condition: c } as never),
  toolCallRaw: (tf, [a]) => createTaskflowTool(tf, { owner: OWNER, topics: ['hostile.>'] }).call(a as never),
};

/** Everything in the database, as one hash: a refused call must leave it unchanged. */
function digest(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    const hash = createHash('sha256');
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__drizzle%' ORDER BY name").all() as { name: string }[];
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).iterate()) hash.update(`${name}:${JSON.stringify(row)}\n`);
    }
    return hash.digest('hex');
  } finally {
    db.close();
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)));
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Throws `runs` random calls with hostile arguments at every public method, on a
 * SQLite file with flows in every status, and checks each refusal: a `FlowError`,
 * and not one byte of the database changed.
 */
export async function runHostileInput(runs: number, seed = Date.now()): Promise<HostileResult> {
  const started = Date.now();
  const folder = mkdtempSync(join(tmpdir(), 'taskflow-hostile-'));
  const path = join(folder, 'taskflow.db');
  const result: HostileResult = { name: 'hostile input at every public call', calls: 0, refused: 0, accepted: 0, untyped: 0, changedByRefusal: 0, illegal: 0, problems: [], seconds: 0, ok: false };
  const note = (line: string) => {
    if (result.problems.length < 20) result.problems.push(line);
  };
  const tf = await openTaskflow({ database: path });
  try {
    const ids: string[] = [];
    for (const status of ['created', 'running', 'waiting', 'finished', 'cancelled'] as const) {
      const flow = await tf.manager.createManaged({ controllerId: 'hostile', goal: status, ownerSessionKey: OWNER });
      if (status !== 'created') await tf.manager.startRunning(flow.id);
      if (status === 'waiting') await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'hostile.paid', correlationId: 'INV-42' });
      if (status === 'finished') await tf.manager.finish(flow.id);
      if (status === 'cancelled') await tf.manager.cancel(flow.id);
      ids.push(flow.id);
    }
    const names = Object.keys(CALLS);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...names), fc.array(hostileValue(ids), { minLength: 4, maxLength: 4 }), async (name, args) => {
        result.calls++;
        const before = digest(path);
        let outcome: unknown;
        try {
          outcome = await withTimeout(CALLS[name]!(tf, args.map(make)), 10_000);
        } catch (error) {
          result.refused++;
          if (!FlowError.isInstance(error)) {
            result.untyped++;
            note(`untyped: ${name} threw ${error instanceof Error ? `${error.name}: ${error.message.slice(0, 120)}` : String(error)}`);
          }
          if (digest(path) !== before) {
            result.changedByRefusal++;
            note(`changed: ${name} was refused but changed the database`);
          }
          return;
        }
        if (outcome === 'hung') {
          result.untyped++;
          note(`hung: ${name} did not settle in 10 s`);
          return;
        }
        // The tool answers a refusal as { ok: false } instead of throwing.
        if (typeof outcome === 'object' && outcome !== null && (outcome as { ok?: unknown }).ok === false) {
          result.refused++;
          if (digest(path) !== before) {
            result.changedByRefusal++;
            note(`changed: ${name} answered ok:false but changed the database`);
          }
          return;
        }
        result.accepted++;
      }),
      { numRuns: runs, seed, endOnFailure: false },
    );
    for (const flow of await allFlows(tf)) {
      const events = await tf.manager.listEvents(flow.id);
      if (events.length !== flow.revision + 1) {
        result.illegal++;
        note(`illegal: flow ${flow.id} revision ${flow.revision} with ${events.length} audit events`);
      }
    }
  } finally {
    await tf.close().catch(() => undefined);
    rmSync(folder, { recursive: true, force: true });
  }
  result.seconds = (Date.now() - started) / 1000;
  result.ok = result.untyped === 0 && result.changedByRefusal === 0 && result.illegal === 0;
  return result;
}

async function allFlows(tf: Taskflow) {
  const lists = await Promise.all((['created', 'running', 'waiting', 'finished', 'failed', 'cancelled'] as const).map((s) => tf.manager.listByStatus(s, { limit: 10_000 })));
  return lists.flat();
}

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowError, ManualClock, openTaskflow, type Flow, type FlowStatus, type Taskflow } from '../src/index.js';
import { dialect, newFlow, T0, tempDatabase } from './support/taskflow.js';

/** The machine as a model: what each operation should do to a flow in a given condition. */
interface Model {
  status: FlowStatus;
  cancelRequested: boolean;
  waitKind: 'timer' | 'external_event' | 'manual' | null;
}

const terminal = (m: Model) => m.status === 'finished' || m.status === 'failed' || m.status === 'cancelled';

type Op =
  | { op: 'start' }
  | { op: 'wait'; kind: 'timer' | 'external_event' | 'manual' }
  | { op: 'resume' }
  | { op: 'finish' }
  | { op: 'fail' }
  | { op: 'requestCancel' }
  | { op: 'cancel' }
  | { op: 'update' }
  | { op: 'tick' }
  | { op: 'deliver' }
  | { op: 'signal' }
  | { op: 'observe' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ op: 'start' } as const),
  fc.constantFrom('timer', 'external_event', 'manual').map((kind) => ({ op: 'wait', kind }) as const),
  ...(['resume', 'finish', 'fail', 'requestCancel', 'cancel', 'update', 'tick', 'deliver', 'signal', 'observe'] as const).map((op) =>
    fc.constant({ op } as Op),
  ),
);

/** The model's prediction: the next model, or undefined when the call must be refused. */
function predict(m: Model, op: Op): Model | undefined {
  const live = !terminal(m);
  switch (op.op) {
    case 'start':
      return live && !m.cancelRequested && m.status === 'created' ? { ...m, status: 'running' } : undefined;
    case 'wait':
      return live && !m.cancelRequested && m.status === 'running' ? { ...m, status: 'waiting', waitKind: op.kind } : undefined;
    case 'resume':
      return m.status === 'waiting' && !m.cancelRequested ? { ...m, status: 'running', waitKind: null } : undefined;
    case 'finish':
      return m.status === 'running' && !m.cancelRequested ? { ...m, status: 'finished' } : undefined;
    case 'fail':
      return (m.status === 'running' || m.status === 'waiting') && !m.cancelRequested ? { ...m, status: 'failed', waitKind: null } : undefined;
    case 'requestCancel':
      if (!live || m.cancelRequested) return m;
      return m.status === 'waiting' ? { status: 'cancelled', cancelRequested: true, waitKind: null } : { ...m, cancelRequested: true };
    case 'cancel':
      return live ? { ...m, status: 'cancelled', waitKind: null } : undefined;
    case 'update':
      return live && !m.cancelRequested ? m : undefined;
    case 'tick':
      return m.status === 'waiting' && m.waitKind === 'timer' ? { ...m, status: 'running', waitKind: null } : m;
    case 'deliver':
      return m.status === 'waiting' && m.waitKind === 'external_event' ? { ...m, status: 'running', waitKind: null } : m;
    case 'signal':
      return m.status === 'waiting' && m.waitKind === 'manual' ? { ...m, status: 'running', waitKind: null } : undefined;
    case 'observe':
      return live ? m : undefined;
  }
}

async function apply(tf: Taskflow, clock: ManualClock, id: string, op: Op, i: number): Promise<void> {
  const m = tf.manager;
  const key = { topic: 'orders.paid', correlationId: id };
  switch (op.op) {
    case 'start':
      return void (await m.startRunning(id));
    case 'wait': {
      const wait =
        op.kind === 'timer'
          ? ({ kind: 'timer', at: clock.now() + 1_000 } as const)
          : op.kind === 'external_event'
            ? ({ kind: 'external_event', ...key } as const)
            : ({ kind: 'manual' } as const);
      return void (await m.setWaiting(id, wait));
    }
    case 'resume':
      return void (await m.resume(id, { step: i }));
    case 'finish':
      return void (await m.finish(id, { done: i }));
    case 'fail':
      return void (await m.fail(id, `failure ${i}`));
    case 'requestCancel':
      return void (await m.requestCancel(id));
    case 'cancel':
      return void (await m.cancel(id));
    case 'update':
      return void (await m.updateState(id, { [`k${i}`]: i }));
    case 'tick':
      clock.advance(1_000);
      return void (await tf.engine.tick());
    case 'deliver':
      // an event id per step: a kept event for a flow not yet waiting would otherwise resume it later
      return void (await tf.engine.deliver({ ...key, eventId: `e${i}` }).then((r) => (r.kept ? purgeInbox(tf) : undefined)));
    case 'signal':
      return void (await tf.engine.signal(id));
    case 'observe':
      return void (await m.recordStepObservation({ flowId: id, runId: `r${i % 3}`, task: 'child', status: 'running' }));
  }
}

async function purgeInbox(tf: Taskflow): Promise<void> {
  // expire every kept event: the inbox is not what this property is about
  await tf.store.purgeExpiredEvents(Number.MAX_SAFE_INTEGER);
}

async function snapshot(tf: Taskflow, id: string): Promise<{ flow: Flow; events: number }> {
  return { flow: (await tf.manager.get(id))!, events: (await tf.manager.listEvents(id)).length };
}

describe('the flow machine under random operations (fast-check)', () => {
  it('keeps every flow legal, its revision equal to its audit count − 1, and refusals write nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const clock = new ManualClock(T0);
        const tf = await openTaskflow({ database: await tempDatabase(), clock });
        try {
          const flow = await tf.manager.createManaged(newFlow);
          let model: Model = { status: 'created', cancelRequested: false, waitKind: null };
          for (const [i, op] of ops.entries()) {
            const before = await snapshot(tf, flow.id);
            const expected = predict(model, op);
            let refused: unknown;
            try {
              await apply(tf, clock, flow.id, op, i);
            } catch (error) {
              refused = error;
            }
            const after = await snapshot(tf, flow.id);
            if (expected === undefined) {
              expect(FlowError.isInstance(refused), `${op.op} from ${model.status} should be refused`).toBe(true);
              expect(after).toEqual(before);
            } else {
              expect(refused, `${op.op} from ${model.status}`).toBeUndefined();
              model = expected;
            }
            expect(after.flow.status).toBe(model.status);
            expect(after.flow.cancelRequested).toBe(model.cancelRequested);
            expect(after.flow.wait?.kind ?? null).toBe(model.waitKind);
            expect(after.flow.revision).toBe(after.events - 1);
          }
        } finally {
          await tf.close();
        }
      }),
      { numRuns: dialect === 'postgres' ? 40 : 150 },
    );
  }, 120_000);
});

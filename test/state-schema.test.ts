import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createTaskflowTool, FlowError, type Flow } from '../src/index.js';
import { openTestTaskflow } from './support/taskflow.js';

const OWNER = 'agent:billing:session:1';
const invoiceState = z.object({ invoice: z.string().regex(/^INV-\d+$/), amount: z.number().positive().optional() });
type InvoiceState = z.infer<typeof invoiceState>;
const stateSchemas = { 'billing/invoice': invoiceState };
const invoiceFlow = { controllerId: 'billing/invoice', goal: 'collect INV-42', ownerSessionKey: OWNER };

async function refusal(promise: Promise<unknown>): Promise<FlowError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(FlowError.isInstance(error)).toBe(true);
  return error as FlowError;
}

describe('typed state: a schema per controller', () => {
  it('refuses to create a flow whose state does not fit its controller schema, and creates nothing', async () => {
    const tf = await openTestTaskflow({ stateSchemas });
    const error = await refusal(tf.manager.createManaged({ ...invoiceFlow, state: { invoice: 42 } }));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toMatch(/schema of controller billing\/invoice: invoice:/);
    expect(await tf.manager.listByOwner(OWNER)).toEqual([]);
  });

  it('refuses a state update that breaks the schema and leaves the flow as it was', async () => {
    const tf = await openTestTaskflow({ stateSchemas });
    const flow = await tf.manager.createManaged({ ...invoiceFlow, state: { invoice: 'INV-42' } });
    await tf.manager.startRunning(flow.id);
    const error = await refusal(tf.manager.updateState(flow.id, { amount: -5 }));
    expect(error.code).toBe('invalid_input');
    const after = await tf.manager.get(flow.id);
    expect(after).toMatchObject({ revision: 1, state: { invoice: 'INV-42' } });
  });

  it('checks finish and resume patches as well', async () => {
    const tf = await openTestTaskflow({ stateSchemas });
    const flow = await tf.manager.createManaged({ ...invoiceFlow, state: { invoice: 'INV-42' } });
    await tf.manager.startRunning(flow.id);
    expect((await refusal(tf.manager.finish(flow.id, { invoice: 'nope' }))).code).toBe('invalid_input');
    await tf.manager.setWaiting(flow.id, { kind: 'manual' });
    expect((await refusal(tf.manager.resume(flow.id, { amount: 'lots' }))).code).toBe('invalid_input');
    expect((await tf.manager.get(flow.id))!.status).toBe('waiting');
  });

  it('lets state that fits through, with the keys the runtime adds on resume', async () => {
    const tf = await openTestTaskflow({ stateSchemas });
    const flow = await tf.manager.createManaged({ ...invoiceFlow, state: { invoice: 'INV-42' } });
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.paid', correlationId: 'INV-42' });
    await tf.engine.deliver({ topic: 'payments.paid', correlationId: 'INV-42', payload: { amount: 120 } });
    const resumed = await tf.manager.updateState(flow.id, { amount: 120 });
    expect(resumed.state).toEqual({ invoice: 'INV-42', amount: 120, resume_event: { amount: 120 } });
  });

  it('leaves controllers without a schema free', async () => {
    const tf = await openTestTaskflow({ stateSchemas });
    const flow = await tf.manager.createManaged({ ...invoiceFlow, controllerId: 'kate/inbox', state: { anything: [1, 2] } });
    expect(flow.state).toEqual({ anything: [1, 2] });
  });

  it('refuses a model whose start or advance does not fit, as an invalid_input answer', async () => {
    const tf = await openTestTaskflow({ stateSchemas });
    const tool = createTaskflowTool(tf, { owner: OWNER });
    const refused = await tool.call({ action: 'start', controller_id: 'billing/invoice', goal: 'collect', state: { invoice: 'x' } });
    expect(refused).toMatchObject({ ok: false, error: 'invalid_input' });
    const started = await tool.call({ action: 'start', controller_id: 'billing/invoice', goal: 'collect', state: { invoice: 'INV-7' } });
    if (!started.ok || !('flow' in started)) throw new Error(`start refused: ${JSON.stringify(started)}`);
    const advanced = await tool.call({ action: 'advance', flow_id: started.flow.id, patch: { amount: 0 } });
    expect(advanced).toMatchObject({ ok: false, error: 'invalid_input' });
  });

  it('types a flow state for the host that asks for it', async () => {
    const tf = await openTestTaskflow({ stateSchemas });
    const flow = await tf.manager.createManaged({ ...invoiceFlow, state: { invoice: 'INV-42' } });
    const typed = await tf.manager.get<InvoiceState>(flow.id);
    expectTypeOf(typed).toEqualTypeOf<Flow<InvoiceState> | undefined>();
    expectTypeOf(typed!.state.invoice).toEqualTypeOf<string>();
    expect(typed!.state.invoice).toBe('INV-42');
  });
});

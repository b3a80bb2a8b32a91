import { generateText, stepCountIs } from 'ai';
import { describe, expect, it, vi } from 'vitest';
import { taskflowAiTool } from '../src/adapters/vercel-ai.js';
import { createTaskflowTool, type TaskflowToolResult } from '../src/index.js';
import { flowOf, OWNER, openToolFixture, snapshotDatabase, startInput } from './support/tool-fixtures.js';
import { openTestTaskflow, T0 } from './support/taskflow.js';
import { scriptedAiModel } from './support/tool-models.js';

const paymentWait = { kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', timeout_in: '7d' };

function refused(result: TaskflowToolResult, code: string): string {
  expect(result).toMatchObject({ ok: false, error: code });
  return (result as { message: string }).message;
}

describe('taskflow tool: start with wait_condition', () => {
  it('starts and parks the flow in one call and one transaction', async () => {
    const { tf, tool } = await openToolFixture({ topics: ['payments.>'] });
    const commit = vi.spyOn(tf.store, 'commit');
    const flow = flowOf(await tool.call({ ...startInput, state: { order: 42 }, wait_condition: paymentWait }));
    expect(commit).toHaveBeenCalledTimes(1);
    expect(flow).toMatchObject({
      status: 'waiting',
      state: { order: 42 },
      wait: { kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', timeout_at: new Date(T0 + 7 * 86_400_000).toISOString() },
    });
    expect((await tf.manager.listEvents(flow.id)).map((e) => e.kind)).toEqual(['created', 'started', 'waiting']);
  });

  it('without wait_condition, start is one transaction too and leaves the flow running', async () => {
    const { tf, tool } = await openToolFixture();
    const commit = vi.spyOn(tf.store, 'commit');
    expect(flowOf(await tool.call(startInput)).status).toBe('running');
    expect(commit).toHaveBeenCalledTimes(1);
  });

  it('is described to the model only when the binding allows wait', async () => {
    const { tool } = await openToolFixture();
    expect(tool.description).toContain('To start and park in one call, add wait_condition');
    const { tool: noWait } = await openToolFixture({ allow: ['start', 'status', 'finish'] });
    expect(noWait.description).not.toContain('wait_condition');
  });

  it('is refused, changing nothing, when the binding does not allow wait', async () => {
    const { tf, tool } = await openToolFixture({ allow: ['start', 'status', 'finish'] });
    const before = snapshotDatabase(tf.path);
    const message = refused(await tool.call({ ...startInput, wait_condition: { kind: 'timer', in: '1h' } }), 'action_not_allowed');
    expect(message).toMatch(/start without wait_condition/);
    expect(snapshotDatabase(tf.path)).toEqual(before);
  });

  it('refuses a topic outside the binding, a time beyond the horizon, or a malformed wait, changing nothing', async () => {
    const { tf, tool } = await openToolFixture({ topics: ['payments.>'], timerMaxHorizon: '7d' });
    const before = snapshotDatabase(tf.path);
    refused(await tool.call({ ...startInput, wait_condition: { ...paymentWait, topic: 'orders.shipped' } }), 'topic_not_allowed');
    expect(refused(await tool.call({ ...startInput, wait_condition: { kind: 'timer', in: '30d' } }), 'invalid_input')).toMatch(/beyond the horizon/);
    expect(refused(await tool.call({ ...startInput, wait_condition: { kind: 'alarm' } }), 'invalid_input')).toMatch(/wait_condition.kind/);
    expect(refused(await tool.call({ ...startInput, wait_condition: 'in an hour' }), 'invalid_input')).toMatch(/wait_condition/);
    expect(snapshotDatabase(tf.path)).toEqual(before);
  });

  it('a retry with the same idempotency_key returns the parked flow and parks nothing twice', async () => {
    const { tf, tool } = await openToolFixture();
    const call = { ...startInput, idempotency_key: 'order-42', wait_condition: { kind: 'timer', in: '1h' } };
    const first = flowOf(await tool.call(call));
    const again = flowOf(await tool.call(call));
    expect(again).toEqual(first);
    expect(await tf.manager.listByOwner(OWNER)).toHaveLength(1);
  });

  it('a scripted AI SDK model starts and parks in one step, and the flow resumes on its event', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowAiTool(tf, { owner: OWNER, topics: ['payments.>'] });
    const model = scriptedAiModel([
      { call: () => ({ ...startInput, state: { order: 42 }, wait_condition: paymentWait }) },
      { text: 'I will ship order 42 once INV-42 is paid.' },
    ]);
    const run = await generateText({ model, tools: { taskflow }, stopWhen: stepCountIs(3), prompt: 'Ship order 42 when INV-42 is paid.' });
    expect(run.steps).toHaveLength(2);
    const started = run.steps[0]!.toolResults[0]!.output as TaskflowToolResult;
    const id = flowOf(started).id;
    expect(flowOf(started).status).toBe('waiting');
    expect(await tf.engine.deliver({ topic: 'payments.invoice.paid', correlationId: 'INV-42', payload: { amount: 120 } })).toMatchObject({ resumed: [id] });
    expect(await tf.manager.get(id)).toMatchObject({ status: 'running', state: { order: 42, resume_event: { amount: 120 } } });
  });

  it('the transport-neutral tool and the adapters share the behaviour', async () => {
    const tf = await openTestTaskflow();
    const tool = createTaskflowTool(tf, { owner: OWNER });
    expect(flowOf(await tool.call({ ...startInput, wait_condition: { kind: 'manual', signal: 'approved' } })).wait).toEqual({ kind: 'manual', signal: 'approved' });
  });
});

import { generateText, stepCountIs } from 'ai';
import { describe, expect, it } from 'vitest';
import { taskflowAiTool } from '../src/adapters/vercel-ai.js';
import { TASKFLOW_ACTIONS, type TaskflowToolResult } from '../src/index.js';
import { openTestTaskflow, T0 } from './support/taskflow.js';
import { scriptedAiModel } from './support/tool-models.js';

const session = { sessionKey: 'agent:kate:session:1' };
const flowId = (previous: Record<string, unknown> | undefined) => (previous as { flow: { id: string } }).flow.id;

describe('AI SDK adapter: taskflowAiTool', () => {
  it('drives a flow through generateText: start, wait on an event, event delivered, status, finish', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowAiTool(tf, { owner: (call) => (call.experimental_context as typeof session | undefined)?.sessionKey, topics: ['payments.>'] });

    const first = scriptedAiModel([
      { call: () => ({ action: 'start', controller_id: 'kate/shipping', goal: 'ship order 42 once INV-42 is paid', state: { order: 42 } }) },
      { call: (started) => ({ action: 'wait', flow_id: flowId(started), wait_condition: { kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', timeout_in: '7d' } }) },
      { text: 'I will ship order 42 once the invoice is paid.' },
    ]);
    const run1 = await generateText({ model: first, tools: { taskflow }, stopWhen: stepCountIs(5), experimental_context: session, prompt: 'Ship order 42 when INV-42 is paid.' });
    expect(run1.steps).toHaveLength(3);
    expect(run1.text).toBe('I will ship order 42 once the invoice is paid.');
    const waited = run1.steps[1]!.toolResults[0]!.output as TaskflowToolResult;
    expect(waited).toMatchObject({ ok: true, flow: { status: 'waiting', wait: { kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42' } } });
    const id = (waited as { flow: { id: string } }).flow.id;

    tf.clock.set(T0 + 3_600_000);
    expect(await tf.engine.deliver({ topic: 'payments.invoice.paid', correlationId: 'INV-42', payload: { amount: 120 } })).toMatchObject({ resumed: [id] });

    const second = scriptedAiModel([
      { call: () => ({ action: 'status', flow_id: id }) },
      { call: (status) => ({ action: 'finish', flow_id: flowId(status), final_state: { shipped: true } }) },
      { text: 'Order 42 shipped.' },
    ]);
    const run2 = await generateText({ model: second, tools: { taskflow }, stopWhen: stepCountIs(5), experimental_context: session, prompt: `Flow ${id} resumed.` });
    const status = run2.steps[0]!.toolResults[0]!.output;
    expect(status).toMatchObject({
      ok: true,
      now: new Date(T0 + 3_600_000).toISOString(),
      flow: { status: 'running', state: { order: 42, resume_event: { amount: 120 } }, last_wake: { reason: 'event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', payload: { amount: 120 } } },
    });
    expect(run2.steps[1]!.toolResults[0]!.output).toMatchObject({ ok: true, flow: { status: 'finished', state: { shipped: true } } });
    expect(run2.text).toBe('Order 42 shipped.');
    expect((await tf.manager.get(id))!.ownerSessionKey).toBe(session.sessionKey);
  });

  it('sends the model a flat JSON schema: top-level type "object" with the eight actions', async () => {
    const tf = await openTestTaskflow();
    const model = scriptedAiModel([{ text: 'nothing to do' }]);
    await generateText({ model, tools: { taskflow: taskflowAiTool(tf, { owner: 'agent:kate:session:1' }) }, prompt: 'hi' });
    const sent = model.doGenerateCalls[0]!.tools!;
    expect(sent).toHaveLength(1);
    const tool = sent[0]!;
    if (tool.type !== 'function') throw new Error('expected a function tool');
    expect(tool.name).toBe('taskflow');
    const schema = tool.inputSchema as { type: string; properties: { action: { enum: string[] } }; oneOf?: unknown; anyOf?: unknown };
    expect(schema.type).toBe('object');
    expect(schema.oneOf).toBeUndefined();
    expect(schema.anyOf).toBeUndefined();
    expect(schema.properties.action.enum).toEqual([...TASKFLOW_ACTIONS]);
    expect(tool.description).toMatch(/"action":"wait"/);
  });

  it('hands a refusal back to the model as a result it can read, and changes nothing', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowAiTool(tf, { owner: 'agent:kate:session:1', allow: ['status', 'list_mine'] });
    const model = scriptedAiModel([
      { call: () => ({ action: 'start', controller_id: 'kate/shipping', goal: 'g' }) },
      { call: () => ({ action: 'wait', flow_id: 42 }) },
      { text: 'done' },
    ]);
    const run = await generateText({ model, tools: { taskflow }, stopWhen: stepCountIs(5), prompt: 'go' });
    expect(run.steps[0]!.toolResults[0]!.output).toEqual({ ok: false, error: 'action_not_allowed', message: 'action "start" is not allowed here; allowed actions: status, list_mine' });
    expect(run.steps[1]!.toolResults[0]!.output).toMatchObject({ ok: false, error: 'action_not_allowed' });
    expect(await tf.manager.listByOwner('agent:kate:session:1')).toEqual([]);
  });

  it('refuses a call whose context carries no session', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowAiTool(tf, { owner: (call) => (call.experimental_context as typeof session | undefined)?.sessionKey });
    const model = scriptedAiModel([{ call: () => ({ action: 'list_mine' }) }, { text: 'done' }]);
    const run = await generateText({ model, tools: { taskflow }, stopWhen: stepCountIs(3), prompt: 'go' });
    expect(run.steps[0]!.toolResults[0]!.output).toMatchObject({ ok: false, error: 'no_owner' });
  });
});

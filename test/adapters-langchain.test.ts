import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import { toJsonSchema } from '@langchain/core/utils/json_schema';
import { createAgent } from 'langchain';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { taskflowLangChainTool } from '../src/adapters/langchain.js';
import { TASKFLOW_ACTIONS } from '../src/index.js';
import { openTestTaskflow, T0 } from './support/taskflow.js';
import { lastLangChainToolResult, taskflowCall } from './support/tool-models.js';

const SESSION = 'agent:kate:session:1';
const flowIdIn = (messages: Parameters<typeof lastLangChainToolResult>[0]) => (lastLangChainToolResult(messages) as { flow: { id: string } }).flow.id;

function toolResults(messages: { getType(): string; content: unknown }[]): Record<string, unknown>[] {
  return messages.filter((m) => m.getType() === 'tool').map((m) => JSON.parse(String(m.content)) as Record<string, unknown>);
}

describe('LangChain adapter: taskflowLangChainTool', () => {
  it('drives a flow through createAgent: start, wait on an event, event delivered, status, finish (owner from thread_id)', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowLangChainTool(tf, { owner: (config) => config.configurable?.thread_id as string | undefined, topics: ['payments.>'] });
    const config = { configurable: { thread_id: SESSION } };

    const first = fakeModel()
      .respondWithTools([{ name: 'taskflow', id: 'c1', args: { action: 'start', controller_id: 'kate/shipping', goal: 'ship order 42 once INV-42 is paid', state: { order: 42 } } }])
      .respond((messages) =>
        taskflowCall(
          { action: 'wait', flow_id: flowIdIn(messages), wait_condition: { kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', timeout_in: '7d' } },
          'c2',
        ),
      )
      .respond(new AIMessage('I will ship order 42 once the invoice is paid.'));
    const run1 = await createAgent({ model: first, tools: [taskflow] }).invoke({ messages: [new HumanMessage('Ship order 42 when INV-42 is paid.')] }, config);
    const [started, waited] = toolResults(run1.messages);
    expect(started).toMatchObject({ ok: true, flow: { status: 'running', state: { order: 42 } } });
    expect(waited).toMatchObject({ ok: true, flow: { status: 'waiting', wait: { kind: 'external_event', correlation_id: 'INV-42' } } });
    const id = (waited as { flow: { id: string } }).flow.id;
    expect((await tf.manager.get(id))!.ownerSessionKey).toBe(SESSION);

    tf.clock.set(T0 + 3_600_000);
    expect(await tf.engine.deliver({ topic: 'payments.invoice.paid', correlationId: 'INV-42', payload: { amount: 120 } })).toMatchObject({ resumed: [id] });

    const second = fakeModel()
      .respondWithTools([{ name: 'taskflow', id: 'c3', args: { action: 'status', flow_id: id } }])
      .respond((messages) => taskflowCall({ action: 'finish', flow_id: flowIdIn(messages), final_state: { shipped: true } }, 'c4'))
      .respond(new AIMessage('Order 42 shipped.'));
    const run2 = await createAgent({ model: second, tools: [taskflow] }).invoke({ messages: [new HumanMessage(`Flow ${id} resumed.`)] }, config);
    const [status, finished] = toolResults(run2.messages);
    expect(status).toMatchObject({
      ok: true,
      now: new Date(T0 + 3_600_000).toISOString(),
      flow: { status: 'running', state: { resume_event: { amount: 120 } }, last_wake: { reason: 'event', correlation_id: 'INV-42', payload: { amount: 120 } } },
    });
    expect(finished).toMatchObject({ ok: true, flow: { status: 'finished', state: { order: 42, shipped: true } } });
    expect(run2.messages.at(-1)!.content).toBe('Order 42 shipped.');
  });

  it('resolves the owner from the agent runtime context, so one tool serves many sessions', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowLangChainTool(tf, { owner: (config) => (config.context as { sessionKey?: string } | undefined)?.sessionKey });
    const agentFor = () =>
      createAgent({
        model: fakeModel()
          .respondWithTools([{ name: 'taskflow', id: 'c1', args: { action: 'start', controller_id: 'kate/shipping', goal: 'g' } }])
          .respond(new AIMessage('started')),
        tools: [taskflow],
        contextSchema: z.object({ sessionKey: z.string() }),
      });
    await agentFor().invoke({ messages: [new HumanMessage('go')] }, { context: { sessionKey: 'agent:a:session:1' } });
    await agentFor().invoke({ messages: [new HumanMessage('go')] }, { context: { sessionKey: 'agent:b:session:2' } });
    expect(await tf.manager.listByOwner('agent:a:session:1')).toHaveLength(1);
    expect(await tf.manager.listByOwner('agent:b:session:2')).toHaveLength(1);
  });

  it('answers a bad call with a refusal the model can read, not a thrown parse error', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowLangChainTool(tf, { owner: SESSION });
    const model = fakeModel()
      .respondWithTools([{ name: 'taskflow', id: 'c1', args: { action: 'launch', goal: 7 } }])
      .respondWithTools([{ name: 'taskflow', id: 'c2', args: { action: 'start', controller_id: 'kate/shipping' } }])
      .respond(new AIMessage('gave up'));
    const run = await createAgent({ model, tools: [taskflow] }).invoke({ messages: [new HumanMessage('go')] });
    const [unknown, missing] = toolResults(run.messages);
    expect(unknown).toMatchObject({ ok: false, error: 'unknown_action', message: expect.stringMatching(/unknown action "launch"/) });
    expect(missing).toMatchObject({ ok: false, error: 'invalid_input', message: expect.stringMatching(/start needs goal/) });
    expect(await tf.manager.listByOwner(SESSION)).toEqual([]);
  });

  it('works with bindTools and invoke directly', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowLangChainTool(tf, { owner: SESSION });
    const model = fakeModel().respondWithTools([{ name: 'taskflow', id: 'c1', args: { action: 'list_mine' } }]);
    const reply = await model.bindTools([taskflow]).invoke([new HumanMessage('what are my flows?')]);
    const call = reply.tool_calls![0]!;
    const message = await taskflow.invoke({ ...call, type: 'tool_call' });
    expect(JSON.parse(String(message.content))).toMatchObject({ ok: true, count: 0, flows: [] });
  });

  it('sends the model a flat JSON schema: top-level type "object" with the eight actions', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowLangChainTool(tf, { owner: SESSION });
    const openai = convertToOpenAITool(taskflow);
    expect(openai.function.name).toBe('taskflow');
    const parameters = openai.function.parameters as { type: string; properties: { action: { enum: string[] } }; required: string[]; oneOf?: unknown; anyOf?: unknown };
    expect(parameters.type).toBe('object');
    expect(parameters.oneOf).toBeUndefined();
    expect(parameters.anyOf).toBeUndefined();
    expect(parameters.required).toEqual(['action']);
    expect(parameters.properties.action.enum).toEqual([...TASKFLOW_ACTIONS]);
    expect(toJsonSchema(taskflow.schema)).toMatchObject({ type: 'object', properties: { wait_condition: { type: 'object' } } });
  });
});

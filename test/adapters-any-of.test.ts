import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { generateText, stepCountIs } from 'ai';
import { createAgent } from 'langchain';
import { describe, expect, it } from 'vitest';
import { taskflowAiTool } from '../src/adapters/vercel-ai.js';
import { taskflowLangChainTool } from '../src/adapters/langchain.js';
import type { TaskflowToolResult } from '../src/index.js';
import { openTestTaskflow, T0 } from './support/taskflow.js';
import { lastLangChainToolResult, scriptedAiModel, taskflowCall } from './support/tool-models.js';

const SESSION = 'agent:kate:session:1';
const DAY = 86_400_000;

/** What the model sends for "resume on payments.received/INV-42 or the cancel_order signal, or remind me in 3 days". */
const firstOf = {
  kind: 'any',
  of: [
    { kind: 'external_event', topic: 'payments.received', correlation_id: 'INV-42' },
    { kind: 'manual', signal: 'cancel_order' },
    { kind: 'timer', in: '3d' },
  ],
};
const storedWait = {
  kind: 'any',
  of: [
    { kind: 'external_event', topic: 'payments.received', correlation_id: 'INV-42' },
    { kind: 'manual', signal: 'cancel_order' },
    { kind: 'timer', at: new Date(T0 + 3 * DAY).toISOString() },
  ],
};

describe('adapters: a scripted model waits on the first of several conditions', () => {
  it('AI SDK generateText: the model sets the any-of wait; the cancel signal wins and status says so', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowAiTool(tf, { owner: SESSION, topics: ['payments.>'] });
    const flowId = (previous: Record<string, unknown> | undefined) => (previous as { flow: { id: string } }).flow.id;
    const first = scriptedAiModel([
      { call: () => ({ action: 'start', controller_id: 'kate/shipping', goal: 'ship order 42 once INV-42 is paid', state: { order: 42 } }) },
      { call: (started) => ({ action: 'wait', flow_id: flowId(started), wait_condition: firstOf }) },
      { text: 'I will ship when INV-42 is paid, stop if the order is cancelled, and look again in 3 days.' },
    ]);
    const run1 = await generateText({ model: first, tools: { taskflow }, stopWhen: stepCountIs(5), prompt: 'Ship order 42 when INV-42 is paid, unless it is cancelled; remind me in 3 days.' });
    const waited = run1.steps[1]!.toolResults[0]!.output as TaskflowToolResult;
    expect(waited).toMatchObject({ ok: true, flow: { status: 'waiting', wait: storedWait } });
    const id = (waited as { flow: { id: string } }).flow.id;

    tf.clock.set(T0 + DAY);
    await tf.engine.signal(id, { signal: 'cancel_order', payload: { by: 'customer' } });
    // The other conditions are void: the payment now finds no flow waiting.
    expect(await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42' })).toMatchObject({ resumed: [], kept: true });

    const second = scriptedAiModel([{ call: () => ({ action: 'status', flow_id: id }) }, { text: 'The order was cancelled.' }]);
    const run2 = await generateText({ model: second, tools: { taskflow }, stopWhen: stepCountIs(5), prompt: `Flow ${id} resumed.` });
    expect(run2.steps[0]!.toolResults[0]!.output).toMatchObject({
      ok: true,
      flow: { status: 'running', wait: null, state: { resume_signal: { by: 'customer' } }, last_wake: { reason: 'signal', signal: 'cancel_order', condition: { index: 1, kind: 'manual' } } },
    });
  });

  it('LangChain createAgent: the model sets the any-of wait; the payment wins and status says so', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowLangChainTool(tf, { owner: (config) => config.configurable?.thread_id as string | undefined, topics: ['payments.>'] });
    const config = { configurable: { thread_id: SESSION } };
    const flowIdIn = (messages: Parameters<typeof lastLangChainToolResult>[0]) => (lastLangChainToolResult(messages) as { flow: { id: string } }).flow.id;
    const first = fakeModel()
      .respondWithTools([{ name: 'taskflow', id: 'c1', args: { action: 'start', controller_id: 'kate/shipping', goal: 'ship order 42 once INV-42 is paid' } }])
      .respond((messages) => taskflowCall({ action: 'wait', flow_id: flowIdIn(messages), wait_condition: firstOf }, 'c2'))
      .respond(new AIMessage('Waiting for the payment, a cancellation, or 3 days.'));
    const run1 = await createAgent({ model: first, tools: [taskflow] }).invoke({ messages: [new HumanMessage('Ship order 42 when INV-42 is paid.')] }, config);
    const waited = lastLangChainToolResult(run1.messages) as { ok: boolean; flow: { id: string } };
    expect(waited).toMatchObject({ ok: true, flow: { status: 'waiting', wait: storedWait } });
    const id = waited.flow.id;

    tf.clock.set(T0 + DAY);
    expect(await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { amount: 120 } })).toMatchObject({ resumed: [id] });
    await expect(tf.engine.signal(id, { signal: 'cancel_order' })).rejects.toMatchObject({ code: 'illegal_transition' });
    expect(await tf.engine.tick(T0 + 4 * DAY)).toMatchObject({ resumed: 0 });

    const second = fakeModel()
      .respondWithTools([{ name: 'taskflow', id: 'c3', args: { action: 'status', flow_id: id } }])
      .respond(new AIMessage('INV-42 is paid.'));
    const run2 = await createAgent({ model: second, tools: [taskflow] }).invoke({ messages: [new HumanMessage(`Flow ${id} resumed.`)] }, config);
    expect(lastLangChainToolResult(run2.messages)).toMatchObject({
      ok: true,
      flow: { status: 'running', state: { resume_event: { amount: 120 } }, last_wake: { reason: 'event', topic: 'payments.received', correlation_id: 'INV-42', condition: { index: 0, kind: 'external_event' } } },
    });
  });
});

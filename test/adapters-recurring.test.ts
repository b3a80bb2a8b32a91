import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { generateText, stepCountIs } from 'ai';
import { createAgent } from 'langchain';
import { describe, expect, it } from 'vitest';
import { taskflowLangChainTool } from '../src/adapters/langchain.js';
import { taskflowAiTool } from '../src/adapters/vercel-ai.js';
import type { WireFlow } from '../src/index.js';
import { openTestTaskflow, T0 } from './support/taskflow.js';
import { lastLangChainToolResult, scriptedAiModel, taskflowCall } from './support/tool-models.js';

const SESSION = 'agent:kate:session:1';
const DAY = 86_400_000;
const reminder = { kind: 'recurring', every: '3d', count: 5 };
const flowIn = (result: Record<string, unknown> | undefined) => (result as { flow: WireFlow }).flow;
/** What a model reads to park for the next occurrence: the number of the one it was woken for. */
const occurrenceIn = (result: Record<string, unknown> | undefined) => flowIn(result).last_wake!.occurrence!.number;

describe('a scripted model sets a recurring reminder through the real SDK loops', () => {
  it('AI SDK generateText: sets the schedule, reads the occurrence on resume, parks for the next one (twice, harmlessly)', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowAiTool(tf, { owner: SESSION });
    const first = scriptedAiModel([
      { call: () => ({ action: 'start', controller_id: 'kate/billing', goal: 'remind the customer of INV-42 every 3 days, 5 times' }) },
      { call: (started) => ({ action: 'wait', flow_id: flowIn(started).id, wait_condition: reminder }) },
      { text: 'I will remind them every 3 days.' },
    ]);
    const run1 = await generateText({ model: first, tools: { taskflow }, stopWhen: stepCountIs(5), prompt: 'Remind the customer of INV-42 every 3 days.' });
    expect(first.doGenerateCalls[0]!.tools![0]!).toMatchObject({ description: expect.stringMatching(/"kind":"recurring"/) });
    const waited = run1.steps[1]!.toolResults[0]!.output as { flow: WireFlow };
    expect(waited.flow).toMatchObject({ status: 'waiting', wait: { kind: 'recurring', occurrence: 1 }, schedule: { every: '3d', count: 5 } });
    const id = waited.flow.id;

    tf.clock.set(T0 + 3 * DAY);
    expect(await tf.engine.tick()).toMatchObject({ resumed: 1 });

    const second = scriptedAiModel([
      { call: () => ({ action: 'status', flow_id: id }) },
      { call: (status) => ({ action: 'wait', flow_id: id, wait_condition: { kind: 'next_occurrence', after: occurrenceIn(status) } }) },
      // A retried turn sends the same call again: nothing more happens.
      { call: () => ({ action: 'wait', flow_id: id, wait_condition: { kind: 'next_occurrence', after: 1 } }) },
      { text: 'Reminder 1 sent; next one in 3 days.' },
    ]);
    const run2 = await generateText({ model: second, tools: { taskflow }, stopWhen: stepCountIs(6), prompt: `Flow ${id} resumed.` });
    const [status, parked, again] = run2.steps.slice(0, 3).map((s) => s.toolResults[0]!.output as { ok: boolean; flow: WireFlow });
    expect(status!.flow.last_wake).toMatchObject({ reason: 'recurring', occurrence: { number: 1, missed: 0, last: false } });
    expect(parked!.flow.wait).toEqual({ kind: 'recurring', occurrence: 2, at: new Date(T0 + 6 * DAY).toISOString() });
    expect(again).toEqual(parked);
    expect((await tf.manager.get(id))!.revision).toBe(4); // born at 0, then started, waiting, resumed, waiting: no second park
  });

  it('LangChain createAgent: the same reminder, owner from thread_id', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowLangChainTool(tf, { owner: (config) => config.configurable?.thread_id as string | undefined });
    const config = { configurable: { thread_id: SESSION } };
    const first = fakeModel()
      .respondWithTools([{ name: 'taskflow', id: 'c1', args: { action: 'start', controller_id: 'kate/billing', goal: 'remind INV-42 every 3 days' } }])
      .respond((messages) => taskflowCall({ action: 'wait', flow_id: flowIn(lastLangChainToolResult(messages)).id, wait_condition: reminder }, 'c2'))
      .respond(new AIMessage('Reminders scheduled.'));
    const run1 = await createAgent({ model: first, tools: [taskflow] }).invoke({ messages: [new HumanMessage('Remind INV-42 every 3 days.')] }, config);
    const waited = flowIn(lastLangChainToolResult(run1.messages));
    expect(waited).toMatchObject({ status: 'waiting', wait: { kind: 'recurring', occurrence: 1 } });

    tf.clock.set(T0 + 3 * DAY);
    await tf.engine.tick();
    const second = fakeModel()
      .respondWithTools([{ name: 'taskflow', id: 'c3', args: { action: 'status', flow_id: waited.id } }])
      .respond((messages) =>
        taskflowCall({ action: 'wait', flow_id: waited.id, wait_condition: { kind: 'next_occurrence', after: occurrenceIn(lastLangChainToolResult(messages)) } }, 'c4'),
      )
      .respond(new AIMessage('Next reminder in 3 days.'));
    const run2 = await createAgent({ model: second, tools: [taskflow] }).invoke({ messages: [new HumanMessage(`Flow ${waited.id} resumed.`)] }, config);
    const parked = flowIn(lastLangChainToolResult(run2.messages));
    expect(parked).toMatchObject({ status: 'waiting', wait: { kind: 'recurring', occurrence: 2 }, schedule: { last_occurrence: { number: 1 } } });
    expect((await tf.manager.get(waited.id))!.ownerSessionKey).toBe(SESSION);
  });
});

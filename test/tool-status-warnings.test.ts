import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { generateText, stepCountIs } from 'ai';
import { createAgent } from 'langchain';
import { taskflowLangChainTool } from '../src/adapters/langchain.js';
import { describe, expect, it } from 'vitest';
import { taskflowAiTool } from '../src/adapters/vercel-ai.js';
import type { TaskflowToolResult } from '../src/index.js';
import { T0 } from './support/taskflow.js';
import { flowOf, openToolFixture, startInput } from './support/tool-fixtures.js';
import { lastLangChainToolResult, scriptedAiModel } from './support/tool-models.js';

const DAY = 86_400_000;

function warningsOf(result: TaskflowToolResult): string[] | undefined {
  expect(result).toMatchObject({ ok: true });
  return (result as { warnings?: string[] }).warnings;
}

describe('taskflow tool: status warns when the wait looks stuck', () => {
  it('says nothing while the wait is fine', async () => {
    const { tool } = await openToolFixture({ topics: ['payments.>'] });
    const { id } = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'external_event', topic: 'payments.received', correlation_id: 'inv-42' } });
    expect(warningsOf(await tool.call({ action: 'status', flow_id: id }))).toBeUndefined();
  });

  it('names the kept event whose key nearly matches, and how to take it', async () => {
    const { tf, tool } = await openToolFixture({ topics: ['payments.>'] });
    const { id } = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'external_event', topic: 'payments.received', correlation_id: 'inv-42' } });
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { amount: 42 } });
    const [warning, ...more] = warningsOf(await tool.call({ action: 'status', flow_id: id }))!;
    expect(more).toEqual([]);
    expect(warning).toBe(
      'no event has arrived for payments.received/inv-42; 1 event(s) are kept for payments.received/INV-42, which differs only in case: did you mean correlation_id "INV-42" on topic "payments.received"? If so, cancel this flow and start a new one that waits on that key (a wait on a key with a kept event resumes at once), or ask the operator to deliver the event again on payments.received/inv-42',
    );
  });

  it('warns of a signal wait with no timeout that has lasted longer than a week', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'manual', signal: 'approve' } });
    tf.clock.set(T0 + 8 * DAY);
    expect(warningsOf(await tool.call({ action: 'status', flow_id: id }))).toEqual([expect.stringMatching(/^it has waited for a signal since .* with no timeout/)]);
  });

  it('warns of a due timer while no engine runs', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'timer', in: '1h' } });
    tf.clock.set(T0 + 2 * 3_600_000);
    expect(warningsOf(await tool.call({ action: 'status', flow_id: id }))).toEqual([expect.stringContaining('but no engine is running to resume it')]);
  });

  it('lets a scripted model read the warning through the AI SDK loop and act on it: a new flow on the kept key resumes at once', async () => {
    const { tf } = await openToolFixture();
    const taskflow = taskflowAiTool(tf, { owner: 'agent:kate:session:1', topics: ['payments.>'] });
    const setUp = scriptedAiModel([
      { call: () => ({ action: 'start', controller_id: 'kate/shipping', goal: 'ship order 42 once INV-42 is paid' }) },
      { call: (started) => ({ action: 'wait', flow_id: (started as { flow: { id: string } }).flow.id, wait_condition: { kind: 'external_event', topic: 'payments.received', correlation_id: 'inv-42' } }) },
      { text: 'Waiting for the payment.' },
    ]);
    const run1 = await generateText({ model: setUp, tools: { taskflow }, stopWhen: stepCountIs(5), prompt: 'Ship order 42 when INV-42 is paid.' });
    const id = (run1.steps[1]!.toolResults[0]!.output as { flow: { id: string } }).flow.id;
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { amount: 42 } });

    let key: { topic: string; correlationId: string } | undefined;
    const followUp = scriptedAiModel([
      { call: () => ({ action: 'status', flow_id: id }) },
      {
        call: (status) => {
          // What a model does with the warning: take the key it names.
          const warning = (status as { warnings: string[] }).warnings[0]!;
          const [, correlationId, topic] = /did you mean correlation_id "([^"]+)" on topic "([^"]+)"/.exec(warning)!;
          key = { topic: topic!, correlationId: correlationId! };
          return { action: 'cancel', flow_id: id };
        },
      },
      { call: () => ({ action: 'start', controller_id: 'kate/shipping', goal: 'ship order 42 once INV-42 is paid' }) },
      { call: (started) => ({ action: 'wait', flow_id: (started as { flow: { id: string } }).flow.id, wait_condition: { kind: 'external_event', topic: key!.topic, correlation_id: key!.correlationId } }) },
      { text: 'Payment found; continuing.' },
    ]);
    const run2 = await generateText({ model: followUp, tools: { taskflow }, stopWhen: stepCountIs(6), prompt: 'Is order 42 paid yet?' });
    expect(run2.steps[0]!.toolResults[0]!.output).toMatchObject({ ok: true, warnings: [expect.stringContaining('did you mean correlation_id "INV-42"')] });
    expect(run2.steps[1]!.toolResults[0]!.output).toMatchObject({ ok: true, flow: { id, status: 'cancelled' } });
    expect(run2.steps[3]!.toolResults[0]!.output).toMatchObject({ ok: true, flow: { status: 'running', state: { resume_event: { amount: 42 } } } });
    expect(await tf.store.listInbox()).toEqual([]);
  });

  it('reaches a LangChain agent too: the status tool message carries the warning', async () => {
    const { tf } = await openToolFixture();
    const taskflow = taskflowLangChainTool(tf, { owner: 'agent:kate:session:1', topics: ['payments.>'] });
    const flow = await tf.manager.createManaged({ controllerId: 'kate/shipping', goal: 'ship order 42', ownerSessionKey: 'agent:kate:session:1' });
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-2026-0042' });
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-2026-042' });
    const model = fakeModel()
      .respondWithTools([{ name: 'taskflow', id: 'c1', args: { action: 'status', flow_id: flow.id } }])
      .respond(new AIMessage('The payment was sent for INV-2026-042; I will ask.'));
    const run = await createAgent({ model, tools: [taskflow] }).invoke({ messages: [new HumanMessage('Is order 42 paid?')] });
    const status = lastLangChainToolResult(run.messages) as { warnings?: string[] };
    expect(status.warnings).toEqual([expect.stringContaining('1 event(s) are kept for payments.received/INV-2026-042, which looks like a typo of it')]);
  });
});

import { generateText, stepCountIs } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { openTaskflow } from 'nexo-taskflow';
import { taskflowAiTool } from 'nexo-taskflow/ai';

const tf = await openTaskflow({
  onResume: (flow, wake) => console.log(`flow resumed by ${wake.reason}: ${JSON.stringify(flow.state.resume_event)}`),
});
await tf.start();

// One tool for every session: the owner comes from each call's experimental_context.
const taskflow = taskflowAiTool(tf, {
  owner: (call) => (call.experimental_context as { sessionKey: string }).sessionKey,
  topics: ['payments.>'],
});

// Stands in for your provider's model, e.g. openai('gpt-4.1'): calls the tool once, then answers.
const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };
const modelCalling = (input: object) =>
  new MockLanguageModelV3({
    doGenerate: [
      { content: [{ type: 'tool-call', toolCallId: 'c1', toolName: 'taskflow', input: JSON.stringify(input) }], finishReason: { unified: 'tool-calls', raw: undefined }, usage, warnings: [] },
      { content: [{ type: 'text', text: 'Done.' }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] },
    ],
  });

const session = { experimental_context: { sessionKey: 'agent:kate:session:1' }, stopWhen: stepCountIs(5) };
const ask = async (input: object) => {
  const { steps } = await generateText({ ...session, model: modelCalling(input), tools: { taskflow }, prompt: 'Ship order 42 once invoice INV-42 is paid.' });
  return steps[0]!.toolResults[0]!.output as { ok: boolean; flow: { id: string; status: string } };
};

const started = await ask({ action: 'start', controller_id: 'kate/shipping', goal: 'Ship order 42 once INV-42 is paid' });
const flowId = started.flow.id;
const waiting = await ask({
  action: 'wait',
  flow_id: flowId,
  wait_condition: { kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', timeout_in: '7d' },
});
console.log(`flow is ${waiting.flow.status}`); // waiting

// Days later, from a webhook or the NATS bridge:
await tf.engine.deliver({ topic: 'payments.invoice.paid', correlationId: 'INV-42', payload: { amount: 120 } });

const finished = await ask({ action: 'finish', flow_id: flowId, final_state: { shipped: true } });
console.log(`flow is ${finished.flow.status}`); // finished
await tf.close();

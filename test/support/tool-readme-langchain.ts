import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { createAgent } from 'langchain';
import { openTaskflow } from 'nexo-taskflow';
import { taskflowLangChainTool } from 'nexo-taskflow/langchain';

const tf = await openTaskflow();
await tf.start();

// One tool for every conversation: the owner is the thread id of each call.
const taskflow = taskflowLangChainTool(tf, {
  owner: (config) => config.configurable?.thread_id,
  topics: ['payments.>'],
});

// Stands in for your chat model, e.g. new ChatOpenAI({ model: 'gpt-4.1' }): replies are scripted below.
const model = fakeModel();
const agent = createAgent({ model, tools: [taskflow] });
const thread = { configurable: { thread_id: 'agent:kate:session:1' } };
const ask = async (args: object) => {
  model.respondWithTools([{ name: 'taskflow', args }]).respond(new AIMessage('Done.'));
  const { messages } = await agent.invoke({ messages: [new HumanMessage('Ship order 42 once invoice INV-42 is paid.')] }, thread);
  return JSON.parse(String(messages.at(-2)!.content)) as { ok: boolean; flow: { id: string; status: string } };
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

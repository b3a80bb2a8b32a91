import { AIMessage, HumanMessage, type BaseMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { createAgent } from 'langchain';
import type { Taskflow } from 'nexo-taskflow';
import { taskflowLangChainTool } from 'nexo-taskflow/langchain';
import { decide, type ToolCallListener } from './policy.js';

const MAX_TURNS = 6;

/**
 * The scripted model: LangChain's own fake chat model, answering with {@link decide}.
 * With a real provider, pass e.g. `new ChatOpenAI({ model: 'gpt-4o-mini' })` instead.
 */
export function scriptedModel(): ReturnType<typeof fakeModel> {
  let model = fakeModel();
  let calls = 0;
  for (let turn = 0; turn < MAX_TURNS; turn++) {
    model = model.respond((messages: BaseMessage[]) => {
      const decision = decide({ prompt: userText(messages), results: toolResults(messages) });
      if ('text' in decision) return new AIMessage(decision.text);
      return new AIMessage({ content: '', tool_calls: [{ id: `call-${++calls}`, name: 'taskflow', args: decision.call, type: 'tool_call' }] });
    });
  }
  return model;
}

function userText(messages: BaseMessage[]): string {
  return messages.filter((m) => m.getType() === 'human').map((m) => String(m.content)).join('\n');
}

function toolResults(messages: BaseMessage[]): Array<Record<string, unknown>> {
  return messages.filter((m) => m.getType() === 'tool').map((m) => JSON.parse(String(m.content)) as Record<string, unknown>);
}

/** Runs the agent once: LangChain `createAgent` with the taskflow tool; the session is the thread id. */
export async function runAgent(tf: Taskflow, sessionKey: string, prompt: string, onToolCall: ToolCallListener = () => undefined): Promise<string> {
  const taskflow = taskflowLangChainTool(tf, {
    owner: (config) => config.configurable?.thread_id as string | undefined,
    topics: ['payments.>'],
  });
  const agent = createAgent({ model: scriptedModel(), tools: [taskflow] });
  const result = await agent.invoke({ messages: [new HumanMessage(prompt)] }, { configurable: { thread_id: sessionKey } });
  const calls = result.messages.flatMap((m) => (AIMessage.isInstance(m) ? (m.tool_calls ?? []) : []));
  toolResults(result.messages).forEach((output, i) => onToolCall(calls[i]?.args ?? {}, output));
  return String(result.messages.at(-1)?.content ?? '');
}

import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import { MockLanguageModelV3 } from 'ai/test';

type LanguageModelV3CallOptions = MockLanguageModelV3['doGenerateCalls'][number];
type LanguageModelV3GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

/** One scripted model turn: a tool call (input computed from the previous tool result) or a final text. */
export type ScriptedTurn = { call: (previous: Record<string, unknown> | undefined) => Record<string, unknown> } | { text: string };

/** The JSON of the most recent `taskflow` tool result in an AI SDK prompt. */
function lastAiToolResult(options: LanguageModelV3CallOptions): Record<string, unknown> | undefined {
  for (const message of [...options.prompt].reverse()) {
    if (message.role !== 'tool') continue;
    for (const part of [...message.content].reverse()) {
      if (part.type === 'tool-result' && part.output.type === 'json') return part.output.value as Record<string, unknown>;
    }
  }
  return undefined;
}

/** An AI SDK mock model that plays `turns` in order, one per model call. */
export function scriptedAiModel(turns: ScriptedTurn[]): MockLanguageModelV3 {
  let index = 0;
  return new MockLanguageModelV3({
    doGenerate: async (options): Promise<LanguageModelV3GenerateResult> => {
      const turn = turns[index++];
      if (!turn) throw new Error('the scripted model ran out of turns');
      if ('text' in turn) {
        return { content: [{ type: 'text', text: turn.text }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] };
      }
      const input = turn.call(lastAiToolResult(options));
      return {
        content: [{ type: 'tool-call', toolCallId: `call-${index}`, toolName: 'taskflow', input: JSON.stringify(input) }],
        finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
        usage,
        warnings: [],
      };
    },
  });
}

/** The JSON of the most recent tool message in a LangChain conversation. */
export function lastLangChainToolResult(messages: BaseMessage[]): Record<string, unknown> | undefined {
  for (const message of [...messages].reverse()) {
    if (message.getType() === 'tool') return JSON.parse(String(message.content)) as Record<string, unknown>;
  }
  return undefined;
}

/** A LangChain AI message carrying one `taskflow` tool call. */
export function taskflowCall(args: Record<string, unknown>, id: string): AIMessage {
  return new AIMessage({ content: '', tool_calls: [{ id, name: 'taskflow', args, type: 'tool_call' }] });
}

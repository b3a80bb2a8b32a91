import { generateText, stepCountIs, type LanguageModel } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import type { Taskflow } from 'nexo-taskflow';
import { taskflowAiTool } from 'nexo-taskflow/ai';
import { decide, type ToolCallListener } from './policy.js';

type GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;
type Prompt = MockLanguageModelV3['doGenerateCalls'][number]['prompt'];
const usage = {
  inputTokens: { total: 0, noCache: 0, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 0, text: 0, reasoning: undefined },
};

/**
 * The scripted model: the AI SDK's own mock, answering with {@link decide}.
 * With a real provider, pass e.g. `openai('gpt-4o-mini')` from `@ai-sdk/openai` instead.
 */
export function scriptedModel(): LanguageModel {
  let calls = 0;
  return new MockLanguageModelV3({
    doGenerate: async ({ prompt }): Promise<GenerateResult> => {
      const decision = decide({ prompt: userText(prompt), results: toolResults(prompt) });
      if ('text' in decision) {
        return { content: [{ type: 'text', text: decision.text }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] };
      }
      return {
        content: [{ type: 'tool-call', toolCallId: `call-${++calls}`, toolName: 'taskflow', input: JSON.stringify(decision.call) }],
        finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
        usage,
        warnings: [],
      };
    },
  });
}

function userText(prompt: Prompt): string {
  return prompt
    .filter((m) => m.role === 'user')
    .flatMap((m) => m.content)
    .map((part) => (part.type === 'text' ? part.text : ''))
    .join('\n');
}

function toolResults(prompt: Prompt): Array<Record<string, unknown>> {
  return prompt
    .filter((m) => m.role === 'tool')
    .flatMap((m) => m.content)
    .flatMap((part) => (part.type === 'tool-result' && part.output.type === 'json' ? [part.output.value as Record<string, unknown>] : []));
}

/** Runs the agent once: Vercel AI SDK `generateText` with the taskflow tool, bound to one session. */
export async function runAgent(
  tf: Taskflow,
  sessionKey: string,
  prompt: string,
  onToolCall: ToolCallListener = () => undefined,
  model: LanguageModel = scriptedModel(),
): Promise<string> {
  const taskflow = taskflowAiTool(tf, {
    owner: (call) => (call.experimental_context as { sessionKey: string }).sessionKey,
    topics: ['payments.>'],
  });
  const result = await generateText({ model, tools: { taskflow }, stopWhen: stepCountIs(6), experimental_context: { sessionKey }, prompt });
  for (const step of result.steps) {
    for (const [i, call] of step.toolCalls.entries()) onToolCall(call.input as Record<string, unknown>, step.toolResults[i]?.output as Record<string, unknown>);
  }
  return result.text;
}

import { generateText, stepCountIs, type ToolSet } from 'ai7';
import { MockLanguageModelV4 } from 'ai7/test';
import { describe, expect, it } from 'vitest';
import { taskflowAiTool } from '../src/adapters/vercel-ai.js';
import type { TaskflowToolResult } from '../src/index.js';
import { openTestTaskflow, T0 } from './support/taskflow.js';

// ai 7 (installed under the alias `ai7`; it declares Node 22 but runs here) passes
// each tool its own context from `toolsContext`, as `options.context`.
type GenerateResult = Awaited<ReturnType<MockLanguageModelV4['doGenerate']>>;
const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};

function scripted(calls: Array<(previous: Record<string, unknown> | undefined) => Record<string, unknown>>): MockLanguageModelV4 {
  let turn = 0;
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }): Promise<GenerateResult> => {
      const next = calls[turn++];
      if (!next) return { content: [{ type: 'text', text: 'done' }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] };
      const results = prompt.filter((m) => m.role === 'tool').flatMap((m) => m.content);
      const last = results.at(-1);
      const previous = last?.type === 'tool-result' && last.output.type === 'json' ? (last.output.value as Record<string, unknown>) : undefined;
      return {
        content: [{ type: 'tool-call', toolCallId: `c${turn}`, toolName: 'taskflow', input: JSON.stringify(next(previous)) }],
        finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
        usage,
        warnings: [],
      };
    },
  });
}

describe('AI SDK 7 adapter: taskflowAiTool with the per-tool context', () => {
  it('drives a flow through ai 7 generateText, the owner taken from toolsContext', async () => {
    const tf = await openTestTaskflow();
    const taskflow = taskflowAiTool(tf, { owner: (call) => (call.context as { sessionKey?: string } | undefined)?.sessionKey, topics: ['payments.>'] }) as unknown as ToolSet[string];
    const toolsContext = { taskflow: { sessionKey: 'agent:kate:session:7' } } as never;
    const idOf = (r: Record<string, unknown> | undefined) => (r as { flow: { id: string } }).flow.id;

    const first = await generateText({
      model: scripted([
        () => ({ action: 'start', controller_id: 'kate/shipping', goal: 'ship order 7' }),
        (started) => ({ action: 'wait', flow_id: idOf(started), wait_condition: { kind: 'external_event', topic: 'payments.paid', correlation_id: 'INV-7' } }),
      ]),
      tools: { taskflow },
      toolsContext,
      stopWhen: stepCountIs(4),
      prompt: 'ship order 7 when INV-7 is paid',
    });
    const waited = first.steps[1]!.toolResults[0]!.output as TaskflowToolResult;
    expect(waited).toMatchObject({ ok: true, flow: { status: 'waiting' } });
    const id = idOf(waited as unknown as Record<string, unknown>);
    expect((await tf.manager.get(id))!.ownerSessionKey).toBe('agent:kate:session:7');

    tf.clock.set(T0 + 60_000);
    await tf.engine.deliver({ topic: 'payments.paid', correlationId: 'INV-7', payload: { amount: 7 } });
    const second = await generateText({
      model: scripted([() => ({ action: 'status', flow_id: id }), () => ({ action: 'finish', flow_id: id, final_state: { shipped: true } })]),
      tools: { taskflow },
      toolsContext,
      stopWhen: stepCountIs(4),
      prompt: `flow ${id} resumed`,
    });
    expect(second.steps[0]!.toolResults[0]!.output).toMatchObject({ ok: true, flow: { last_wake: { reason: 'event', payload: { amount: 7 } } } });
    expect(second.steps[1]!.toolResults[0]!.output).toMatchObject({ ok: true, flow: { status: 'finished' } });
  });
});

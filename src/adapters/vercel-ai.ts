import { jsonSchema, tool, type Tool } from 'ai';
import { createTaskflowTool, type TaskflowRuntime, taskflowInputJsonSchema, type TaskflowBinding, type TaskflowToolInput, type TaskflowToolResult } from '../tool/index.js';

/**
 * What an owner resolver sees of an AI SDK tool call: the execution options
 * `execute` receives. `experimental_context` is the `experimental_context` given
 * to `generateText` / `streamText` (ai 6); `context` is the per-tool context of ai 7.
 */
export interface AiToolCallContext {
  toolCallId: string;
  messages: unknown[];
  abortSignal?: AbortSignal;
  experimental_context?: unknown;
  context?: unknown;
}

/** A binding whose owner may be resolved per call, e.g. `(call) => (call.experimental_context as Ctx).sessionKey`. */
export type AiTaskflowBinding = TaskflowBinding<AiToolCallContext>;

/**
 * The `taskflow` tool as an AI SDK `tool()`, for `generateText` / `streamText`
 * multi-step loops. Its input schema is the tool core's flat JSON Schema (top-level
 * `type: "object"`); input is not validated by the SDK but by the tool, whose
 * refusals (`{ ok: false, error, message }`) tell the model how to fix the call.
 *
 * ```ts
 * const taskflow = taskflowAiTool(tf, { owner: (call) => (call.experimental_context as { session: string }).session });
 * await generateText({ model, tools: { taskflow }, stopWhen: stepCountIs(5), experimental_context: { session: 'agent:kate:session:1' }, prompt });
 * ```
 */
export function taskflowAiTool(tf: TaskflowRuntime, binding: AiTaskflowBinding): Tool<TaskflowToolInput, TaskflowToolResult> {
  const core = createTaskflowTool<AiToolCallContext>(tf, binding);
  return tool<TaskflowToolInput, TaskflowToolResult>({
    description: core.description,
    inputSchema: jsonSchema<TaskflowToolInput>(taskflowInputJsonSchema),
    execute: (input, options) => core.call(input, options as AiToolCallContext),
  });
}

import { jsonSchema, tool, type FlexibleSchema } from 'ai';
import { createTaskflowTool, type TaskflowRuntime, taskflowInputJsonSchema, type TaskflowBinding, type TaskflowToolInput, type TaskflowToolResult } from '../tool/index.js';

/**
 * What an owner resolver sees of an AI SDK tool call: the execution options
 * `execute` receives. `experimental_context` is the `experimental_context` given
 * to `generateText` / `streamText` (ai 6); `context` is the tool's own context
 * from `toolsContext` (ai 7), typed by the binding's `contextSchema`.
 */
export interface AiToolCallContext<Context = unknown> {
  toolCallId: string;
  messages: unknown[];
  abortSignal?: AbortSignal;
  experimental_context?: unknown;
  context: Context;
}

/**
 * A binding whose owner may be resolved per call: with ai 6 from
 * `experimental_context`, with ai 7 from the tool's typed `context`:
 *
 * ```ts
 * taskflowAiTool(tf, { contextSchema: z.object({ sessionKey: z.string() }), owner: (call) => call.context.sessionKey });
 * ```
 */
export interface AiTaskflowBinding<Context = unknown> extends TaskflowBinding<AiToolCallContext<Context>> {
  /**
   * ai 7: the schema of the context this tool expects in `toolsContext.taskflow`
   * (any schema the AI SDK takes, e.g. a zod object). It types `call.context` for
   * the owner resolver and `toolsContext` for `generateText`, and ai 7 checks the
   * context against it. ai 6 has no per-tool context and ignores it.
   */
  contextSchema?: FlexibleSchema<Context>;
}

/**
 * The tool {@link taskflowAiTool} returns: an AI SDK tool (ai 6 and ai 7) whose
 * results are typed, so `toolResults` give {@link TaskflowToolResult} without casts
 * (narrow with `!result.dynamic`), and whose `Context` types ai 7's `toolsContext`.
 * Spelled out rather than taken from the SDK's `Tool`, whose generics differ between
 * ai 6 and ai 7, so one declaration serves both.
 */
export interface TaskflowAiTool<Context = unknown> {
  description: string;
  inputSchema: FlexibleSchema<TaskflowToolInput>;
  contextSchema?: FlexibleSchema<Context>;
  execute: (
    input: TaskflowToolInput,
    options: { toolCallId: string; messages: unknown[]; abortSignal?: AbortSignal; experimental_context?: unknown; context?: Context },
  ) => Promise<TaskflowToolResult>;
}

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
export function taskflowAiTool<Context = unknown>(tf: TaskflowRuntime, binding: AiTaskflowBinding<Context>): TaskflowAiTool<Context> {
  const core = createTaskflowTool<AiToolCallContext<Context>>(tf, binding);
  const definition = tool<TaskflowToolInput, TaskflowToolResult>({
    description: core.description,
    inputSchema: jsonSchema<TaskflowToolInput>(taskflowInputJsonSchema),
    execute: (input, options) => core.call(input, options as AiToolCallContext<Context>),
  });
  return {
    ...(definition as TaskflowAiTool<Context>),
    ...(binding.contextSchema === undefined ? {} : { contextSchema: binding.contextSchema }),
  };
}

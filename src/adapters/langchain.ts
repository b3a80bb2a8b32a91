import { tool, type DynamicStructuredTool, type ToolRunnableConfig } from '@langchain/core/tools';
import { createTaskflowTool, type TaskflowRuntime, taskflowInputSchema, type TaskflowBinding } from '../tool/index.js';

/**
 * A binding whose owner may be resolved per call from the tool's
 * `RunnableConfig`: for example `(config) => config.configurable?.thread_id`,
 * or from the agent's runtime context, `(config) => config.context?.sessionKey`.
 */
export type LangChainTaskflowBinding = TaskflowBinding<ToolRunnableConfig>;

/** The LangChain tool type {@link taskflowLangChainTool} returns. */
export type TaskflowLangChainTool = DynamicStructuredTool<typeof taskflowInputSchema, Record<string, unknown>, Record<string, unknown>, string, unknown, 'taskflow'>;

/**
 * The `taskflow` tool as a LangChain StructuredTool, for `createAgent` (package
 * `langchain`) or `model.bindTools([...])`. It answers with the tool core's
 * JSON result as a string; a refused call is an `{"ok":false,...}` answer the
 * model can read and correct, never a thrown error.
 *
 * ```ts
 * const taskflow = taskflowLangChainTool(tf, { owner: (config) => config.configurable?.thread_id });
 * const agent = createAgent({ model, tools: [taskflow] });
 * await agent.invoke({ messages }, { configurable: { thread_id: 'agent:kate:session:1' } });
 * ```
 */
export function taskflowLangChainTool(tf: TaskflowRuntime, binding: LangChainTaskflowBinding): TaskflowLangChainTool {
  const core = createTaskflowTool<ToolRunnableConfig>(tf, binding);
  return tool(async (input: Record<string, unknown>, config: ToolRunnableConfig) => JSON.stringify(await core.call(input, config)), {
    name: 'taskflow',
    description: core.description,
    schema: taskflowInputSchema,
  });
}

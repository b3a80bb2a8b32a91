/**
 * The demo's stand-in for an LLM: it reads the conversation (the user's prompt and
 * the taskflow tool's answers so far) and decides the next tool call, as a real
 * model would. Swap it for a real model in `ai-agent.ts` / `langchain-agent.ts`.
 */
export type Decision = { call: Record<string, unknown> } | { text: string };

/** Told about each taskflow call an agent run made: its input and the tool's answer. */
export type ToolCallListener = (input: Record<string, unknown>, output: Record<string, unknown> | undefined) => void;

export interface Conversation {
  prompt: string;
  /** The taskflow tool's answers so far, oldest first. */
  results: Array<Record<string, unknown>>;
}

interface WireFlowView {
  id: string;
  status: string;
  current_step: string;
  state: Record<string, unknown>;
  last_wake?: { reason: string; payload?: unknown };
}

const INTAKE = /Invoice (\S+) \(\$(\d+)\) was sent to (\w+)\..*within (\d+[a-z]+)/s;
const RESUMED = /Flow (\S+) resumed/;

export function decide({ prompt, results }: Conversation): Decision {
  const last = results.at(-1) as { ok?: boolean; flow?: WireFlowView; message?: string } | undefined;
  if (last && last.ok === false) return { text: `The taskflow tool refused: ${last.message}` };

  const intake = INTAKE.exec(prompt);
  if (intake) {
    const [, invoice, amount, customer, deadline] = intake;
    if (results.length === 0) {
      return {
        call: {
          action: 'start',
          controller_id: 'billing/payment-wait',
          goal: `ship the order once ${invoice} is paid; remind ${customer} if not paid within ${deadline}`,
          current_step: 'await_payment',
          state: { invoice, amount: Number(amount), customer },
          idempotency_key: invoice,
        },
      };
    }
    if (results.length === 1) {
      return {
        call: {
          action: 'wait',
          flow_id: last!.flow!.id,
          wait_condition: { kind: 'external_event', topic: 'payments.received', correlation_id: invoice, timeout_in: deadline },
        },
      };
    }
    return { text: `I am waiting for the payment of ${invoice}; I will ship or remind ${customer} when it is settled.` };
  }

  const resumed = RESUMED.exec(prompt);
  if (resumed) {
    const flowId = resumed[1]!;
    if (results.length === 0) return { call: { action: 'status', flow_id: flowId } };
    const flow = last!.flow!;
    if (flow.status === 'finished') return { text: `Flow ${flow.id} is done: ${JSON.stringify(flow.state.outcome)}.` };
    if (flow.last_wake?.reason === 'event') {
      const payment = flow.state.resume_event as { amount?: number } | undefined;
      return {
        call: { action: 'finish', flow_id: flow.id, final_state: { outcome: 'shipped', paid_amount: payment?.amount ?? null } },
      };
    }
    if (flow.last_wake?.reason === 'timeout' && flow.current_step !== 'reminder') {
      return {
        call: { action: 'advance', flow_id: flow.id, current_step: 'reminder', patch: { reminder_sent_to: flow.state.customer } },
      };
    }
    return { call: { action: 'finish', flow_id: flow.id, final_state: { outcome: 'reminder_sent' } } };
  }
  return { text: 'I have nothing to do.' };
}

import { formatSpan } from '../runtime/wait.js';
import type { TaskflowAction } from './actions.js';

/**
 * The tool description a model reads: when to use the tool, what each action
 * needs, and examples. Only the allowed actions are described.
 */
export function describeTaskflowTool(allowed: readonly TaskflowAction[], horizonMs: number, topicsLine?: string): string {
  const lines: Record<TaskflowAction, string> = {
    start: 'start: begin a flow. Needs controller_id and goal; optional current_step, state, idempotency_key. The flow is running at once.\n' +
      '  {"action":"start","controller_id":"kate/shipping","goal":"ship order 42 once invoice INV-42 is paid","state":{"order":42}}',
    status: 'status: read a flow; when its wait looks stuck, warnings says why and what to do. {"action":"status","flow_id":"<id>"}',
    advance: 'advance: record progress on a running flow: patch merges into state, current_step relabels it.\n' +
      '  {"action":"advance","flow_id":"<id>","patch":{"invoice":"INV-42"},"current_step":"await_payment"}',
    wait: 'wait: park a running flow until something happens; it resumes (status running again) by itself.\n' +
      '  timer:  {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"timer","in":"3d"}}  (or "at":"2026-12-01T09:00:00Z")\n' +
      '  event:  {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"external_event","topic":"payments.invoice.paid","correlation_id":"INV-42","timeout_in":"7d"}}\n' +
      '  manual: {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"manual","signal":"approved"}}',
    finish: 'finish: complete a running flow, optionally merging final_state. {"action":"finish","flow_id":"<id>","final_state":{"shipped":true}}',
    fail: 'fail: end a running or waiting flow as failed. Needs reason. {"action":"fail","flow_id":"<id>","reason":"invoice cancelled"}',
    cancel: 'cancel: stop a flow that is not finished yet. {"action":"cancel","flow_id":"<id>"}',
    list_mine: 'list_mine: your flows, newest first; optional status filter, limit (default 20, max 100) and offset.\n' +
      '  {"action":"list_mine","status":"waiting"}',
  };
  const parts = [
    'Durable workflows that outlive this conversation. Use taskflow when work must continue later: ' +
      'after a delay, when an external event arrives (a payment, a webhook), or when someone signals approval. ' +
      'Start a flow, record progress in its state, park it with wait, and finish it when done.',
    '',
    'Actions:',
    ...allowed.map((action) => `- ${lines[action]}`),
    '',
    `Times are RFC 3339 (UTC "Z" or an offset); durations are a number and a unit: 90s, 90m, 4h, 3d. ` +
      `A timer or timeout must be in the future and at most ${formatSpan(horizonMs)} away. Every answer carries "now".`,
    'A resumed flow shows why in last_wake (reason timer, event, signal or timeout, with the event payload); ' +
      'an event payload also lands in state.resume_event.',
  ];
  if (topicsLine) parts.push(topicsLine);
  parts.push('Every answer has "ok". When ok is false nothing changed: read "message", fix the call and try again.');
  return parts.join('\n');
}

import { formatSpan } from '../runtime/wait.js';
import type { TaskflowAction } from './actions.js';

/**
 * The tool description a model reads: when to use the tool, what each action
 * needs, and examples. Only the allowed actions are described.
 */
export function describeTaskflowTool(
  allowed: readonly TaskflowAction[],
  horizonMs: number,
  topicsLine?: string,
  recurring?: { minIntervalMs: number },
): string {
  const lines: Record<TaskflowAction, string> = {
    start: 'start: begin a flow. Needs controller_id and goal; optional current_step, state, idempotency_key. The flow is running at once.\n' +
      '  {"action":"start","controller_id":"kate/shipping","goal":"ship order 42 once invoice INV-42 is paid","state":{"order":42}}' +
      (allowed.includes('wait')
        ? '\n  To start and park in one call, add wait_condition (as for wait): ' +
          '{"action":"start","controller_id":"kate/shipping","goal":"ship order 42 once invoice INV-42 is paid","wait_condition":{"kind":"external_event","topic":"payments.invoice.paid","correlation_id":"INV-42"}}'
        : ''),
    status: 'status: read a flow; when its wait looks stuck, warnings says why and what to do. {"action":"status","flow_id":"<id>"}',
    advance: 'advance: record progress on a running flow: patch merges into state, current_step relabels it.\n' +
      '  {"action":"advance","flow_id":"<id>","patch":{"invoice":"INV-42"},"current_step":"await_payment"}',
    wait: 'wait: park a running flow until something happens; it resumes (status running again) by itself.\n' +
      '  timer:  {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"timer","in":"3d"}}  (or "at":"2026-12-01T09:00:00Z")\n' +
      '  event:  {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"external_event","topic":"payments.invoice.paid","correlation_id":"INV-42","timeout_in":"7d"}}\n' +
      '  manual: {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"manual","signal":"approved"}}\n' +
      '  first of several (up to 16; the first to happen wins, last_wake.condition.index says which; the others no longer count):\n' +
      '          {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"any","of":[{"kind":"external_event","topic":"payments.received","correlation_id":"INV-42"},' +
      '{"kind":"manual","signal":"cancel_order"},{"kind":"timer","in":"3d"}]}}' +
      (recurring === undefined ? '' : recurringLines(recurring.minIntervalMs)),
    finish: 'finish: complete a running flow, optionally merging final_state. {"action":"finish","flow_id":"<id>","final_state":{"shipped":true}}',
    fail: 'fail: end a running or waiting flow as failed. Needs reason. {"action":"fail","flow_id":"<id>","reason":"invoice cancelled"}',
    cancel: 'cancel: stop a flow that is not finished yet. {"action":"cancel","flow_id":"<id>"}',
    list_mine: 'list_mine: your flows, newest first; optional status filter, limit (default 20, max 100) and offset.\n' +
      '  {"action":"list_mine","status":"waiting"}',
  };
  const parts: string[] = [
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

function recurringLines(minIntervalMs: number): string {
  return (
    '\n  recurring: {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"recurring","every":"3d","count":5}}' +
    '  (or "cron":"0 9 * * MON-FRI","time_zone":"Europe/Paris"; optional "until" (RFC 3339), "count", "start_at", ' +
    `"catch_up":"latest" (default: one resume for occurrences missed while nothing ran, with their number in missed) or "each"; every period at least ${formatSpan(minIntervalMs)})\n` +
    '  Each occurrence resumes the flow once; last_wake.occurrence has its number, scheduled_at, missed, and last (true when none follows). ' +
    'When done with occurrence N, park for the next: {"action":"wait","flow_id":"<id>","wait_condition":{"kind":"next_occurrence","after":N}}. ' +
    'Repeating it for the same N changes nothing, so it is safe to retry; an occurrence number you have seen before is the same occurrence.'
  );
}

import { isTerminal } from '../../runtime/flow.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { describeStatus } from '../format.js';
import { requireFlow } from './flow-id.js';

/** What `taskflow cancel` did. */
export type CancelOutcome = 'cancelled' | 'cancel_requested' | 'already_cancelled';

/**
 * `taskflow cancel <id> [--request-only]`.
 *
 * Semantics: first `requestCancel` (the sticky flag, audited as `cancel_requested`;
 * a waiting flow is cancelled by it at once). If the flow is still not terminal
 * (it was `created` or `running`, so its controller would have to notice the flag),
 * the CLI then calls `cancel` and the flow is `cancelled` on return. With
 * `--request-only` it stops after the request, leaving a running flow to its
 * controller. A flow already cancelled is reported and left alone (exit 0); a
 * finished or failed one is refused with `already_terminal` (exit 1).
 *
 * JSON shape: `{ outcome, previousStatus, flow: Flow }`.
 */
export const cancelCommand: DatabaseCommand = {
  name: 'cancel',
  summary: 'cancel a flow (request, then force if it is not waiting)',
  usage: 'cancel <id> [--request-only]',
  details: [
    'Sets the cancel request first: a waiting flow is cancelled by it at once. A created',
    'or running flow is then cancelled outright, unless --request-only is given, which',
    'leaves the request for the flow\'s controller to honour (its only legal move is to',
    'cancelled). A flow already cancelled is left alone (exit 0); a finished or failed',
    'one is refused with already_terminal (exit 1).',
    'Options:',
    '  --request-only   only set the cancel request; do not force a running flow',
    'JSON: { "outcome": "cancelled" | "cancel_requested" | "already_cancelled",',
    '        "previousStatus": status, "flow": Flow }',
  ].join('\n'),
  positionals: ['id'],
  options: { 'request-only': { type: 'boolean' } },
  usesDatabase: true,
  async run({ tf, args, values, json, stdout }) {
    const before = await requireFlow(tf, args[0]!);
    let flow = before;
    let outcome: CancelOutcome;
    if (before.status === 'cancelled') {
      outcome = 'already_cancelled';
    } else if (isTerminal(before.status)) {
      // Refused by the runtime with already_terminal; nothing is written.
      flow = await tf.manager.cancel(before.id);
      outcome = 'cancelled';
    } else {
      flow = await tf.manager.requestCancel(before.id);
      if (!isTerminal(flow.status) && values['request-only'] !== true) flow = await tf.manager.cancel(flow.id);
      outcome = flow.status === 'cancelled' ? 'cancelled' : 'cancel_requested';
    }
    if (json) return writeJson(stdout, { outcome, previousStatus: before.status, flow });
    const lines: Record<CancelOutcome, string> = {
      cancelled: `cancelled flow ${flow.id} (was ${before.status})`,
      cancel_requested: `cancel requested for flow ${flow.id}: it is ${describeStatus(flow)}; its controller must stop it`,
      already_cancelled: `flow ${flow.id} was already cancelled; nothing changed`,
    };
    stdout.write(lines[outcome] + '\n');
  },
};

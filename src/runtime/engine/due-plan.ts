import { dueWakeFor } from '../any-of.js';
import type { Flow } from '../flow.js';
import { cancelMove, resumeMove } from '../moves.js';
import { recurringResumeMove } from '../recurring/moves.js';
import type { Decision, FlowWrite } from '../commit-plan.js';
import type { TickResult } from '../delivery.js';

/** A due batch's counters, and how many flows it loaded (fewer than asked: none is left). */
export type DueBatchResult = TickResult & { size: number };

/**
 * The decision for flows whose wake time came: a cancel request cancels, a
 * schedule moves to its next occurrence, any other wait resumes by its timer or
 * its timeout.
 */
export function planDue(flows: readonly Flow[], nowMs: number): Decision<DueBatchResult> {
  const now = new Date(nowMs);
  const result: DueBatchResult = { resumed: 0, cancelled: 0, timedOut: 0, errors: 0, size: flows.length };
  const writes: FlowWrite[] = [];
  for (const flow of flows) {
    if (flow.cancelRequested) {
      writes.push(cancelMove(flow, now));
      result.cancelled++;
    } else if (flow.wait?.kind === 'recurring') {
      writes.push(recurringResumeMove(flow, now));
      result.resumed++;
    } else {
      const wake = dueWakeFor(flow.wait, now);
      writes.push(resumeMove(flow, now, wake));
      if (wake.reason === 'timer') result.resumed++;
      else result.timedOut++;
    }
  }
  return { result, writes };
}

import type { Decision, Loaded } from '../contract.js';
import type { Statement } from './pipeline.js';

/**
 * `inbox.maxTotal` across processes on PostgreSQL. A delivery locks only its own
 * key, so two deliveries on different keys could both count maxTotal - 1 and
 * both keep their event. A transaction that keeps events therefore ends, right
 * before its COMMIT and in the same round trip, by taking one advisory lock on
 * the total and checking that the inbox holds no more than its last keeping plan
 * counted, plus that plan's event: the check's snapshot is taken once the lock is
 * granted, so an event another transaction kept meanwhile shows in the count.
 * If one did, the check fails, the COMMIT rolls back, and the transaction runs
 * again with plans that see the new count.
 *
 * The lock is the last one a transaction takes and it is held only for the count
 * and the COMMIT, so it closes no cycle of waits (no deadlock). Transactions that
 * keep nothing (resumes, drops, duplicates) never take it.
 */
const INBOX_TOTAL_LOCK = 7_415_263_002;
const MOVED_MARK = 'taskflow:inbox_total_moved';

/**
 * How many events the inbox may hold once `decision` commits, by the count its
 * plan was given (`Loaded.inbox`): a plan keeps only below the cap, so this is at
 * most the cap. Undefined when the decision keeps no event.
 */
export function inboxBound(loaded: Loaded, decision: Decision<unknown>): number | undefined {
  if (!decision.keepEvent || !loaded.inbox) return undefined;
  return loaded.inbox.total + 1 - (decision.consumeKeptEvent === undefined ? 0 : 1);
}

/** The statements a transaction whose last keeping plan gave `bound` sends just before its COMMIT. */
export function inboxTotalCheck(bound: number): Statement[] {
  return [
    { text: `SELECT pg_advisory_xact_lock(${INBOX_TOTAL_LOCK})`, prepare: true },
    // The refusal depends on the count, so the planner cannot fold it into an error up front.
    { text: `SELECT CASE WHEN n <= $1::int8 THEN 0 ELSE CAST('${MOVED_MARK}:' || n AS int) END FROM (SELECT count(*) AS n FROM event_inbox) AS inbox`, values: [bound], prepare: true },
  ];
}

/** Whether `error` (or its cause) is the check's refusal: another transaction kept events meanwhile; run this one again. */
export function inboxTotalMoved(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e.message.includes(MOVED_MARK)) return true;
  }
  return false;
}

import { readFileSync, existsSync } from 'node:fs';
import type { FlowEvent, Taskflow } from '../../src/index.js';
import type { Step } from './script.js';

/** One line of the agent's ledger: a resume as its handler received it. */
export interface LedgerEntry {
  flowId: string;
  reason: string;
  at: number;
  pid: number;
}

/** What the invariant check found; every count but `resumes`, `redelivered` and `finished` must be 0. */
export interface InvariantReport {
  flows: number;
  finished: number;
  /** Flows the orchestrator created that the database no longer has. */
  lost: number;
  /** Flows whose audit trail is not the legal sequence for their script, or whose revision disagrees with it. */
  illegal: number;
  /** Resumes recorded in the audit trail that no handler ever received. */
  undelivered: number;
  /** Resumes in the audit trail. */
  resumes: number;
  /** Handler calls beyond the first for one resume (at-least-once at work). */
  redelivered: number;
  /** What went wrong, a line per problem (at most a few per kind). */
  problems: string[];
}

export function readLedger(path: string): LedgerEntry[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LedgerEntry];
      } catch {
        return []; // a line cut short by SIGKILL: its resume is delivered again
      }
    });
}

const REASON_OF: Record<Step, string> = { timer: 'timer', event: 'event', signal: 'signal', timeout: 'timeout' };

/** The only audit trail a torture flow may have once finished. */
function expectedKinds(steps: number): FlowEvent['kind'][] {
  return ['created', 'started', ...Array.from({ length: steps }, () => ['waiting', 'resumed'] as const).flat(), 'finished'];
}

/**
 * Checks the invariants over every flow the orchestrator created: none lost, each
 * audit trail legal and in step with its revision, each resume received by a handler.
 */
export async function checkInvariants(tf: Taskflow, ids: readonly string[], ledgerPath: string): Promise<InvariantReport> {
  const report: InvariantReport = { flows: ids.length, finished: 0, lost: 0, illegal: 0, undelivered: 0, resumes: 0, redelivered: 0, problems: [] };
  const note = (line: string) => {
    if (report.problems.length < 20) report.problems.push(line);
  };
  const received = new Map<string, number>();
  for (const entry of readLedger(ledgerPath)) {
    const key = `${entry.flowId}|${entry.reason}|${entry.at}`;
    received.set(key, (received.get(key) ?? 0) + 1);
  }
  for (const id of ids) {
    const flow = await tf.manager.get(id);
    if (!flow) {
      report.lost++;
      note(`lost: flow ${id} is gone`);
      continue;
    }
    if (flow.status === 'finished') report.finished++;
    const events = await tf.manager.listEvents(id);
    if (events.length !== flow.revision + 1) {
      report.illegal++;
      note(`illegal: flow ${id} has revision ${flow.revision} but ${events.length} audit events`);
      continue;
    }
    const script = flow.state.script as Step[];
    const expected = expectedKinds(script.length);
    const kinds = events.map((e) => e.kind);
    // An unfinished flow must be a prefix of the legal trail.
    if (kinds.some((kind, i) => kind !== expected[i]) || (flow.status === 'finished' && kinds.length !== expected.length)) {
      report.illegal++;
      note(`illegal: flow ${id} trail ${kinds.join(',')}`);
      continue;
    }
    const resumed = events.filter((e) => e.kind === 'resumed');
    resumed.forEach((event, step) => {
      report.resumes++;
      const reason = String(event.payload.reason);
      if (reason !== REASON_OF[script[step]!]) {
        report.illegal++;
        note(`illegal: flow ${id} step ${step} (${script[step]}) resumed by ${reason}`);
      }
      const times = received.get(`${id}|${reason}|${new Date(String(event.payload.at)).getTime()}`) ?? 0;
      if (times === 0) {
        report.undelivered++;
        note(`undelivered: flow ${id} step ${step} resumed by ${reason} reached no handler`);
      } else report.redelivered += times - 1;
    });
  }
  return report;
}

import type Database from 'better-sqlite3';
import { FlowError } from '../../errors.js';
import type { ClaimedNotification, Decision, Loaded, LoadRequest } from '../contract.js';
import { sqliteCode } from './errors.js';
import type { SqliteStatements } from './statements.js';
import type { Claim, Connection } from './store.js';

/** One caller's part of a group commit: a `commit`/`commitClaiming` (one load) or a `commitBatch` (several). */
export interface GroupUnit {
  loads: readonly LoadRequest[];
  /** Wakes this unit's plans queue are claimed until `leaseUntil`, at most `limit` for the unit. */
  claim?: { leaseUntil: number; limit?: number };
}

/**
 * Makes the plan of item `item` of unit `unit` from what it loaded, elsewhere (the
 * main thread). Resolves to its decision, or to undefined when the plan threw: the
 * error stays with the caller, who has it already.
 */
export type GroupPlan = (unit: number, item: number, loaded: Loaded) => Promise<Decision<unknown> | undefined>;

/** What became of one item: written (with the notifications it claimed), or rolled back to its savepoint. */
export type ItemOutcome = { ok: true; claimed: ClaimedNotification[] } | { ok: false; error?: unknown };

/** The plan of an item threw; the caller holds its error. */
const PLAN_FAILED = Symbol('plan failed');

/**
 * The commits of several callers in one `BEGIN IMMEDIATE` transaction, so one
 * fsync makes them all durable. Items run in order, each in a savepoint of its
 * own, and each loads after the items before it wrote, so its plan sees their
 * writes. A plan that throws, or a write refused (a revision mismatch, a
 * constraint), rolls back only its item. Any other failure (the disk, a lock, a
 * transaction SQLite rolled back whole) rolls everything back and rejects: no
 * caller's write was made. `load` and `apply` are the store's own.
 */
export async function commitGroupOn(
  c: Connection,
  units: readonly GroupUnit[],
  plan: GroupPlan,
  load: (q: SqliteStatements, request: LoadRequest) => Loaded,
  apply: (q: SqliteStatements, decision: Decision<unknown>, claim: Claim | undefined, load: LoadRequest) => void,
): Promise<ItemOutcome[][]> {
  const sql = transactionStatements(c);
  // A lone item needs no savepoint: its failure rolls back the transaction, which holds nothing else.
  const lone = units.length === 1 && units[0]!.loads.length === 1;
  sql.begin.run();
  try {
    const outcomes: ItemOutcome[][] = [];
    for (const [u, unit] of units.entries()) {
      const claiming = freshClaim(unit.claim);
      const unitOutcomes: ItemOutcome[] = [];
      for (const [i, request] of unit.loads.entries()) {
        const before = claiming?.claimed.length ?? 0;
        if (!lone) sql.savepoint.run();
        try {
          const decision = await plan(u, i, load(c.q, request));
          if (decision === undefined) throw PLAN_FAILED;
          apply(c.q, decision, claiming, request);
        } catch (error) {
          if (!c.sqlite.inTransaction || !refusesOnlyItsItem(error)) throw error;
          if (lone) sql.rollback.run();
          else {
            sql.rollbackToSavepoint.run();
            sql.release.run();
          }
          if (claiming) claiming.claimed.length = before;
          unitOutcomes.push(error === PLAN_FAILED ? { ok: false } : { ok: false, error });
          continue;
        }
        if (!lone) sql.release.run();
        unitOutcomes.push({ ok: true, claimed: claiming ? claiming.claimed.slice(before) : [] });
      }
      outcomes.push(unitOutcomes);
    }
    if (c.sqlite.inTransaction) sql.commit.run();
    return outcomes;
  } catch (error) {
    try {
      if (c.sqlite.inTransaction) c.sqlite.exec('ROLLBACK');
    } catch {
      // The first failure is the one to report; SQLite rolls back on close anyway.
    }
    throw error;
  }
}

/** The transaction and savepoint statements of a connection. */
export interface TransactionStatements {
  begin: Database.Statement;
  commit: Database.Statement;
  rollback: Database.Statement;
  savepoint: Database.Statement;
  rollbackToSavepoint: Database.Statement;
  release: Database.Statement;
}

/** The transaction statements, prepared once per connection. */
const prepared = new WeakMap<Connection, TransactionStatements>();

function prepareTransactionStatements(c: Connection): TransactionStatements {
  return {
    begin: c.sqlite.prepare('BEGIN IMMEDIATE'),
    commit: c.sqlite.prepare('COMMIT'),
    rollback: c.sqlite.prepare('ROLLBACK'),
    savepoint: c.sqlite.prepare('SAVEPOINT taskflow_group_item'),
    rollbackToSavepoint: c.sqlite.prepare('ROLLBACK TO taskflow_group_item'),
    release: c.sqlite.prepare('RELEASE taskflow_group_item'),
  };
}

/** The transaction and savepoint statements of a connection, prepared once. */
export function transactionStatements(c: Connection): TransactionStatements {
  let statements = prepared.get(c);
  if (!statements) {
    statements = prepareTransactionStatements(c);
    prepared.set(c, statements);
  }
  return statements;
}

/** A plan's throw, a refused decision (`FlowError`) or a constraint: the item's own fault, not the transaction's. */
export function refusesOnlyItsItem(error: unknown): boolean {
  if (error === PLAN_FAILED || FlowError.isInstance(error)) return true;
  const code = sqliteCode(error);
  return code === undefined || code.startsWith('SQLITE_CONSTRAINT');
}

/**
 * Where one try of a commit puts the wakes it claims: fresh per try, since a try
 * that found the file locked claimed nothing. Undefined when nothing is claimed.
 */
export function freshClaim(claim: { leaseUntil: number; limit?: number } | undefined): Claim | undefined {
  return claim ? { leaseUntil: claim.leaseUntil, claimed: [], limit: claim.limit ?? Infinity } : undefined;
}

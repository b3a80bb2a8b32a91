import type Database from 'better-sqlite3';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { SqliteStatements } from './statements.js';

/** One better-sqlite3 connection with everything prepared on it. */
export interface Connection {
  readonly sqlite: Database.Database;
  readonly db: BetterSQLite3Database;
  readonly q: SqliteStatements;
  /** One wrapped transaction runner, reused: `db.transaction()` per call costs measurable time. */
  readonly inTransaction: Database.Transaction<(work: () => unknown) => unknown>;
  readonly dataVersion: Database.Statement<[], number>;
}

import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { FlowError } from '../../errors.js';
import { sqliteCode } from './errors.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../../../drizzle/sqlite', import.meta.url));

/** The `created_at` of the newest applied migration, or undefined when there is none (or no flows table). */
export function lastMigration(sqlite: Database.Database): number | undefined {
  const tables = sqlite
    .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('flows', '__drizzle_migrations')")
    .get() as { n: number };
  if (tables.n < 2) return undefined;
  const row = sqlite.prepare('SELECT max(created_at) AS last FROM __drizzle_migrations').get() as { last: number | null };
  return row.last ?? undefined;
}

/** Two processes may open a new file at once: the loser of the race sees the winner's tables. */
export function migrateSafely(db: BetterSQLite3Database, path: string): void {
  for (let attempt = 0; ; attempt++) {
    try {
      migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
      return;
    } catch (error) {
      const code = sqliteCode(error);
      // A file that cannot be read or written says so in its own words (see storageError).
      if (code !== undefined && code !== 'SQLITE_ERROR' && code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw error;
      if (attempt >= 5) {
        throw new FlowError(
          'storage',
          `cannot prepare ${path} for taskflow: its migration failed (${(error as Error).message}). ` +
            'Is it another application\'s database? Point TASKFLOW_DB_PATH (the `database` option) at another file.',
          { cause: error },
        );
      }
    }
  }
}

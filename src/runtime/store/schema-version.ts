import { readMigrationFiles } from 'drizzle-orm/migrator';
import { FlowError } from '../errors.js';

/**
 * Checks, without writing, that a database already holds this version's schema:
 * for stores opened with `migrate: false` (the operator CLI), which must neither
 * create tables in a database that has none nor upgrade one an application owns.
 *
 * `lastApplied` is the `created_at` of the newest row of drizzle's migrations
 * table (undefined when the table is missing or empty); the migrations folder
 * says which one this version expects.
 */
export function assertSchemaCurrent(migrationsFolder: string, lastApplied: number | undefined, where: string): void {
  if (lastApplied === undefined) {
    throw new FlowError('storage', `${where} is not a taskflow database (it has no taskflow tables)`);
  }
  const expected = Math.max(...readMigrationFiles({ migrationsFolder }).map((m) => m.folderMillis));
  if (lastApplied < expected) {
    throw new FlowError(
      'storage',
      `${where} has an older taskflow schema than this version expects: open it once with the application (which migrates), then retry`,
    );
  }
}

import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate as migrateWith } from 'drizzle-orm/node-postgres/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type pg from 'pg';
import { assertSchemaCurrent } from '../schema-version.js';
import { MAINTENANCE_TIMEOUT_MS, type PgConnection } from './connection.js';

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../../../drizzle/pg', import.meta.url));
const MIGRATION_LOCK = 7_415_263_001;

/** Applies the migrations this version needs; several processes starting at once take turns. */
export async function migrate(c: PgConnection): Promise<void> {
  await c.run(
    'migrate',
    async (_db, client) => {
      // Already current (the common restart): two reads, no lock, no migrator.
      const last = await lastAppliedMigration(client);
      if (last !== undefined && last >= newestMigration()) return;
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        await migrateWith(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      }
    },
    { timeout: Math.max(MAINTENANCE_TIMEOUT_MS, c.timeouts.queryTimeout) },
  );
}

/** Checks, writing nothing, that the database already holds this version's schema (`migrate: false`). */
export async function assertMigrated(c: PgConnection): Promise<void> {
  const last = await c.run('assertMigrated', async (_db, client) => lastAppliedMigration(client));
  assertSchemaCurrent(MIGRATIONS_FOLDER, last, 'this PostgreSQL database');
}

/** The `created_at` of the newest applied migration; undefined when the database has no taskflow tables. */
async function lastAppliedMigration(client: pg.PoolClient): Promise<number | undefined> {
  const { rows } = await client.query<{ ok: boolean }>(
    "SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AND to_regclass('flows') IS NOT NULL AS ok",
  );
  if (!rows[0]?.ok) return undefined;
  const applied = await client.query<{ last: string | null }>('SELECT max(created_at)::text AS last FROM drizzle.__drizzle_migrations');
  const last = applied.rows[0]?.last;
  return last === null || last === undefined ? undefined : Number(last);
}

let newest: number | undefined;
/** The `folderMillis` of this version's newest migration (read once per process). */
function newestMigration(): number {
  newest ??= Math.max(...readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER }).map((m) => m.folderMillis));
  return newest;
}

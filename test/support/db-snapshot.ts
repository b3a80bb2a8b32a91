import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { isPostgresUrl } from '../../src/runtime/taskflow.js';

/**
 * Every row of every table of a database (a SQLite file or a PostgreSQL URL), as
 * one comparable value: two equal snapshots mean nothing was written in between.
 */
export async function snapshotDatabase(database: string): Promise<Record<string, unknown[]>> {
  if (isPostgresUrl(database)) {
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    try {
      const tables = await client.query<{ schema: string; name: string }>(
        "SELECT table_schema AS schema, table_name AS name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
      );
      const dump: Record<string, unknown[]> = {};
      for (const { schema, name } of tables.rows) {
        const rows = await client.query(`SELECT * FROM "${schema}"."${name}"`);
        dump[`${schema}.${name}`] = rows.rows.map((row) => JSON.stringify(row)).sort();
      }
      return dump;
    } finally {
      await client.end();
    }
  }
  if (!existsSync(database)) return {};
  const db = new Database(database, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1").all() as { name: string }[];
    const dump: Record<string, unknown[]> = {};
    for (const { name } of tables) {
      dump[name] = (db.prepare(`SELECT * FROM "${name}"`).all() as unknown[]).map((row) => JSON.stringify(row)).sort();
    }
    return dump;
  } finally {
    db.close();
  }
}

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach } from 'vitest';

/** The shared PostgreSQL server of the machine; each test gets a database of its own on it. */
export const PG_ADMIN_URL = process.env.TASKFLOW_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const created: string[] = [];

afterEach(async () => {
  const names = created.splice(0);
  if (names.length === 0) return;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    for (const name of names) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
});

/** Creates an empty database for this test and returns its URL; it is dropped after the test. */
export async function tempPgDatabase(): Promise<string> {
  const name = `taskflow_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  created.push(name);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

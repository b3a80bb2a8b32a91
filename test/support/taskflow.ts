import { ManualClock, openTaskflow, type Taskflow, type TaskflowOptions } from '../../src/index.js';
import { tempDbPath } from './temp-db.js';
import { tempPgDatabase } from './pg-database.js';

/** Which store the contract suites run on: `sqlite` (default) or `postgres` (vitest project "postgres"). */
export const dialect: 'sqlite' | 'postgres' = process.env.TASKFLOW_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';
import { afterEach } from 'vitest';

const open: Taskflow[] = [];

afterEach(async () => {
  for (const tf of open.splice(0)) await tf.close();
});

export const T0 = Date.parse('2026-01-01T00:00:00.000Z');

/**
 * A runtime on a fresh database (a SQLite file, or a PostgreSQL database under the
 * postgres project) with a manual clock at T0, closed after the test. `path` reopens it.
 */
export async function openTestTaskflow(options: TaskflowOptions = {}): Promise<Taskflow & { clock: ManualClock; path: string }> {
  // A real clock may be passed for tests that measure host timers; they do not move it.
  const clock = (options.clock ?? new ManualClock(T0)) as ManualClock;
  const path = options.database ?? (await tempDatabase());
  const tf = await openTaskflow({ ...options, database: path, clock });
  open.push(tf);
  return Object.assign(tf, { clock, path });
}

export const newFlow = {
  controllerId: 'kate/inbox-triage',
  goal: 'ship order 42 once invoice INV-42 is paid',
  ownerSessionKey: 'agent:kate:session:1',
};

/** A fresh, empty database for the current dialect: a SQLite file path or a PostgreSQL URL. */
export async function tempDatabase(): Promise<string> {
  return dialect === 'postgres' ? tempPgDatabase() : tempDbPath();
}

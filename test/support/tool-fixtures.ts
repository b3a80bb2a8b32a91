import Database from 'better-sqlite3';
import { createTaskflowTool, type TaskflowBinding, type TaskflowToolResult, type WireFlow } from '../../src/index.js';
import { openTestTaskflow } from './taskflow.js';

export const OWNER = 'agent:kate:session:1';
export const OTHER_OWNER = 'agent:bob:session:9';

export const startInput = {
  action: 'start',
  controller_id: 'kate/shipping',
  goal: 'ship order 42 once invoice INV-42 is paid',
} as const;

/** A runtime on a fresh SQLite file with a manual clock at T0, and a tool bound to {@link OWNER}. */
export async function openToolFixture(binding: Partial<TaskflowBinding> = {}) {
  const tf = await openTestTaskflow({ synchronous: 'normal' });
  const tool = createTaskflowTool(tf, { owner: OWNER, ...binding });
  return { tf, tool };
}

/** The flow of a successful one-flow answer; fails the test on anything else. */
export function flowOf(result: TaskflowToolResult): WireFlow {
  if (!result.ok || !('flow' in result)) throw new Error(`expected a flow, got ${JSON.stringify(result)}`);
  return result.flow;
}

/** Every row of every table of a SQLite file, read through a second connection. */
export function snapshotDatabase(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    return Object.fromEntries(tables.map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all()]));
  } finally {
    db.close();
  }
}

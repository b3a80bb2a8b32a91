import { FlowError } from '../../errors.js';
import type { PostgresStoreOptions } from './options.js';
import type { FlowStore } from '../contract.js';

/** What a user without the optional `pg` package is told. */
export const PG_MISSING_MESSAGE = 'a postgres:// database needs the pg package, an optional peer dependency: npm install pg';

function isMissingPg(error: unknown): boolean {
  const failure = error as { code?: unknown; message?: unknown };
  return failure.code === 'ERR_MODULE_NOT_FOUND' && typeof failure.message === 'string' && /['"]pg['"]/.test(failure.message);
}

/**
 * Opens a PostgreSQL store, loading `pg` only now, so SQLite users never need
 * it. Without the package: `FlowError('missing_dependency')` saying `npm install pg`.
 */
export async function openPostgres(options: PostgresStoreOptions): Promise<FlowStore> {
  let pgStore: typeof import('./open.js');
  try {
    pgStore = await import('./open.js');
  } catch (error) {
    if (isMissingPg(error)) throw new FlowError('missing_dependency', PG_MISSING_MESSAGE, { cause: error });
    throw error;
  }
  return pgStore.openPostgresStore(options);
}

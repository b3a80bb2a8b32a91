import { FlowError } from '../../errors.js';

/** The extended result code better-sqlite3 puts on its errors (`SQLITE_FULL`, `SQLITE_BUSY_SNAPSHOT`...). */
export function sqliteCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Another connection holds the lock this statement needs; nothing was done, so it may simply be retried. */
export function isSqliteBusy(error: unknown): boolean {
  return sqliteCode(error)?.startsWith('SQLITE_BUSY') === true;
}

/**
 * The connection itself cannot write: SQLite opened the file read-only, silently,
 * because it was read-only then. Only a new connection can write once that changes.
 */
export function needsNewConnection(error: unknown): boolean {
  return sqliteCode(error) === 'SQLITE_READONLY';
}

const TO_FIX_PATH = 'or point TASKFLOW_DB_PATH (the `database` option) at another file';

/**
 * A SQLite failure as a {@link FlowError} `storage` whose message names the file,
 * says what went wrong in words and what to do about it. A `FlowError` passes through.
 */
export function storageError(error: unknown, path: string): unknown {
  if (FlowError.isInstance(error)) return error;
  const code = sqliteCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  const cause = { cause: error };
  const file = path === ':memory:' ? 'the in-memory database' : path;
  // SQLITE_IOERR_WRITE belongs to SQLITE_IOERR, SQLITE_READONLY_DIRECTORY to SQLITE_READONLY...
  const family = code?.split('_').slice(0, 2).join('_');
  switch (family) {
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return new FlowError(
        'storage',
        `${file} is not a taskflow SQLite database, or it is damaged (${code}: ${detail}). ` +
          `Restore it from a backup, ${TO_FIX_PATH}.`,
        cause,
      );
    case 'SQLITE_FULL':
      return new FlowError(
        'storage',
        `cannot write ${file}: the disk is full (${code}: ${detail}). The call changed nothing; ` +
          'it works again once space is freed on that file system.',
        cause,
      );
    case 'SQLITE_READONLY':
      return new FlowError(
        'storage',
        `cannot write ${file}: the file, its folder or its file system is read-only (${code}: ${detail}). ` +
          `The call changed nothing; make them writable by this process (SQLite also writes ${file}-wal and ${file}-shm), ` +
          `${TO_FIX_PATH}.`,
        cause,
      );
    case 'SQLITE_CANTOPEN':
      return new FlowError(
        'storage',
        `cannot open ${file} (${code}: ${detail}). Check that its folder exists and that this process may read and write ` +
          `the file and its folder (SQLite creates ${file}-wal and ${file}-shm beside it), ${TO_FIX_PATH}.`,
        cause,
      );
    case 'SQLITE_IOERR':
      return new FlowError('storage', `I/O error on ${file} (${code}: ${detail}); check the disk and its file system.`, cause);
    default:
      return new FlowError('storage', `database error on ${file}${code ? ` (${code})` : ''}: ${detail}`, cause);
  }
}

/** The error of a call that waited `waitedMs` for another process's write lock in vain. */
export function lockedError(error: unknown, path: string, waitedMs: number): FlowError {
  return new FlowError(
    'storage',
    `database is locked by another process: ${path} stayed locked for ${waitedMs} ms (busyTimeout). The call changed nothing; ` +
      'retry later, find the process holding the lock (it may be stuck inside a transaction), or raise busyTimeout.',
    { cause: error },
  );
}

import { createRequire } from 'node:module';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

/**
 * Copies the write-ahead log back into the database file from a thread of its own.
 *
 * SQLite checkpoints a WAL database inside whichever COMMIT grows the log past
 * 1,000 pages: that commit copies the pages and fsyncs the file, a stall of
 * several milliseconds on the thread that made it. A runtime commit writes a
 * dozen pages or so (a flow, its indexes, its audit row), so that is every few
 * dozen commits, and on the main thread it is the host's event loop that stalls.
 * The main-thread store raises that threshold to {@link INLINE_SAFETY_FRAMES}
 * and registers its file here. One thread per process serves every registered file:
 * a few milliseconds after commits it runs a PASSIVE checkpoint (which never
 * blocks a writer) on a connection of its own, so the pages the store's own
 * checkpoint must copy are few. If the thread dies, every store registered is
 * told and goes back to SQLite's default threshold.
 */
export interface CheckpointRegistration {
  /** Stops checkpointing this file (the store closes; its own close checkpoints what is left). */
  release(): Promise<void>;
}

/** Registers a database file with the process's checkpoint thread, starting the thread if needed. */
export function checkpointInThread(
  file: { path: string; synchronous: 'full' | 'normal' },
  /** The thread ended on its own (it failed): the store must checkpoint again itself. */
  onLost: (error: Error) => void,
): CheckpointRegistration {
  const id = nextId++;
  const thread = (current ??= startThread());
  thread.files.set(id, onLost);
  thread.worker.postMessage({ t: 'add', id, path: file.path, synchronous: file.synchronous === 'normal' ? 'NORMAL' : 'FULL' } satisfies ToCheckpointer);
  return {
    async release() {
      if (!thread.files.delete(id)) return;
      if (thread.files.size > 0) {
        thread.worker.postMessage({ t: 'remove', id } satisfies ToCheckpointer);
        return;
      }
      if (current === thread) current = undefined;
      thread.retired = true;
      // The thread closes its connections first, so the store's close is the file's last and removes the log.
      const exited = once(thread.worker, 'exit');
      thread.worker.postMessage({ t: 'stop' } satisfies ToCheckpointer);
      const timeout = setTimeout(() => void thread.worker.terminate(), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timeout);
    },
  };
}

type ToCheckpointer = { t: 'add'; id: number; path: string; synchronous: 'FULL' | 'NORMAL' } | { t: 'remove'; id: number } | { t: 'stop' };

/** How long a stopping thread may take to close its connections before it is terminated. */
const STOP_TIMEOUT_MS = 1_000;

interface Thread {
  worker: Worker;
  /** The registered files' `onLost`, by registration id. */
  files: Map<number, (error: Error) => void>;
  /** Terminated on purpose (no file left): its exit is no loss. */
  retired: boolean;
}

let current: Thread | undefined;
let nextId = 1;

function startThread(): Thread {
  const worker = new Worker(CHECKPOINTER_SOURCE, {
    eval: true,
    workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), everyMs: EVERY_MS },
  });
  const thread: Thread = { worker, files: new Map(), retired: false };
  const lost = (error: Error) => {
    if (thread.retired) return;
    thread.retired = true;
    if (current === thread) current = undefined;
    for (const onLost of thread.files.values()) onLost(error);
    thread.files.clear();
  };
  worker.on('message', (message: { t: 'lost'; id: number; error: string }) => {
    const onLost = thread.files.get(message.id);
    thread.files.delete(message.id);
    onLost?.(new Error(`the SQLite checkpoint thread cannot open the file: ${message.error}`));
  });
  worker.on('error', lost);
  worker.on('exit', (code) => lost(new Error(`the SQLite checkpoint thread stopped (exit code ${code})`)));
  worker.unref(); // never keeps the host alive (after the listeners: adding a 'message' listener refs it again)
  return thread;
}

/** How often the thread looks for new commits in each file (`PRAGMA data_version`: microseconds a look). */
const EVERY_MS = 20;

/**
 * The main-thread store's own checkpoint threshold while this thread has its file
 * (16 MiB of log at 4 KiB pages). A PASSIVE checkpoint never catches up with a
 * writer that never pauses, and SQLite rewinds the log only once one has: past
 * this, the writer's own checkpoint finishes the job, copying only the pages
 * written since this thread's last pass, and the log rewinds.
 */
export const INLINE_SAFETY_FRAMES = 4_000;
/** SQLite's default threshold, for a store whose file this thread does not have. */
export const INLINE_DEFAULT_FRAMES = 1_000;

/** Plain JavaScript, evaluated in the worker: no loader or build step needed. */
const CHECKPOINTER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const files = new Map();
parentPort.on('message', (message) => {
  if (message.t === 'stop') {
    for (const file of files.values()) file.db.close();
    process.exit(0);
  }
  if (message.t === 'remove') {
    const file = files.get(message.id);
    files.delete(message.id);
    if (file) file.db.close();
    return;
  }
  try {
    const db = new Database(message.path, { fileMustExist: true });
    db.pragma('synchronous = ' + message.synchronous);
    const dataVersion = db.prepare('PRAGMA data_version').pluck();
    files.set(message.id, {
      db,
      dataVersion,
      passive: db.prepare('PRAGMA wal_checkpoint(PASSIVE)'),
      seen: dataVersion.get(),
    });
  } catch (error) {
    // A file this thread cannot open: its store checkpoints it itself.
    parentPort.postMessage({ t: 'lost', id: message.id, error: String(error && error.message || error) });
  }
});
setInterval(() => {
  for (const file of files.values()) {
    try {
      const now = file.dataVersion.get();
      if (now === file.seen) continue;
      file.passive.run();
      file.seen = now;
    } catch {
      // Busy or failing right now: the next look tries again.
    }
  }
}, workerData.everyMs);
`;

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
 * blocks a writer) on a connection of its own. A writer that never pauses keeps
 * such a checkpoint from ever finishing, and SQLite rewinds the log only once
 * one has: past {@link CATCH_UP_FRAMES} the thread asks the store to hold its
 * next transactions back (its callers wait, its event loop does not) while one
 * more pass copies the rest. If the thread dies, every store registered is told
 * and goes back to SQLite's default threshold.
 */
export interface CheckpointRegistration {
  /** Stops checkpointing this file (the store closes; its own close checkpoints what is left). */
  release(): Promise<void>;
}

/** What the thread asks of the store that registered a file. */
export interface CheckpointedStore {
  /** The thread ended on its own (it failed): the store must checkpoint again itself. */
  onLost(error: Error): void;
  /**
   * Holds the store's next transactions back (its callers wait; the event loop
   * does not) once the one under way is written; resolves to the function that
   * lets them go. Asked for when the log has grown past
   * {@link CATCH_UP_FRAMES}: with no writer, one checkpoint copies all of it and
   * the next commit rewinds the log.
   */
  pauseWrites(): Promise<() => void>;
}

/** Registers a database file with the process's checkpoint thread, starting the thread if needed. */
export function checkpointInThread(file: { path: string; synchronous: 'full' | 'normal' }, store: CheckpointedStore): CheckpointRegistration {
  const id = nextId++;
  const thread = (current ??= startThread());
  thread.files.set(id, store);
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

type ToCheckpointer =
  | { t: 'add'; id: number; path: string; synchronous: 'FULL' | 'NORMAL' }
  | { t: 'remove'; id: number }
  | { t: 'paused'; id: number }
  | { t: 'stop' };
type FromCheckpointer = { t: 'lost'; id: number; error: string } | { t: 'catch-up'; id: number } | { t: 'caught-up'; id: number };

/** The longest a store holds its writes back for a catch-up checkpoint, whatever the thread does. */
const MAX_PAUSE_MS = 250;

/** How long a stopping thread may take to close its connections before it is terminated. */
const STOP_TIMEOUT_MS = 1_000;

interface Thread {
  worker: Worker;
  /** The registered files' stores, by registration id. */
  files: Map<number, CheckpointedStore>;
  /** Stores holding their writes back for a catch-up checkpoint: the functions that let them go. */
  paused: Map<number, () => void>;
  /** Terminated on purpose (no file left): its exit is no loss. */
  retired: boolean;
}

let current: Thread | undefined;
let nextId = 1;

/** @internal The process's checkpoint thread while it runs (tests end it to check the stores' fallback). */
export function checkpointThread(): Worker | undefined {
  return current?.worker;
}

function startThread(): Thread {
  const worker = new Worker(CHECKPOINTER_SOURCE, {
    eval: true,
    workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), everyMs: EVERY_MS, catchUpFrames: CATCH_UP_FRAMES },
  });
  const thread: Thread = { worker, files: new Map(), paused: new Map(), retired: false };
  const letGo = (id: number) => {
    const resume = thread.paused.get(id);
    thread.paused.delete(id);
    resume?.();
  };
  const lost = (error: Error) => {
    if (thread.retired) return;
    thread.retired = true;
    if (current === thread) current = undefined;
    for (const id of [...thread.paused.keys()]) letGo(id);
    for (const store of thread.files.values()) store.onLost(error);
    thread.files.clear();
  };
  worker.on('message', (message: FromCheckpointer) => {
    const store = thread.files.get(message.id);
    if (message.t === 'caught-up') return letGo(message.id);
    if (message.t === 'lost') {
      thread.files.delete(message.id);
      return store?.onLost(new Error(`the SQLite checkpoint thread cannot open the file: ${message.error}`));
    }
    if (!store || thread.paused.has(message.id)) return;
    void store.pauseWrites().then((resume) => {
      if (thread.retired || !thread.files.has(message.id)) return resume();
      // Not unref'd: callers are waiting, and the thread's answer must find this process alive.
      const timeout = setTimeout(() => letGo(message.id), MAX_PAUSE_MS);
      thread.paused.set(message.id, () => {
        clearTimeout(timeout);
        resume();
      });
      thread.worker.postMessage({ t: 'paused', id: message.id } satisfies ToCheckpointer);
    });
  });
  worker.on('error', lost);
  worker.on('exit', (code) => lost(new Error(`the SQLite checkpoint thread stopped (exit code ${code})`)));
  worker.unref(); // never keeps the host alive (after the listeners: adding a 'message' listener refs it again)
  return thread;
}

/** How often the thread looks for new commits in each file (`PRAGMA data_version`: microseconds a look). */
const EVERY_MS = 20;

/**
 * Pages of log (16 MiB at 4 KiB pages) past which the thread asks the store to
 * hold its writes back for one checkpoint. A PASSIVE checkpoint never catches up
 * with a writer that never pauses, and SQLite rewinds the log only once one has.
 */
const CATCH_UP_FRAMES = 4_000;
/** The main-thread store's own checkpoint threshold while this thread has its file: a safety net (64 MiB of log). */
export const INLINE_SAFETY_FRAMES = 16_000;
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
  if (message.t === 'paused') {
    // The store holds its writes back: this pass copies the whole log, and the next commit rewinds it.
    const file = files.get(message.id);
    if (file) {
      try {
        file.passive.get();
      } catch {
        // Busy or failing: the store lets its writes go all the same.
      }
      file.catchingUp = false;
    }
    parentPort.postMessage({ t: 'caught-up', id: message.id });
    return;
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
      catchingUp: false,
    });
  } catch (error) {
    // A file this thread cannot open: its store checkpoints it itself.
    parentPort.postMessage({ t: 'lost', id: message.id, error: String(error && error.message || error) });
  }
});
setInterval(() => {
  for (const [id, file] of files) {
    if (file.catchingUp) continue;
    try {
      const now = file.dataVersion.get();
      if (now === file.seen) continue;
      const { log } = file.passive.get();
      file.seen = now;
      if (log > workerData.catchUpFrames) {
        file.catchingUp = true;
        parentPort.postMessage({ t: 'catch-up', id });
      }
    } catch {
      // Busy or failing right now: the next look tries again.
    }
  }
}, workerData.everyMs);
`;

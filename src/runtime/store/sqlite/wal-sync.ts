import { close, fdatasync, fsync, open } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { FlowError } from '../../errors.js';

const openFile = promisify(open);
const fsyncFile = promisify(fsync);
const fdatasyncFile = promisify(fdatasync);
const closeFile = promisify(close);

/**
 * Makes group commits durable (`synchronous: 'full'`) with the fsync on libuv's
 * thread pool instead of the host's thread.
 *
 * With `synchronous = FULL`, SQLite fsyncs the write-ahead log inside every
 * COMMIT, on the thread that commits: the host's event loop waits for the disk.
 * A lone commit keeps that (its caller waits for the disk either way, and a
 * trip to the thread pool would only add to it). A crowded group commit of the
 * main-thread store is made at `NORMAL` instead (the log is written, not synced)
 * and, before any of its callers is told, the log is fsynced here,
 * asynchronously. One fsync covers every commit written before it began, so
 * groups that finish while one is under way share the next, and the next
 * transaction runs while the disk works.
 *
 * What a caller is promised is unchanged: when its call resolves, its write is
 * on disk, as with FULL. The log is a single file written in order, so a later
 * commit made durable (by this process or another) makes every earlier one
 * durable too; SQLite's recovery keeps the longest run of whole commits it finds.
 * The difference: another connection may read a commit a fraction of a
 * millisecond before it is durable against a power cut (never against a crash
 * of this process: the operating system has it).
 *
 * A failed fsync fails every later durable wait of the store with `storage`:
 * after one, Linux may report later fsyncs as successful though pages were lost,
 * so nothing more is promised until the store is reopened.
 */
export class WalSync {
  private fd: Promise<number> | undefined;
  /** Commits counted by the store up to which the log is known to be on disk. */
  private synced = 0;
  private running: Promise<void> | undefined;
  private failed: FlowError | undefined;

  constructor(
    private readonly databasePath: string,
    /** How many commits the store has written so far (grows with every commit). */
    private readonly written: () => number,
    /** The fsync itself (a test may watch or fail it). */
    private readonly fsyncLog: (fd: number) => Promise<void> = fdatasyncFile,
  ) {}

  /** Commit number `commit` was made with SQLite's own fsync (FULL): it and every commit before it are on disk. */
  syncedThrough(commit: number): void {
    if (commit > this.synced) this.synced = commit;
  }

  /** Resolves once the log is on disk up to commit number `commit` (at least); undefined when it already is. */
  covering(commit: number): Promise<void> | undefined {
    return this.synced >= commit ? undefined : this.waitFor(commit);
  }

  private async waitFor(commit: number): Promise<void> {
    while (this.synced < commit) {
      if (this.failed) throw this.failed;
      this.running ??= this.syncNow().finally(() => (this.running = undefined));
      await this.running;
    }
  }

  private async syncNow(): Promise<void> {
    const upTo = this.written();
    try {
      await this.fsyncLog(await this.logFile());
      this.synced = Math.max(this.synced, upTo);
    } catch (error) {
      this.failed ??= new FlowError(
        'storage',
        `cannot make ${this.databasePath} durable: the fsync of its write-ahead log failed (${(error as Error).message}). ` +
          'Writes since the last successful one may be lost on a power cut; reopen the store once the disk is healthy.',
        { cause: error },
      );
      throw this.failed;
    }
  }

  /** The log's file, opened once; its folder is synced then too, so the log's own entry survives a power cut. */
  private logFile(): Promise<number> {
    this.fd ??= (async () => {
      const folder = await openFile(dirname(this.databasePath), 'r');
      try {
        await fsyncFile(folder);
      } finally {
        await closeFile(folder);
      }
      return openFile(`${this.databasePath}-wal`, 'r');
    })();
    return this.fd;
  }

  /** Closes the log's file (after the last durable wait). */
  async close(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd) await closeFile(await fd).catch(() => undefined);
  }
}

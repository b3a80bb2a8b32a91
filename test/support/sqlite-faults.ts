import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

/**
 * Real storage faults for the SQLite store: a read-only file or folder, a small
 * disk that fills up, a write lock held by another process. Every fault is undone
 * after the test.
 */

const isRoot = process.getuid?.() === 0;
const undo: Array<() => void> = [];
const holders: ChildProcess[] = [];

afterEach(() => {
  for (const step of undo.splice(0).reverse()) {
    try {
      step();
    } catch {
      // best effort: the next step may still clean up
    }
  }
  for (const child of holders.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/**
 * Makes a file or folder read-only for this process. As root, permission bits do
 * not stop a write, so the immutable attribute (`chattr +i`) does; otherwise `chmod`.
 * Returns the undo, also run after the test.
 */
export function makeReadOnly(path: string, kind: 'file' | 'folder'): () => void {
  if (isRoot) execFileSync('chattr', ['+i', path]);
  else chmodSync(path, kind === 'file' ? 0o444 : 0o555);
  let undone = false;
  const restore = () => {
    if (undone) return;
    undone = true;
    if (isRoot) execFileSync('chattr', ['-i', path]);
    else chmodSync(path, kind === 'file' ? 0o644 : 0o755);
  };
  undo.push(restore);
  return restore;
}

/**
 * A real, small file system (tmpfs of `sizeKiB`) mounted on a fresh folder, when
 * this machine lets the tests mount one (root in a sandbox that allows it);
 * undefined otherwise. Unmounted after the test.
 */
export function smallDisk(sizeKiB: number): { dir: string } | undefined {
  if (!isRoot) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  undo.push(() => rmSync(dir, { recursive: true, force: true }));
  undo.push(() => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }));
  return { dir };
}

/** Whether {@link smallDisk} can mount here (probed once). */
export const canMountSmallDisk: boolean = (() => {
  if (!isRoot) return false;
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

/** Fills the file system holding `dir` with one file, until it is full; returns that file to delete. */
export function fillDisk(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const filler = join(dir, 'filler');
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4096'], { stdio: 'ignore' });
  } catch {
    // dd stops with "No space left on device": that is the point
  }
  return filler;
}

const LOCK_HOLDER = fileURLToPath(new URL('./sqlite-lock-holder.ts', import.meta.url));

/** Another process holding the SQLite write lock on `path` (`BEGIN IMMEDIATE`) until `release()`. */
export interface LockHolder {
  /** Resolves once the other process holds the lock. */
  locked: Promise<void>;
  /** Makes the other process commit (one row into `seen_events`) and exit; resolves once it has. */
  release(): Promise<void>;
}

export function holdWriteLock(path: string): LockHolder {
  const child = spawn(process.execPath, ['--import', 'tsx', LOCK_HOLDER, path], { stdio: ['pipe', 'pipe', 'pipe'] });
  holders.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('locked\n')) resolve();
    });
    void exited.then((code) => reject(new Error(`the lock holder exited (${code}) before locking: ${err}`)));
  });
  return {
    locked,
    async release() {
      child.stdin!.end('release\n');
      const code = await exited;
      if (code !== 0) throw new Error(`the lock holder failed (${code}): ${err}`);
    },
  };
}

/**
 * The event loop's worst lateness while it runs: a 1 ms interval timer notes
 * how much later than due each tick came. `stop()` returns the worst, in ms.
 */
export function watchEventLoop(): { stop(): number } {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  return {
    stop() {
      clearInterval(timer);
      return worst;
    },
  };
}

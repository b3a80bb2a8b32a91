import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsServer } from '../support/nats-server.js';
import type { Fault } from './orchestrator.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = (random: () => number, min: number, max: number) => min + Math.floor(random() * (max - min));

/** Counts the episodes of a fault. */
function fault(name: string, episode: (random: () => number) => Promise<void>, dispose: () => Promise<void> = async () => {}): Fault {
  let count = 0;
  return {
    name,
    get count() {
      return count;
    },
    async inject(random) {
      count++;
      await episode(random);
    },
    dispose,
  };
}

/**
 * Another process takes the SQLite write lock (`BEGIN IMMEDIATE`) and holds it
 * for a while, as a backup tool or a second runtime in a long transaction would.
 */
export function lockHolder(path: string, holdMs: [number, number] = [300, 1_500]): Fault {
  const script = `
    import Database from 'better-sqlite3';
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));
  `;
  return fault('sqlite lock held by another process', async (random) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, path, String(between(random, ...holdMs))], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: process.cwd(),
    });
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  });
}

/** The NATS server dies (SIGKILL by PID) and comes back on the same port with the same store. */
export function natsCrash(server: NatsServer, downMs: [number, number] = [200, 1_500]): Fault {
  return fault('nats-server killed and restarted', async (random) => {
    await server.kill();
    await sleep(between(random, ...downMs));
    await server.restart();
  });
}

/** Anything that stops and starts a database server. */
export interface RestartableServer {
  /** Stops at once, as a crash would (`pg_ctl stop -m immediate`). */
  crash(): Promise<void>;
  start(): Promise<void>;
}

/** The PostgreSQL server stops at once (no checkpoint, connections cut) and starts again. */
export function postgresCrash(server: RestartableServer, downMs: [number, number] = [200, 1_500]): Fault {
  return fault('postgres stopped (immediate) and restarted', async (random) => {
    await server.crash();
    await sleep(between(random, ...downMs));
    await server.start();
  });
}

/** A small file system of its own for the database, or undefined where this machine cannot mount one. */
export function mountSmallDisk(folder: string, megabytes: number): { path: string; unmount(): void } | undefined {
  mkdirSync(folder, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', folder], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return {
    path: folder,
    unmount() {
      execFileSync('umount', ['-l', folder], { stdio: 'ignore' });
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** Fills the disk until the writes fail with ENOSPC, keeps it full for a while, then frees it. */
export function diskFull(folder: string, fullMs: [number, number] = [300, 1_500]): Fault {
  return fault('disk filled up, then freed', async (random) => {
    const filler = join(folder, 'filler');
    const fd = openSync(filler, 'w');
    const block = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) writeSync(fd, block);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      closeSync(fd);
    }
    await sleep(between(random, ...fullMs));
    rmSync(filler, { force: true });
  });
}

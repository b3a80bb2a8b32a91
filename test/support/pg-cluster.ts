import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './nats-server.js';

/** How a cluster is stopped: `pg_ctl stop -m <mode>`. `immediate` is a crash as far as clients can tell. */
export type PgStopMode = 'smart' | 'fast' | 'immediate';

/** A PostgreSQL cluster this process created in a temp folder, listening on 127.0.0.1 only, trust auth. */
export interface PgCluster {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly adminUrl: string;
  /** The postmaster's PID, or undefined while the cluster is stopped. */
  readonly pid: number | undefined;
  /** A URL for a new database on this cluster (created empty). */
  createDatabase(name?: string): Promise<string>;
  /** `pg_ctl stop -m <mode>` (default `immediate`) and wait until it is down. */
  stop(mode?: PgStopMode): Promise<void>;
  /** `pg_ctl start` on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGKILL the postmaster by PID (its backends notice and exit), then wait until they are gone. */
  kill(): Promise<void>;
  /** SIGSTOP the postmaster and every backend: connections stay open, nothing answers. */
  freeze(): void;
  /** SIGCONT what {@link freeze} stopped. */
  thaw(): void;
  /** Stops the cluster whatever its state and removes its folder. */
  dispose(): Promise<void>;
}

const PG_USER = 'postgres';
/** Clusters still running when this process exits (a runner killed mid-test) are stopped with it. */
const running = new Set<{ pids(): number[] }>();
process.once('exit', () => {
  for (const cluster of running) {
    for (const pid of cluster.pids()) {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

const asRoot = userInfo().uid === 0;

/** Runs a PostgreSQL tool, as the `postgres` user when this process is root (initdb refuses root). */
function run(tool: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const [file, argv] = asRoot ? ['runuser', ['-u', PG_USER, '--', tool, ...args]] : [tool, [...args]];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${tool} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The PIDs whose parent is `parent` (read from /proc). */
function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`PostgreSQL test cluster: ${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Creates a private cluster (`initdb` into a temp folder, trust auth, a free
 * port, 127.0.0.1 only, fsync off: a stop or kill of the server keeps every
 * commit, only an OS crash would not) and starts it. Dispose of it after the test.
 */
export async function startPgCluster(): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-pg-'));
  if (asRoot) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const port = await freePort();
  const adminUrl = `postgres://${PG_USER}@127.0.0.1:${port}/postgres`;
  await run('initdb', ['-D', data, '-U', PG_USER, '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
  let frozen: number[] = [];

  const postmasterPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const tree = (): number[] => {
    const pid = postmasterPid();
    return pid === undefined ? [] : [pid, ...childrenOf(pid)];
  };
  const handle = { pids: tree };
  running.add(handle);

  const accepts = async (): Promise<boolean> => {
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  const start = async (): Promise<void> => {
    const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off -c max_connections=100`;
    await run('pg_ctl', ['-D', data, '-l', log, '-o', options, '-w', '-t', '60', 'start'], 90_000);
    await waitFor(accepts, 'accepting connections');
  };

  const stop = async (mode: PgStopMode = 'immediate'): Promise<void> => {
    thaw();
    if (postmasterPid() === undefined) return;
    await run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'], 90_000);
  };

  const kill = async (): Promise<void> => {
    thaw();
    const pids = tree();
    const [postmaster] = pids;
    if (postmaster === undefined) return;
    process.kill(postmaster, 'SIGKILL');
    // Backends notice the postmaster is gone and exit; a new postmaster cannot start while they hold shared memory.
    await waitFor(() => pids.every((pid) => !alive(pid)), 'backends exiting after the postmaster was killed');
  };

  const freeze = (): void => {
    frozen = tree().filter((pid) => {
      try {
        process.kill(pid, 'SIGSTOP');
        return true;
      } catch {
        return false; // a backend that exited between listing and stopping
      }
    });
  };

  function thaw(): void {
    for (const pid of frozen.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // exited meanwhile
      }
    }
  }

  try {
    await start();
  } catch (error) {
    running.delete(handle);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    port,
    adminUrl,
    get pid() {
      return postmasterPid();
    },
    async createDatabase(name = `taskflow_${Math.random().toString(36).slice(2, 10)}`) {
      const admin = new pg.Client({ connectionString: adminUrl });
      admin.on('error', () => undefined);
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return `postgres://${PG_USER}@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    kill,
    freeze,
    thaw,
    async dispose() {
      thaw();
      try {
        await stop('immediate');
      } catch {
        await kill().catch(() => undefined);
      }
      running.delete(handle);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${PG_USER}:`));
  if (!line) throw new Error(`no ${PG_USER} user to run PostgreSQL as (initdb refuses root)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Finds the nats-server binary: `NATS_SERVER_BIN` when set, else `nats-server`
 * on the PATH, else `/usr/sbin/nats-server` (where Debian's package puts it,
 * outside a normal user's PATH). Undefined when there is none.
 */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.NATS_SERVER_BIN?.trim();
  if (explicit) return explicit;
  const onPath = (env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, 'nats-server'))
    .find(isExecutableFile);
  if (onPath) return onPath;
  return isExecutableFile('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : undefined;
}

/**
 * The nats-server binary the tests and the benchmark run (see {@link findNatsServer}).
 * Never the shared one on 4222: each test starts its own, on a free port.
 */
export const NATS_SERVER_BIN = findNatsServer() ?? 'nats-server';

/** Servers still running when this process exits (a runner killed mid-test) go with it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** A nats-server this process started on a free port, with its own JetStream store folder. */
export interface NatsServer {
  readonly port: number;
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** The JetStream store folder (kept across {@link restart}). */
  readonly storeDir: string;
  /** The PID of the running server process, or undefined while it is stopped. */
  readonly pid: number | undefined;
  /** SIGTERM by PID, then wait for it to exit. */
  stop(): Promise<void>;
  /** SIGKILL by PID (a crash), then wait for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same store; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Starts it after a stop or kill (no-op while it runs); same port, same store. */
  start(): Promise<void>;
  /** Stops it and removes its store folder. */
  dispose(): Promise<void>;
}

/** Options of {@link startNatsServer}. */
export interface StartNatsServerOptions {
  /** Enable JetStream (`-js`). Default true. */
  jetstream?: boolean;
  /**
   * A configuration file's text (authorization, TLS, permissions), written beside
   * the store and passed with `-c`; `{{storeDir}}` stands for the store folder.
   */
  config?: string;
  /** More command-line arguments (for example `--user a --pass b`, `--auth token`). */
  args?: string[];
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(200, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => done(true));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts `nats-server -a 127.0.0.1 -p <free port> -js -sd <temp folder>` and
 * resolves once it is ready (JetStream included). Stop it with {@link NatsServer.dispose}.
 */
export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<NatsServer> {
  const jetstream = options.jetstream ?? true;
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'taskflow-nats-'));
  let child: ChildProcess | undefined;

  const configArgs: string[] = [];
  if (options.config !== undefined) {
    const file = join(storeDir, 'nats-server.conf');
    writeFileSync(file, options.config.replaceAll('{{storeDir}}', storeDir));
    configArgs.push('-c', file);
  }

  const launch = async (): Promise<void> => {
    const args = ['-a', '127.0.0.1', '-p', String(port), ...configArgs, ...(jetstream ? ['-js', '-sd', storeDir] : []), ...(options.args ?? [])];
    const started = spawn(NATS_SERVER_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    running.add(started);
    started.once('exit', () => running.delete(started));
    let log = '';
    let ready = false;
    let spawnError: Error | undefined;
    started.once('error', (error) => (spawnError = error));
    started.stderr!.on('data', (chunk: Buffer) => {
      if (ready) return;
      log += chunk.toString();
      if (log.includes('Server is ready')) ready = true;
    });
    const deadline = Date.now() + 30_000; // generous: the machine may be busy
    while (!ready) {
      if (spawnError) throw new Error(`cannot run ${NATS_SERVER_BIN} (put nats-server on the PATH or set NATS_SERVER_BIN): ${spawnError.message}`);
      if (started.exitCode !== null) throw new Error(`nats-server exited with ${started.exitCode}: ${log}`);
      if (Date.now() > deadline) {
        started.kill('SIGKILL');
        throw new Error(`nats-server did not become ready on port ${port}: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    if (!(await canConnect(port))) throw new Error(`nats-server on port ${port} does not accept connections`);
  };

  const signal = async (name: NodeJS.Signals): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.pid === undefined) return;
    if (running.exitCode === null && running.signalCode === null) process.kill(running.pid, name);
    await exited(running);
  };

  await launch();
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    get pid() {
      return child?.pid;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      await launch();
    },
    async start() {
      if (child) return;
      await launch();
    },
    async dispose() {
      await signal('SIGTERM');
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

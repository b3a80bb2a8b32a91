import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

const WORKER = fileURLToPath(new URL('./process-worker.ts', import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

export interface Worker {
  child: ChildProcess;
  /** Resolves with the first stdout line that matches. */
  line(match: RegExp): Promise<string>;
  /** Resolves with all stdout once the process exits with code 0. */
  done(): Promise<string>;
}

/** Runs test/support/process-worker.ts in its own Node.js process. */
export function startWorker(...args: string[]): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    line(match) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = out.split('\n').find((l) => match.test(l));
          if (found !== undefined) return resolve(found);
          if (child.exitCode !== null) return reject(new Error(`worker exited: ${err}`));
          waiters.push(check);
        };
        void exited.then(() => check());
        check();
      });
    },
    async done() {
      const code = await exited;
      if (code !== 0) throw new Error(`worker exited with ${code}: ${err}`);
      return out;
    },
  };
}

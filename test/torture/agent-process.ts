import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const AGENT = fileURLToPath(new URL('./agent.ts', import.meta.url));

/** The agent process, killed and restarted by the orchestrator; it keeps what every run printed to stderr. */
export class AgentProcess {
  private child: ChildProcess | undefined;
  /** Every line the agent processes wrote to stderr, over all their lives. */
  readonly stderr: string[] = [];
  kills = 0;
  starts = 0;
  /** Exits the orchestrator did not cause (a crash of the runtime itself). */
  unexpectedExits = 0;

  constructor(private readonly args: string[]) {}

  /** Starts a new agent process and resolves once its engine runs. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', AGENT, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.starts++;
    let pending = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      this.stderr.push(...lines);
    });
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (signal !== 'SIGKILL' && signal !== 'SIGTERM' && code !== 0) {
        this.unexpectedExits++;
        this.stderr.push(`agent exited on its own: code ${code} signal ${signal}`);
      }
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('ready ')) {
          child.stdout!.off('data', onData);
          child.stdout!.resume();
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', () => reject(new Error(`agent died before it was ready:\n${this.stderr.slice(-20).join('\n')}`)));
    });
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** SIGKILL: the process dies wherever it is, mid-transaction or mid-handler. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.kills++;
    this.child = undefined;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM: `tf.close()`, then exit 0; resolves with the exit code (null when it had to be killed). */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    const child = this.child;
    if (!child) return 0;
    this.child = undefined;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** Lines that show an error escaped the runtime. */
  unhandledErrors(): string[] {
    return this.stderr.filter((line) => line.startsWith('UNHANDLED') || line.startsWith('agent exited on its own'));
  }
}

import { spawn } from 'node:child_process';
import { createHook } from 'node:async_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { ManualClock, openTaskflow, silentLogger, systemClock, type Flow, type FlowStore, type Logger, type Taskflow } from '../src/index.js';
import { sqlitePragma } from './support/sqlite-pragma.js';
import { tempPgDatabase } from './support/pg-database.js';
import { makeReadOnly } from './support/sqlite-faults.js';
import { newFlow, openTestTaskflow, T0 } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';
import { until } from './support/until.js';

/** A logger that keeps every line, by level. */
function capturingLogger(): Logger & { lines: Array<{ level: string; message: string; fields: object }> } {
  const lines: Array<{ level: string; message: string; fields: object }> = [];
  const at = (level: string) => (fields: object, message?: string) => void lines.push({ level, message: message ?? '', fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function timerFlow(tf: Taskflow, at: number): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, { kind: 'timer', at });
}

/** Counts host timers created in this process while `during` runs (every setTimeout and setInterval). */
async function timersCreated(during: () => Promise<void>): Promise<number> {
  let count = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'Timeout') count++;
    },
  });
  hook.enable();
  try {
    await during();
  } finally {
    hook.disable();
  }
  return count;
}

const aRealSecond = () => new Promise<void>((resolve) => setTimeout(resolve, 1_000));

describe('storage failures: the engine backs off and recovers (issue 9.3)', () => {
  it('logs one line when the database turns read-only and one when it recovers, retries with backoff, and resumes the due flow after', async () => {
    const logger = capturingLogger();
    const resumed: string[] = [];
    const tf = await openTestTaskflow({ clock: systemClock, logger, onResume: (flow) => void resumed.push(flow.id) });
    await tf.start();
    const flow = await timerFlow(tf, Date.now() + 100);
    // A real fault: the file turns read-only under the running engine; every write fails with SQLITE_READONLY.
    // In WAL mode writes land in the -wal file: both turn read-only.
    const restoreFile = makeReadOnly(tf.path, 'file');
    const restoreWal = makeReadOnly(`${tf.path}-wal`, 'file');
    const restore = () => {
      restoreWal();
      restoreFile();
    };
    const failingSince = Date.now();
    await until(() => logger.lines.some((l) => l.message.includes('storage failing')));
    // Let it fail for two seconds: a busy retry would try hundreds of times.
    await until(() => Date.now() - failingSince > 2_000);
    expect(resumed).toEqual([]);
    restore();
    const failedFor = Date.now() - failingSince;
    await until(() => resumed.length === 1, 40_000);
    expect(resumed).toEqual([flow.id]);
    // The recovering sweep logs once all its steps succeeded, which may be just after the resume it made.
    await until(() => logger.lines.some((l) => l.message.includes('storage recovered')));
    const messages = logger.lines.filter((l) => l.level !== 'debug').map((l) => l.message);
    expect(messages.filter((m) => m.includes('storage failing, backing off'))).toHaveLength(1);
    expect(messages.filter((m) => m.includes('storage recovered'))).toHaveLength(1);
    expect(messages).toHaveLength(2);
    // Retries double from 100 ms: at most log2(failedFor / 100) + 2 of them, not one per event-loop turn.
    const retries = logger.lines.filter((l) => l.level === 'debug' && l.message.includes('still failing; retrying')).length;
    expect(retries).toBeLessThanOrEqual(Math.ceil(Math.log2(failedFor / 100)) + 2);
    // Fully back: a new timer fires on its own.
    const later = await timerFlow(tf, Date.now() + 100);
    await until(() => resumed.length === 2);
    expect(resumed[1]).toBe(later.id);
  });

  it('starts even when the database refuses writes, and catches up once it accepts them', async () => {
    const path = tempDbPath();
    const first = await openTaskflow({ database: path, logger: silentLogger });
    const flow = await timerFlow(first, Date.now() - 1_000);
    await first.close();
    const logger = capturingLogger();
    const resumed: string[] = [];
    const tf = await openTaskflow({ database: path, logger, onResume: (f) => void resumed.push(f.id) });
    try {
      await sqlitePragma(tf.store, 'query_only = ON');
      await tf.start();
      expect(logger.lines.filter((l) => l.message.includes('storage failing'))).toHaveLength(1);
      await sqlitePragma(tf.store, 'query_only = OFF');
      await until(() => resumed.length === 1, 40_000);
      expect(resumed).toEqual([flow.id]);
    } finally {
      await tf.close();
    }
  });
});

describe('no busy loops (issue 9.14)', () => {
  it('an engine on a ManualClock does not re-arm its host timer in a loop', async () => {
    const clock = new ManualClock(T0);
    const tf = await openTestTaskflow({ clock, logger: silentLogger, tickInterval: '5s' });
    await timerFlow(tf, T0 + 1); // due 1 ms ahead of a clock that never moves by itself
    await tf.start();
    const created = await timersCreated(aRealSecond);
    // The timer waiting a second, and a few re-checks at growing intervals; before the fix, about one per millisecond.
    expect(created).toBeLessThan(20);
    clock.set(T0 + 1);
    expect((await tf.engine.tick()).resumed).toBe(1);
  });

  it('a PostgreSQL engine whose due rows are locked by another does not re-arm in a loop, and resumes them once released', async () => {
    const url = await tempPgDatabase();
    const resumed: string[] = [];
    const tf = await openTaskflow({ database: url, logger: silentLogger, onResume: (f) => void resumed.push(f.id) });
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      const flow = await timerFlow(tf, Date.now() - 1);
      // Another engine's transaction holds the due row: SKIP LOCKED returns nothing while it is due.
      await locker.query('BEGIN');
      await locker.query('SELECT id FROM flows WHERE id = $1 FOR UPDATE', [flow.id]);
      await tf.start();
      const created = await timersCreated(aRealSecond);
      expect(created).toBeLessThan(30);
      expect(resumed).toEqual([]);
      await locker.query('ROLLBACK');
      await until(() => resumed.length === 1, 20_000);
      expect(resumed).toEqual([flow.id]);
    } finally {
      await locker.end();
      await tf.close();
    }
  });
});

describe('work committed by another process or connection (issue 9.8, engine part)', () => {
  /** The real store, with the listener the engine registers kept, so the test can report a foreign commit itself. */
  function watchedStore(store: FlowStore) {
    const watch = { listener: undefined as (() => void) | undefined, unsubscribed: 0 };
    const proxy = new Proxy(store, {
      get(target, property) {
        if (property === 'watchForeignCommits') {
          return (listener: () => void) => {
            watch.listener = listener;
            const unsubscribe = target.watchForeignCommits(listener);
            return () => {
              watch.unsubscribed++;
              unsubscribe();
            };
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    return { proxy, watch };
  }

  it('subscribes on start, unsubscribes on stop, and on a foreign commit arms for a timer another handle set and delivers a resume it queued', async () => {
    const path = tempDbPath();
    const { openSqliteStore } = await import('../src/runtime/store/sqlite/open.js');
    const { proxy, watch } = watchedStore(openSqliteStore({ path }));
    const woke: Array<{ id: string; reason: string }> = [];
    // A one-hour sweep: nothing but the foreign-commit report can explain a prompt resume.
    const app = await openTaskflow({ store: proxy, tickInterval: '1h', logger: silentLogger, onResume: (f, w) => void woke.push({ id: f.id, reason: w.reason }) });
    const other = await openTaskflow({ database: path, logger: silentLogger });
    try {
      await app.start();
      expect(watch.listener).toBeTypeOf('function');
      const timer = await timerFlow(other, Date.now() + 200);
      watch.listener!();
      await until(() => woke.length === 1);
      expect(woke[0]).toEqual({ id: timer.id, reason: 'timer' });
      const manual = await other.manager.createManaged(newFlow);
      await other.manager.startRunning(manual.id);
      await other.manager.setWaiting(manual.id, { kind: 'manual' });
      await other.engine.signal(manual.id); // as `taskflow signal` does: queued for the app's engine
      watch.listener!();
      await until(() => woke.length === 2);
      expect(woke[1]).toEqual({ id: manual.id, reason: 'signal' });
      await app.engine.stop();
      expect(watch.unsubscribed).toBe(1);
    } finally {
      await other.close();
      await app.close();
    }
  });
});

describe('a started engine keeps its process alive (issue 9.7)', () => {
  it('a worker whose only job is start() stays up, fires its timers and later resumes, and exits by itself once closed', async () => {
    const path = tempDbPath();
    const worker = fileURLToPath(new URL('./support/engine-alive-worker.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', worker, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until(() => /started /.test(out) || child.exitCode !== null, 30_000);
      const flowId = /started (\S+)/.exec(out)?.[1];
      expect(flowId, err).toBeDefined();
      await until(() => out.includes(`resumed timer ${flowId}`) || child.exitCode !== null, 30_000);
      expect(out, `the worker exited early: ${err}`).toContain(`resumed timer ${flowId}`);
      // Nothing scheduled now but the sweep: a resume by another process still reaches it.
      const other = await openTaskflow({ database: path, logger: silentLogger });
      await other.manager.setWaiting(flowId!, { kind: 'manual' });
      await other.manager.resume(flowId!);
      await other.close();
      await until(() => out.includes(`resumed manual ${flowId}`) || child.exitCode !== null, 30_000);
      expect(out, `the worker exited early: ${err}`).toContain(`resumed manual ${flowId}`);
      expect(child.exitCode).toBeNull();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toContain('closed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('failures are heard by default (issue 9.6)', () => {
  it('without a logger, a failing onResume reaches stderr and other chatter does not', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const tf = await openTestTaskflow({
        onResume: () => {
          throw new Error('agent unavailable');
        },
      });
      await tf.start();
      const flow = await tf.manager.createManaged(newFlow);
      await tf.manager.startRunning(flow.id);
      await tf.manager.setWaiting(flow.id, { kind: 'manual' });
      await tf.manager.resume(flow.id);
      await until(() => written.some((line) => line.includes('onResume failed')));
      const ours = written.filter((line) => line.startsWith('taskflow '));
      expect(ours).toHaveLength(1);
      expect(ours[0]).toMatch(/^taskflow warn: onResume failed; will retry .*agent unavailable.*\n$/);
      expect(ours[0]).toContain(flow.id);
    } finally {
      spy.mockRestore();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { FlowError, type NatsBridgeState } from '../src/index.js';
import { silentLogger } from '../src/runtime/logger.js';
import { ConnectionLoop, connectRetryDelay, type ConnectionLoopOptions, type LoopConnection } from '../src/runtime/nats/connection-loop.js';
import { until } from './support/until.js';

type Status = { type: string; server?: string };

/** A connection the test drives: it reports statuses and closes when told. */
class FakeConnection implements LoopConnection {
  private statuses: Status[] = [];
  private waiting: ((status: IteratorResult<Status>) => void) | undefined;
  private ended = false;
  private endClosed!: (error: void | Error) => void;
  private readonly whenClosed = new Promise<void | Error>((resolve) => (this.endClosed = resolve));
  closeCalls = 0;

  /** The client reports a status (e.g. `disconnect`, then `reconnect`). */
  report(status: Status): void {
    if (this.waiting) {
      const wake = this.waiting;
      this.waiting = undefined;
      wake({ value: status, done: false });
    } else this.statuses.push(status);
  }

  /** The connection closes by itself (the client gave up), with `error`. */
  drop(error?: Error): void {
    this.finish(error);
  }

  status(): AsyncIterable<Status> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          const status = this.statuses.shift();
          if (status) return Promise.resolve({ value: status, done: false });
          if (this.ended) return Promise.resolve({ value: undefined, done: true });
          return new Promise<IteratorResult<Status>>((resolve) => (this.waiting = resolve));
        },
      }),
    };
  }

  closed(): Promise<void | Error> {
    return this.whenClosed;
  }

  async close(): Promise<void> {
    this.closeCalls++;
    this.finish(undefined);
  }

  isClosed(): boolean {
    return this.ended;
  }

  private finish(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endClosed(error);
    this.waiting?.({ value: undefined, done: true });
  }
}

/** A fake clock for the loop's pauses: each asked delay is recorded and lasts until the test moves on (or the loop closes). */
class FakeSleep {
  readonly delays: number[] = [];
  private pending: (() => void) | undefined;

  readonly sleep = (ms: number, signal: AbortSignal): Promise<void> => {
    this.delays.push(ms);
    return new Promise((resolve) => {
      const done = (): void => {
        this.pending = undefined;
        resolve();
      };
      this.pending = done;
      signal.addEventListener('abort', done, { once: true });
    });
  };

  get sleeping(): boolean {
    return this.pending !== undefined;
  }

  /** Ends the pause in progress. */
  elapse(): void {
    this.pending?.();
  }
}

/** A loop over a scripted connect: each call takes the next answer (a connection, or an error to reject with). */
function scriptedLoop(answers: Array<FakeConnection | Error>, overrides: Partial<ConnectionLoopOptions<FakeConnection>> = {}) {
  const clock = new FakeSleep();
  const states: NatsBridgeState[] = [];
  const calls = { connect: 0, setUp: [] as FakeConnection[], lost: 0, end: [] as Array<FakeConnection | undefined> };
  const loop = new ConnectionLoop<FakeConnection>({
    connect: async () => {
      calls.connect++;
      const answer = answers.shift();
      if (answer === undefined) return new Promise<FakeConnection>(() => undefined);
      if (answer instanceof Error) throw answer;
      return answer;
    },
    setUp: async (connection) => void calls.setUp.push(connection),
    lost: () => void calls.lost++,
    // As the bridge does: the connection's work ends, then the connection (a drain).
    end: async (connection) => {
      calls.end.push(connection);
      await connection?.close();
    },
    onState: (state) => void states.push(state),
    retry: { initialMs: 500, maxMs: 10_000 },
    logger: silentLogger,
    random: () => 1,
    sleep: clock.sleep,
    ...overrides,
  });
  return { loop, clock, states, calls };
}

describe('the connection loop', () => {
  it('goes from idle to connecting to connected, and start() resolves once the connection is set up', async () => {
    const connection = new FakeConnection();
    const { loop, states, calls } = scriptedLoop([connection]);
    expect(loop.state).toBe('idle');
    await loop.start();
    expect(states).toEqual(['connecting', 'connected']);
    expect(calls.setUp).toEqual([connection]);
    expect(loop.connection).toBe(connection);
    expect(loop.isUp(connection)).toBe(true);
    await loop.close();
  });

  it('while the bus is unreachable, start() resolves after the first attempt and the loop retries with doubling delays up to 10 s', async () => {
    const refused = () => new Error('ECONNREFUSED');
    const { loop, clock, calls } = scriptedLoop([refused(), refused(), refused(), refused(), refused(), refused(), refused()]);
    await loop.start();
    expect(loop.state).toBe('connecting');
    expect((loop.lastError as Error).message).toBe('ECONNREFUSED');
    for (let attempt = 2; attempt <= 7; attempt++) {
      await until(() => clock.sleeping);
      clock.elapse();
      await until(() => calls.connect === attempt);
    }
    await until(() => clock.sleeping);
    expect(clock.delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    await loop.close();
  });

  it('after a connection succeeds, the next failures start again from the first delay', async () => {
    const first = new FakeConnection();
    const { loop, clock, calls, states } = scriptedLoop([new Error('down'), new Error('down'), first, new Error('down again')]);
    await loop.start();
    for (let attempt = 2; attempt <= 3; attempt++) {
      await until(() => clock.sleeping);
      clock.elapse();
      await until(() => calls.connect === attempt);
    }
    await until(() => loop.state === 'connected');
    first.drop(new Error('server gone'));
    await until(() => clock.sleeping);
    expect(clock.delays).toEqual([500, 1_000, 500]);
    expect(states).toEqual(['connecting', 'connected', 'reconnecting']);
    await loop.close();
  });

  it('a connection that closes is forgotten, reported as reconnecting with its error, and replaced by a new one', async () => {
    const first = new FakeConnection();
    const second = new FakeConnection();
    const { loop, calls, states } = scriptedLoop([first, second]);
    await loop.start();
    first.drop(new Error('stale connection'));
    await until(() => calls.setUp.length === 2);
    await until(() => loop.state === 'connected');
    expect(calls.lost).toBe(1);
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    expect(loop.connection).toBe(second);
    expect(loop.lastError).toBeUndefined();
    await loop.close();
  });

  it("follows the client's own reconnection without connecting again", async () => {
    const connection = new FakeConnection();
    const { loop, calls, states } = scriptedLoop([connection]);
    await loop.start();
    connection.report({ type: 'disconnect', server: 'nats://a' });
    await until(() => loop.state === 'reconnecting');
    expect(loop.isUp()).toBe(false);
    connection.report({ type: 'reconnect', server: 'nats://a' });
    await until(() => loop.state === 'connected');
    expect(loop.isUp(connection)).toBe(true);
    expect(calls.connect).toBe(1);
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    await loop.close();
  });

  it('a configuration the server refuses at the first connection fails start() and closes the loop, with no retry', async () => {
    const connection = new FakeConnection();
    const refusal = new FlowError('invalid_input', 'nats.jetstream is true but the NATS server has no JetStream');
    const { loop, clock, calls } = scriptedLoop([connection], {
      setUp: async () => {
        throw refusal;
      },
    });
    await expect(loop.start()).rejects.toBe(refusal);
    expect(loop.state).toBe('closed');
    expect(connection.closeCalls).toBe(1);
    expect(calls.connect).toBe(1);
    expect(clock.delays).toEqual([]);
  });

  it('a set-up that fails after the bridge was connected once is retried with backoff', async () => {
    const first = new FakeConnection();
    const second = new FakeConnection();
    const third = new FakeConnection();
    let setUps = 0;
    const { loop, clock, calls } = scriptedLoop([first, second, third], {
      setUp: async () => {
        setUps++;
        if (setUps === 2) throw new FlowError('invalid_input', 'stream subjects overlap');
      },
    });
    await loop.start();
    first.drop();
    await until(() => clock.sleeping);
    expect(second.isClosed()).toBe(true);
    expect(loop.state).toBe('reconnecting');
    clock.elapse();
    await until(() => loop.state === 'connected');
    expect(calls.connect).toBe(3);
    expect(loop.connection).toBe(third);
    await loop.close();
  });

  it('close() while waiting to retry ends the pause at once, ends with no connection and connects no more', async () => {
    const { loop, clock, calls, states } = scriptedLoop([new Error('down'), new FakeConnection()]);
    await loop.start();
    await until(() => clock.sleeping);
    await loop.close();
    expect(loop.state).toBe('closed');
    expect(calls.end).toEqual([undefined]);
    expect(calls.connect).toBe(1);
    expect(states).toEqual(['connecting', 'closed']);
  });

  it('close() while connected ends the connection, forgets it, and a new start() connects again', async () => {
    const first = new FakeConnection();
    const second = new FakeConnection();
    const { loop, calls, states } = scriptedLoop([first, second]);
    await loop.start();
    await loop.close();
    expect(calls.end).toEqual([first]);
    expect(calls.lost).toBe(1);
    expect(loop.connection).toBeUndefined();
    expect(loop.state).toBe('closed');
    await loop.start();
    expect(loop.connection).toBe(second);
    expect(states).toEqual(['connecting', 'connected', 'closed', 'connecting', 'connected']);
    await loop.close();
  });

  it('a connection that arrives after close() is closed at once', async () => {
    const late = new FakeConnection();
    let answer!: (connection: FakeConnection) => void;
    const { loop, calls } = scriptedLoop([], {
      connect: () => new Promise<FakeConnection>((resolve) => (answer = resolve)),
      startWaitMs: 10,
    });
    await loop.start();
    expect(loop.state).toBe('connecting');
    const closing = loop.close();
    answer(late);
    await closing;
    expect(late.closeCalls).toBe(1);
    expect(calls.setUp).toEqual([]);
    expect(loop.state).toBe('closed');
  });

  it('close() before start() only marks the loop closed', async () => {
    const { loop, calls } = scriptedLoop([]);
    await loop.close();
    expect(loop.state).toBe('closed');
    expect(calls).toEqual({ connect: 0, setUp: [], lost: 0, end: [] });
  });
});

describe('connection retry delays', () => {
  /** The bridge's formula before it took the shared backoff helper. */
  const before = (first: number, attempt: number, random: number): number => {
    const capped = Math.min(10_000, first * 2 ** Math.min(attempt, 20));
    return capped / 2 + (random * capped) / 2;
  };

  it('are the same as before the shared backoff helper, for every first delay, attempt and jitter', () => {
    for (const first of [1, 50, 500, 3_000, 20_000]) {
      for (let attempt = 0; attempt <= 40; attempt++) {
        for (const random of [0, 0.37, 0.999]) {
          expect(connectRetryDelay({ initialMs: first, maxMs: 10_000 }, attempt, () => random)).toBe(before(first, attempt, random));
        }
      }
    }
  });

  it('lie between half and all of the backoff step', () => {
    expect(connectRetryDelay({ initialMs: 500, maxMs: 10_000 }, 2, () => 0)).toBe(1_000);
    expect(connectRetryDelay({ initialMs: 500, maxMs: 10_000 }, 2, () => 0.5)).toBe(1_500);
  });
});

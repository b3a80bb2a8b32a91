import type { Socket } from 'node:net';
import pg from 'pg';
import { backoffDelay, type Backoff } from '../../backoff.js';

/** The channel a commit that schedules work `NOTIFY`s, inside its transaction (so it is heard only once committed). */
export const COMMITS_CHANNEL = 'taskflow_commits';

/** Reconnection delays: 100 ms, doubling, at most 5 s. */
const RECONNECT: Backoff = { initialMs: 100, maxMs: 5_000 };
const END_TIMEOUT_MS = 1_000;

/**
 * One dedicated connection that `LISTEN`s on {@link COMMITS_CHANNEL} while
 * anyone watches, and calls the watchers on every notification sent by another
 * store (a notification's payload is its sender's id). It reconnects with
 * exponential backoff when the server goes away. Each time it starts
 * listening (first connection, or back after an outage) it calls the watchers
 * once, since commits made while it was not listening were not heard. It
 * never throws, and never keeps the process alive by itself.
 */
export class PgCommitWatch {
  private readonly listeners = new Set<() => void>();
  private client: pg.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  /** Bumped whenever the current connection is given up, so a late event of an old one is ignored. */
  private generation = 0;
  private closed = false;
  /** True while the current connection listens. */
  private listening = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly selfId: string,
  ) {}

  /** Adds a watcher; the first one opens the listening connection. Returns an unsubscribe. */
  subscribe(listener: () => void): () => void {
    if (this.closed) return () => undefined;
    const entry = () => listener();
    this.listeners.add(entry);
    if (this.listeners.size === 1) this.connect();
    // Already listening: this watcher gets the call the others got when listening began.
    else if (this.listening) setImmediate(() => this.listeners.has(entry) && this.call(entry));
    return () => {
      if (!this.listeners.delete(entry)) return;
      if (this.listeners.size === 0) this.disconnect();
    };
  }

  /** Drops the connection and every watcher; bounded even when the server does not answer. */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    await this.disconnect();
  }

  private connect(): void {
    if (this.closed || this.listeners.size === 0 || this.client) return;
    const generation = ++this.generation;
    const client = new pg.Client(this.config);
    this.client = client;
    const lost = () => {
      if (generation !== this.generation) return;
      this.generation++;
      this.client = undefined;
      this.listening = false;
      destroy(client);
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('error', () => undefined);
    client.on('end', lost);
    client.on('notification', (message) => {
      if (generation === this.generation && message.channel === COMMITS_CHANNEL && message.payload !== this.selfId) this.emit();
    });
    void (async () => {
      try {
        await client.connect();
        unref(client);
        await client.query(`LISTEN ${COMMITS_CHANNEL}`);
      } catch {
        lost();
        return;
      }
      if (generation !== this.generation) return;
      this.failures = 0;
      this.listening = true;
      // Commits made before this connection listened were not heard: let the watchers look once.
      this.emit();
    })();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.listeners.size === 0 || this.retryTimer) return;
    const delay = backoffDelay(RECONNECT, this.failures);
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
    this.retryTimer.unref?.();
  }

  private async disconnect(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.generation++;
    const client = this.client;
    this.client = undefined;
    this.failures = 0;
    this.listening = false;
    if (!client) return;
    client.on('error', () => undefined);
    const ended = client.end().then(
      () => true,
      () => false,
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), END_TIMEOUT_MS);
      timer.unref?.();
    });
    if (!(await Promise.race([ended, late]))) destroy(client);
    clearTimeout(timer);
  }

  private emit(): void {
    for (const listener of [...this.listeners]) this.call(listener);
  }

  private call(listener: () => void): void {
    try {
      listener();
    } catch {
      // A watcher's failure is its own; the others still hear of the commit.
    }
  }
}

/** Closes a client's socket at once, whatever the server does. */
export function destroy(client: pg.Client): void {
  (client.connection?.stream as Socket | undefined)?.destroy();
}

function unref(client: pg.Client): void {
  (client.connection?.stream as Socket | undefined)?.unref?.();
}

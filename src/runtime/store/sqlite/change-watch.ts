/**
 * Notices commits made by other connections to a SQLite file (another process,
 * another store object, the CLI) by polling `PRAGMA data_version`, whose value
 * changes only when another connection commits. One unref'd timer runs while at
 * least one listener is subscribed; a check costs a few microseconds.
 */
export class SqliteChangeWatch {
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private last: number | undefined;

  constructor(
    /** The connection's current data version; undefined when it cannot be read now (locked, closed). */
    private readonly readVersion: () => number | undefined,
    private readonly intervalMs: number,
  ) {}

  /** Calls `listener` after each check that saw a foreign commit; returns an unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.timer) {
      this.last = this.readVersion();
      this.timer = setInterval(() => this.check(), this.intervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /**
   * The connection was replaced: versions of the new one cannot be compared with
   * the old one's, and a commit may have happened in between, so report one.
   */
  connectionChanged(): void {
    if (!this.timer) return;
    this.last = this.readVersion();
    this.notify();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const version = this.readVersion();
    if (version === undefined || version === this.last) return;
    // Also when the version could not be read at subscribe: a spurious call costs a look, a missed one a sweep.
    this.last = version;
    this.notify();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the others still hear of the commit.
      }
    }
  }
}

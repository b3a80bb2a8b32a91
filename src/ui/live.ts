import type { Taskflow } from '../runtime/taskflow.js';

/**
 * A revision number that grows whenever the database may have changed: on a
 * commit through the runtime handle the inspector was given (`tf.onCommit`: the
 * host's own agents, when it mounts the inspector in its process), on a commit
 * by another connection or process (`watchForeignCommits`: SQLite's
 * `data_version`, PostgreSQL's `LISTEN/NOTIFY`) and on every action the
 * inspector itself performs. Pages follow it over Server-Sent Events.
 */
export class LiveRevision {
  private revision = 0;
  private readonly listeners = new Set<(revision: number) => void>();
  private readonly unwatch: (() => void)[];

  constructor(tf: Pick<Taskflow, 'store' | 'onCommit'>) {
    this.unwatch = [tf.store.watchForeignCommits(() => this.bump()), tf.onCommit(() => this.bump())];
  }

  get current(): number {
    return this.revision;
  }

  /** Marks a change (called after the inspector's own actions). */
  bump(): void {
    this.revision += 1;
    for (const listener of this.listeners) listener(this.revision);
  }

  /** Calls `listener` on every change; returns an unsubscribe. */
  subscribe(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    for (const unwatch of this.unwatch) unwatch();
    this.listeners.clear();
  }
}

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { MAX_HEARTBEAT_SUBJECTS, type BridgeCover } from '../store/diagnostics.js';
import type { FlowStore } from '../store/contract.js';

/** How often a running engine records its heartbeat, at most. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
/** Heartbeat rows silent for this long are removed by the next beat of any engine. */
export const HEARTBEAT_FORGET_MS = 86_400_000;

/**
 * What a bridge covers, as a heartbeat records it (at most {@link MAX_HEARTBEAT_SUBJECTS} subjects).
 * It takes the two accessors it reads, which a `NatsBridgeStatus` has: the doctor stands below the bridge.
 */
export function bridgeCover(bridge: { readonly state: string; coveredSubjects(): string[] }): BridgeCover {
  const subjects = bridge.state === 'connected' ? bridge.coveredSubjects() : [];
  return { state: bridge.state, subjects: subjects.slice(0, MAX_HEARTBEAT_SUBJECTS), truncated: subjects.length > MAX_HEARTBEAT_SUBJECTS };
}

/**
 * An engine's heartbeat: one row per runtime in `runtime_heartbeats`, upserted by
 * the sweep at most every {@link HEARTBEAT_INTERVAL_MS} (one small write), so
 * `taskflow doctor` can tell a live engine and its bridge's subjects.
 */
export class HeartbeatWriter {
  private readonly id = randomUUID();
  private readonly host = `${hostname()}:${process.pid}`;
  private startedAt: number | undefined;
  private lastBeat: number | undefined;
  private failing = false;

  constructor(
    private readonly store: FlowStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly bridge: () => BridgeCover | null,
    private readonly interval = HEARTBEAT_INTERVAL_MS,
  ) {}

  /** Records a beat unless one was recorded less than an interval ago (or `force`). Never throws. */
  async beat(force = false): Promise<void> {
    const now = this.clock.now();
    if (!force && this.lastBeat !== undefined && now - this.lastBeat < this.interval) return;
    this.startedAt ??= now;
    try {
      await this.store.recordHeartbeat(
        { id: this.id, host: this.host, startedAt: new Date(this.startedAt), beatAt: new Date(now), bridge: this.bridge() },
        now - HEARTBEAT_FORGET_MS,
      );
      this.lastBeat = now;
      this.failing = false;
    } catch (error) {
      // The sweep's own storage handling reports a failing store; this is only the doctor's sign of life.
      if (!this.failing) this.logger.debug({ err: error }, 'taskflow: recording the engine heartbeat failed (taskflow doctor may report no engine)');
      this.failing = true;
    }
  }
}

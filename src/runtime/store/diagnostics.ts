/**
 * The reads and the one write `tf.diagnose()` / `taskflow doctor` need from a
 * store. Every read is bounded by a limit and answered by an index.
 */

/** What a runtime's NATS bridge covered when it last beat. */
export interface BridgeCover {
  /** The bridge's state (`connected`, `reconnecting`, ...). */
  state: string;
  /** The subject patterns it covers (declared subjects and the topics of waits). */
  subjects: string[];
  /** True when it covered more than were recorded: a topic not listed may still be covered. */
  truncated: boolean;
}

/** A running runtime's sign of life, written by its engine's sweep. */
export interface Heartbeat {
  /** Random per runtime instance. */
  id: string;
  /** `hostname:pid`, for operators. */
  host: string;
  startedAt: Date;
  /** When its engine last swept (ticked). */
  beatAt: Date;
  /** Its NATS bridge, or null when it runs none. */
  bridge: BridgeCover | null;
}

/** A waiting flow's event key, as the near-miss check reads it. */
export interface WaitingKey {
  flowId: string;
  correlationId: string;
}

export interface DiagnosticStore {
  /** Upserts this runtime's heartbeat and removes rows that have not beaten since `forgetBefore`. */
  recordHeartbeat(beat: Heartbeat, forgetBefore: number): Promise<void>;
  /** Heartbeats, most recent first, at most `limit` (index `runtime_heartbeats_beat_at`). */
  listHeartbeats(limit: number): Promise<Heartbeat[]>;
  /**
   * Flows waiting on an event of `topic`, by correlation id, at most `limit`:
   * single event waits and the keys of any-of waits (an any-of flow once per key
   * of the topic). Indexes `flows_status_topic_correlation` and
   * `flow_wait_keys_key`, no read of the flows' state.
   */
  waitingKeys(topic: string, limit: number): Promise<WaitingKey[]>;
}

/** Bridge subjects kept in one heartbeat row. */
export const MAX_HEARTBEAT_SUBJECTS = 1000;

export function bridgeToJson(bridge: BridgeCover | null): string | null {
  return bridge === null ? null : JSON.stringify(bridge);
}

export function heartbeatFromRow(row: { id: string; host: string; startedAt: number; beatAt: number; bridgeJson: string | null }): Heartbeat {
  let bridge: BridgeCover | null = null;
  if (row.bridgeJson !== null) {
    try {
      const value = JSON.parse(row.bridgeJson) as Partial<BridgeCover>;
      bridge = {
        state: typeof value.state === 'string' ? value.state : 'unknown',
        subjects: Array.isArray(value.subjects) ? value.subjects.filter((s): s is string => typeof s === 'string') : [],
        truncated: value.truncated === true,
      };
    } catch {
      bridge = { state: 'unknown', subjects: [], truncated: true };
    }
  }
  return { id: row.id, host: row.host, startedAt: new Date(Number(row.startedAt)), beatAt: new Date(Number(row.beatAt)), bridge };
}

/**
 * The heartbeat statements of {@link DiagnosticStore}, the same text for both
 * dialects (`?` placeholders; PostgreSQL gets them numbered by {@link numbered}).
 * The waiting keys of a topic are read from each dialect's `waiters.ts`.
 */
export const HEARTBEATS_SQL = {
  /** primary key */
  upsert: `INSERT INTO runtime_heartbeats (id, host, started_at, beat_at, bridge_json) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, bridge_json = excluded.bridge_json`,
  /** runtime_heartbeats_beat_at */
  forget: 'DELETE FROM runtime_heartbeats WHERE beat_at < ?',
  /** runtime_heartbeats_beat_at */
  list: `SELECT id, host, started_at AS "startedAt", beat_at AS "beatAt", bridge_json AS "bridgeJson"
    FROM runtime_heartbeats ORDER BY beat_at DESC LIMIT ?`,
} as const;

/** `?` placeholders as PostgreSQL's `$1, $2, ...`. */
export function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

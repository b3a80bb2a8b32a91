/**
 * The statements of {@link DiagnosticStore}, the same text for both dialects
 * (`?` placeholders; PostgreSQL gets them numbered by {@link numbered}).
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

/** flows_status_topic_correlation: a range of the index, in correlation id order. */
export const WAITING_KEYS_SQL = `SELECT id AS "flowId", wait_correlation_id AS "correlationId" FROM flows
  WHERE status = 'waiting' AND wait_topic = ? AND wait_correlation_id IS NOT NULL
  ORDER BY wait_correlation_id LIMIT ?`;

/** `?` placeholders as PostgreSQL's `$1, $2, ...`. */
export function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

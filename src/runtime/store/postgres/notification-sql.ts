/**
 * The statements that act on claimed notifications, on PostgreSQL. Each acts
 * only on notifications still held by the claim named (id and lease end: the
 * due time a claim set; a later claim sets a later one), never on a parked one.
 */

/**
 * The notifications still held by the claims given as two arrays in the same
 * order, `ids` and `leases`: found by the primary key (`id = ANY`, whatever the
 * number of claims), each then checked against its own lease end. A join on the
 * `unnest` alone lets the planner walk the whole primary key once the list is long.
 */
export function heldByClaims(ids: string, leases: string): string {
  return `id = ANY(${ids}) AND dead_at IS NULL AND (id, due_at) IN (SELECT * FROM unnest(${ids}, ${leases}))`;
}

export const NOTIFICATION_SQL = {
  /** primary key: $1 ids, $2 lease ends */
  complete: `DELETE FROM resume_notifications WHERE ${heldByClaims('$1::bigint[]', '$2::int8[]')}`,
  /** primary key: $1 id, $2 lease end; due again at $3 with the error $4 */
  retry: 'UPDATE resume_notifications SET due_at = $3, last_error = $4 WHERE id = $1 AND due_at = $2 AND dead_at IS NULL',
  /** primary key: $1 id, $2 lease end; parked at $3 with the error $4 */
  park: 'UPDATE resume_notifications SET dead_at = $3, last_error = $4 WHERE id = $1 AND due_at = $2 AND dead_at IS NULL',
  /**
   * primary key: $1 ids, $2 lease ends; due at $3, the attempt each claim counted
   * taken back. Other stores' watchers ($4 channel, $5 this store) hear of it
   * at COMMIT when any was released: these are due now, no longer at their lease end.
   */
  release: `WITH released AS (
      UPDATE resume_notifications SET due_at = $3, attempts = greatest(attempts - 1, 0)
      WHERE ${heldByClaims('$1::bigint[]', '$2::int8[]')} RETURNING id
    )
    SELECT pg_notify($4, $5) FROM (SELECT WHERE EXISTS (SELECT FROM released)) AS any_released`,
} as const;

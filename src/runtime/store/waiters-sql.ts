/**
 * Who waits on an event key: the SQL both dialects share word for word.
 *
 * A waiting flow waits on a key in one of two ways: a single event wait, by its
 * own columns (`wait_topic`, `wait_correlation_id`; index
 * `flows_status_topic_correlation`), or an any-of wait, by one row per key in
 * `flow_wait_keys` (index `flow_wait_keys_key`; a row exists only while its flow
 * waits). Every answer reads both. Each dialect's `waiters.ts` is its one source
 * of these answers (`sqlite/waiters.ts`, `postgres/waiters.ts`): delivery and
 * start-or-deliver load the flows waiting on a key from it, the doctor the
 * waiting keys of a topic, the NATS bridge the topics it covers (the one
 * statement both dialects share word for word, here).
 */

/**
 * Distinct topics of waiting event waits (the NATS bridge covers them): one seek
 * per topic on flows_status_topic_correlation (a loose index scan), and likewise
 * on flow_wait_keys_key for the keys of any-of waits.
 */
export const WAITING_TOPICS_SQL = `WITH RECURSIVE topics(topic) AS (
  SELECT min(wait_topic) FROM flows WHERE status = 'waiting' AND wait_topic IS NOT NULL
  UNION ALL
  SELECT (SELECT min(f.wait_topic) FROM flows f WHERE f.status = 'waiting' AND f.wait_topic > topics.topic)
  FROM topics WHERE topics.topic IS NOT NULL
),
key_topics(topic) AS (
  SELECT min(topic) FROM flow_wait_keys
  UNION ALL
  SELECT (SELECT min(k.topic) FROM flow_wait_keys k WHERE k.topic > key_topics.topic)
  FROM key_topics WHERE key_topics.topic IS NOT NULL
)
SELECT topic FROM topics WHERE topic IS NOT NULL
UNION
SELECT topic FROM key_topics WHERE topic IS NOT NULL
ORDER BY topic`;

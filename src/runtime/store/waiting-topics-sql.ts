/* The one query both dialects share word for word. */

/**
 * Distinct topics of waiting event waits: one seek per topic on
 * flows_status_topic_correlation (a loose index scan), and likewise on
 * flow_wait_keys_key for the keys of any-of waits (a row there exists only while
 * its flow waits).
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

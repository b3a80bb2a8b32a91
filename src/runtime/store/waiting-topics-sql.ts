/* The one query both dialects share word for word. */

/** Distinct topics of waiting event waits: one seek per topic on flows_status_topic_correlation (a loose index scan). */
export const WAITING_TOPICS_SQL = `WITH RECURSIVE topics(topic) AS (
  SELECT min(wait_topic) FROM flows WHERE status = 'waiting' AND wait_topic IS NOT NULL
  UNION ALL
  SELECT (SELECT min(f.wait_topic) FROM flows f WHERE f.status = 'waiting' AND f.wait_topic > topics.topic)
  FROM topics WHERE topics.topic IS NOT NULL
)
SELECT topic FROM topics WHERE topic IS NOT NULL`;

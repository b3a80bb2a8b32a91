import type { Taskflow } from '../runtime/taskflow.js';
import { hintKey, type KeyHints } from './waits-page.js';

/**
 * The runtime's own near-miss hints (`tf.inboxHints()`) as the waits page's
 * {@link KeyHints}: beside a waiting key, the kept key it nearly matches, and
 * beside a kept key, the waiting key it nearly matches. The inspector's default.
 */
export function nearMissHints(tf: Pick<Taskflow, 'inboxHints'>): KeyHints {
  return async () => {
    const hints = new Map<string, string[]>();
    const add = (key: string, line: string) => hints.set(key, [...(hints.get(key) ?? []), line]);
    for (const miss of await tf.inboxHints({ limit: 100 })) {
      const how = miss.difference === 'typo' ? `a typo away (distance ${miss.distance})` : `differs only in ${miss.difference}`;
      add(hintKey(miss.waiting), `events kept for ${miss.kept.topic}/${miss.kept.correlationId} (${how})`);
      add(hintKey(miss.kept), `flows wait on ${miss.waiting.topic}/${miss.waiting.correlationId} (${how})`);
    }
    return hints;
  };
}

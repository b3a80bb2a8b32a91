import { isSubjectPattern, subjectMatches } from '../../runtime/nats/subject.js';
import type { InboxKeySummary } from '../../runtime/store/contract.js';
import { formatSpan } from '../../runtime/wait.js';
import { parseIntegerOption, stringOption } from '../args.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { usageError } from '../errors.js';
import { formatTime, plural } from '../format.js';
import { formatTable } from '../table.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 100_000;

/** A span rounded to its largest unit and the next (`3d4h`, `12m5s`, `250ms`): enough for an age. */
function age(ms: number): string {
  const full = formatSpan(ms >= 1000 ? Math.floor(ms / 1000) * 1000 : Math.max(0, ms));
  const units = full.match(/\d+(ms|d|h|m|s)/g) ?? [full];
  return units.slice(0, 2).join('');
}

/**
 * `taskflow inbox [--topic <pattern>] [--limit <n>]`: the events kept because no
 * flow waited on their key, grouped by key, oldest first. JSON shape
 * `{ now, keys, events, shown: [{ topic, correlationId, events, oldestAt, newestAt, expiresAt, ageMs }] }`.
 */
export const inboxCommand: DatabaseCommand = {
  name: 'inbox',
  summary: 'list events kept for keys no flow waits on, by key, oldest first',
  usage: 'inbox [--topic <pattern>] [--limit <n>]',
  details: [
    'An event that matches no waiting flow is kept (inbox.maxPerKey per key, inbox.maxTotal in',
    'all, for eventRetention) so that a later wait on its key resumes at once. Events kept for',
    'a key nobody ever waits on show here until they expire: a publisher on the wrong topic or',
    'correlation id, or junk on the bus.',
    'Options:',
    '  --topic <pattern>   only topics matching this NATS pattern (payments.>, orders.*.paid)',
    `  --limit <n>         at most n keys (default ${DEFAULT_LIMIT})`,
    'JSON: { "now", "keys": n, "events": n, "shown": [{ "topic", "correlationId", "events",',
    '        "oldestAt", "newestAt", "expiresAt", "ageMs" }, ...] }',
  ].join('\n'),
  positionals: [],
  options: { topic: { type: 'string' }, limit: { type: 'string' } },
  usesDatabase: true,
  readsOnly: true,
  async run({ tf, values, json, stdout }) {
    const pattern = stringOption(values, 'topic');
    if (pattern !== undefined && !isSubjectPattern(pattern)) throw usageError(`--topic "${pattern}" is not a NATS subject pattern`);
    const limitText = stringOption(values, 'limit');
    const limit = limitText === undefined ? DEFAULT_LIMIT : parseIntegerOption(limitText, 'limit', 1, MAX_LIMIT);
    const now = tf.clock.now();
    const all = await tf.store.listInbox();
    const matching = pattern === undefined ? all : all.filter((key) => subjectMatches(pattern, key.topic));
    const events = matching.reduce((sum, key) => sum + key.events, 0);
    const shown = matching.slice(0, limit);
    if (json) {
      return writeJson(stdout, {
        now: new Date(now),
        keys: matching.length,
        events,
        shown: shown.map((key) => ({ ...key, ageMs: now - key.oldestAt.getTime() })),
      });
    }
    if (matching.length === 0) {
      stdout.write(`the inbox keeps no event${pattern === undefined ? '' : ` on ${pattern}`}\n`);
      return;
    }
    stdout.write(
      formatTable<InboxKeySummary>(shown, [
        { header: 'TOPIC', value: (k) => k.topic, maxWidth: 48 },
        { header: 'CORRELATION', value: (k) => k.correlationId, maxWidth: 32 },
        { header: 'EVENTS', value: (k) => String(k.events) },
        { header: 'OLDEST', value: (k) => `${age(now - k.oldestAt.getTime())} ago` },
        { header: 'NEWEST', value: (k) => `${age(now - k.newestAt.getTime())} ago` },
        { header: 'EXPIRES', value: (k) => formatTime(k.expiresAt) },
      ]),
    );
    const more = matching.length > shown.length ? ` (showing the oldest ${shown.length}; --limit for more)` : '';
    stdout.write(`${plural(events, 'event')} kept for ${plural(matching.length, 'key')}${more}\n`);
  },
};

/**
 * The NATS subject grammar, shared by the bridge and the tool's topic allow-list:
 * tokens separated by `.`, `*` matches exactly one token, a final `>` matches one
 * or more. Pure: no I/O.
 */

/** Why `pattern` is not a valid pattern, or `undefined` when it is. */
export function topicPatternProblem(pattern: string): string | undefined {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'a topic pattern must be a non-empty string';
  if (/\s/.test(pattern)) return `topic pattern "${pattern}" contains whitespace`;
  const tokens = pattern.split('.');
  for (const [index, token] of tokens.entries()) {
    if (token === '') return `topic pattern "${pattern}" has an empty token`;
    if (token === '>' && index !== tokens.length - 1) return `topic pattern "${pattern}" uses ">" before its last token`;
    if (token !== '*' && token !== '>' && /[*>]/.test(token)) {
      return `topic pattern "${pattern}" mixes a wildcard into the token "${token}"`;
    }
  }
  return undefined;
}

/** Why `topic` cannot be waited on (wildcards, empty tokens, whitespace), or `undefined` when it can. */
export function concreteTopicProblem(topic: string): string | undefined {
  if (/\s/.test(topic)) return 'contains whitespace';
  const tokens = topic.split('.');
  if (tokens.some((token) => token === '')) return 'has an empty token (two dots in a row, or a dot at an end)';
  if (tokens.some((token) => /[*>]/.test(token))) return 'contains a wildcard (* or >); wait on one concrete topic';
  return undefined;
}

/** Whether `subject` is a literal NATS subject: dot-separated non-empty tokens, no whitespace, no wildcard. */
export function isLiteralSubject(subject: string): boolean {
  return subject !== '' && concreteTopicProblem(subject) === undefined;
}

/** Whether `pattern` is a valid NATS subject pattern (`*` for a token, `>` for the rest). */
export function isSubjectPattern(pattern: string): boolean {
  return topicPatternProblem(pattern) === undefined;
}

/** Whether the NATS subject pattern `pattern` matches the subject (or narrower pattern) `subject`. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i]!;
    if (token === '>') return s.length > i && s.slice(i).every((t) => t !== '');
    const other = s[i];
    if (other === undefined) return false;
    if (token === '*') {
      if (other === '>') return false;
      continue;
    }
    if (token !== other) return false;
  }
  return p.length === s.length;
}

/** The runtime's own subject namespace: `taskflow.resume`, `taskflow.flow.<id>.<kind>`. */
export const RESERVED_PREFIX = 'taskflow';

/**
 * Why a wait may not name `subject` on the bus, or `undefined` when it may: NATS
 * system and JetStream API subjects (`$…`), reply inboxes (`_INBOX…`) and the
 * runtime's own `taskflow.…` subjects (and `resumeSubject` when it is elsewhere)
 * belong to the bus and to the runtime, never to a flow. The reason is written
 * for whoever chose the subject (a model, a host), saying what to do instead.
 */
export function reservedSubjectProblem(subject: string, resumeSubject?: string): string | undefined {
  const first = subject.split('.')[0] ?? '';
  if (first.startsWith('$')) return `"${subject}" is a NATS system subject ($…): choose an application subject`;
  if (first === '_INBOX' || first.startsWith('_INBOX')) return `"${subject}" is a reply inbox (_INBOX…): choose an application subject`;
  if (first === RESERVED_PREFIX) return `"${subject}" is in the runtime's own namespace (taskflow.…): choose an application subject`;
  if (resumeSubject !== undefined && subject === resumeSubject) return `"${subject}" is the runtime's resume subject: publish events there, do not wait on it`;
  return undefined;
}

/**
 * Why a host may not declare `pattern` as a subject its stream captures, or
 * `undefined`: it must be a pattern whose first token is a literal outside the
 * reserved namespaces, so it can never capture `$…`, `_INBOX…` or `taskflow.…`
 * traffic (a request's reply, the JetStream API, the runtime's own events).
 */
export function declaredPatternProblem(pattern: string): string | undefined {
  const grammar = topicPatternProblem(pattern);
  if (grammar) return grammar;
  const first = pattern.split('.')[0]!;
  if (first === '*' || first === '>') return `"${pattern}" starts with a wildcard, so it would capture $…, _INBOX… and taskflow.… subjects too: start it with a literal token`;
  return reservedSubjectProblem(pattern);
}

/** Drops every subject that another in the list already matches (JetStream refuses overlapping subjects). */
export function minimalCover(subjects: readonly string[]): string[] {
  const unique = [...new Set(subjects)];
  return unique.filter((s, i) => !unique.some((other, j) => j !== i && subjectMatches(other, s) && (other !== s || j < i)));
}

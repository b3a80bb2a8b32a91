/**
 * The NATS subject grammar, shared by the bridge and the tool's topic allow-list:
 * tokens separated by `.`, `*` matches exactly one token, a final `>` matches one
 * or more. Pure: no I/O.
 */

/**
 * Whether `subject` is a literal NATS subject the bridge can cover: dot-separated
 * non-empty tokens, no whitespace, no wildcard.
 */
export function isLiteralSubject(subject: string): boolean {
  if (subject === '' || /\s/.test(subject)) return false;
  return subject.split('.').every((token) => token !== '' && token !== '*' && token !== '>');
}

/** Whether `pattern` is a valid NATS subject pattern (`*` for a token, `>` for the rest). */
export function isSubjectPattern(pattern: string): boolean {
  if (pattern === '' || /\s/.test(pattern)) return false;
  const tokens = pattern.split('.');
  return tokens.every((token, i) => token !== '' && (token === '>' ? i === tokens.length - 1 : !/[*>]/.test(token) || token === '*'));
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

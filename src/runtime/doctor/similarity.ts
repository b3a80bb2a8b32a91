/** How two keys that are not equal differ, when they nearly match. */
export type KeyDifference = 'case' | 'whitespace' | 'typo';

const DIGIT = /[0-9]/;

/**
 * Edit distance between `a` and `b` (insertions, deletions, substitutions, and
 * swaps of two neighbours, each 1), or `max + 1` as soon as it exceeds `max`.
 * With `digitSubstitution: false`, replacing a digit by another is not allowed.
 */
export function boundedDistance(a: string, b: string, max: number, options: { digitSubstitution?: boolean } = {}): number {
  const digitSubstitution = options.digitSubstitution ?? true;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  if (a === b) return 0;
  const far = max + 1;
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const x = a[i - 1]!;
      const y = b[j - 1]!;
      const substitution = x === y ? 0 : !digitSubstitution && DIGIT.test(x) && DIGIT.test(y) ? far : 1;
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + substitution);
      if (i > 1 && j > 1 && x === b[j - 2] && a[i - 2] === y && x !== y) value = Math.min(value, before[j - 2]! + 1);
      value = Math.min(value, far);
      current.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > max) return far;
    before = previous;
    previous = current;
  }
  return Math.min(previous[b.length]!, far);
}

/**
 * The typos a key of this length may carry and still count as a near match: 2
 * from 8 characters, 1 from 4, none below (where one character is another id,
 * `inv-1` against `inv-2`, not a typo). Case and whitespace always count.
 */
export function typoBudget(length: number): number {
  return length >= 8 ? 2 : length >= 4 ? 1 : 0;
}

const SPACE = /\s+/g;

/**
 * How `kept` differs from `waiting` when they nearly match; undefined when they
 * are equal or too far apart. Case is compared first, then whitespace anywhere,
 * then edit distance within {@link typoBudget} (after folding case and spaces).
 */
export function nearMatch(kept: string, waiting: string): { difference: KeyDifference; distance: number } | undefined {
  if (kept === waiting) return undefined;
  if (kept.toLowerCase() === waiting.toLowerCase()) return { difference: 'case', distance: 0 };
  const foldedKept = kept.replace(SPACE, '').toLowerCase();
  const foldedWaiting = waiting.replace(SPACE, '').toLowerCase();
  if (foldedKept === foldedWaiting) return { difference: 'whitespace', distance: 0 };
  const budget = typoBudget(Math.min(foldedKept.length, foldedWaiting.length));
  if (budget === 0) return undefined;
  const distance = boundedDistance(foldedKept, foldedWaiting, budget);
  if (distance > budget || !sameNumber(foldedKept, foldedWaiting)) return undefined;
  return { difference: 'typo', distance };
}

const NOT_DIGITS = /[^0-9]/g;

/**
 * Whether the digits of two keys can be one number mistyped: equal, or one digit
 * missing, doubled, or swapped with its neighbour. Another digit in its place is
 * another id (`inv-7` and `inv-9` are two invoices), not a typo.
 */
function sameNumber(a: string, b: string): boolean {
  const x = a.replace(NOT_DIGITS, '');
  const y = b.replace(NOT_DIGITS, '');
  return x === y || boundedDistance(x, y, 1, { digitSubstitution: false }) <= 1;
}

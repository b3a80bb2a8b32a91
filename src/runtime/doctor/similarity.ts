/** How two keys that are not equal differ, when they nearly match. */
export type KeyDifference = 'case' | 'whitespace' | 'typo';

/**
 * Edit distance (Levenshtein) between `a` and `b`, or `max + 1` as soon as it
 * exceeds `max`: a banded computation, O(length × max).
 */
export function boundedDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      current.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > max) return max + 1;
    previous = current;
  }
  return previous[b.length]!;
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
  return distance <= budget ? { difference: 'typo', distance } : undefined;
}

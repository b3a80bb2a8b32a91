/** Narration shared by the demo's processes: one line per event, timed from the demo's start. */
const start = Number(process.env.DEMO_T0 ?? Date.now());

export function narrate(who: string, text: string): void {
  const seconds = ((Date.now() - start) / 1000).toFixed(2).padStart(6);
  process.stdout.write(`[+${seconds}s] ${who.padEnd(9)} ${text}\n`);
}

/** A plain text table: a header row, then the rows, columns padded to fit. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

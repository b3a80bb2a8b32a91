/** One column of a {@link formatTable}. */
export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  /** Longer cells are cut to this width with an ellipsis. Default: no limit. */
  maxWidth?: number;
}

/**
 * Lays rows out as a plain-text table: a header line, then one line per row,
 * columns padded to their widest cell and separated by two spaces. Cells are
 * made safe for a terminal (control characters become spaces) and cut to their
 * column's `maxWidth`. Trailing spaces are trimmed. Ends with a newline.
 */
export function formatTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string {
  const cells = rows.map((row) => columns.map((column) => fit(clean(column.value(row)), column.maxWidth)));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((line) => line[i]!.length)));
  const render = (line: readonly string[]): string =>
    line
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [render(columns.map((c) => c.header)), ...cells.map(render)].join('\n') + '\n';
}

/**
 * Lays out `label  value` pairs with labels aligned, for a single record.
 * Values are cleaned like table cells; ends with a newline.
 */
export function formatFields(fields: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...fields.map(([label]) => label.length));
  return fields.map(([label, value]) => `${(label + ':').padEnd(width + 1)}  ${clean(value)}`.trimEnd()).join('\n') + '\n';
}

/** Replaces control characters (newlines, escapes) so a stored value cannot break the layout or the terminal. */
export function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}

/** Cuts `text` to `max` characters, marking the cut with an ellipsis. */
export function fit(text: string, max: number | undefined): string {
  if (max === undefined || text.length <= max) return text;
  return max <= 1 ? text.slice(0, max) : text.slice(0, max - 1) + '…';
}

/**
 * Output for the operator commands (trigger, events). They own stdout; `stdio` mode never loads
 * this module's callers, so JSON-RPC there is safe. Warnings go to stderr, so stdout stays the
 * answer a script reads.
 */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function outJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** A warning that does not stop the command: one line on stderr, prefixed like the CLI's errors. */
export function warn(text: string): void {
  process.stderr.write(`stripe-events-mcp: warning: ${text}\n`);
}

/** A failure the command reports itself (it sets the exit code): one line on stderr, like fail(). */
export function failure(text: string): void {
  process.stderr.write(`stripe-events-mcp: ${text}\n`);
}

/**
 * Rows as aligned columns under a header, two spaces apart, each column as wide as its widest cell
 * (widths come from the rows printed, so a long type or amount never pushes the next column out of
 * line). Columns in `right` are right-aligned, as numbers and amounts read best; the last column is
 * not padded, so no line ends in spaces.
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: ReadonlySet<number> = new Set(),
): string {
  // Code points, not UTF-16 units: a currency sign outside the BMP still counts as one character.
  const width = (text: string) => [...text].length;
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    header
      .map((_, i) => {
        const cell = cells[i] ?? '';
        const pad = ' '.repeat(widths[i]! - width(cell));
        if (right.has(i)) return pad + cell;
        return i === header.length - 1 ? cell : cell + pad;
      })
      .join('  ');
  return [header, ...rows].map(line).join('\n');
}

/**
 * "Did you mean …?" for a mistyped command. Commander suggests for unknown subcommands itself, but
 * `serve` is the default command, so an unknown first word reaches serve as an argument instead:
 * the CLI asks here before serve would start.
 */

/** Optimal string alignment distance (Damerau–Levenshtein with adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidates to `word`, close enough to be a typo (or a prefix), best first. */
export function suggest(word: string, candidates: readonly string[]): string[] {
  const w = word.toLowerCase();
  const scored = candidates
    .map((c) => ({ c, d: c.startsWith(w) && w.length >= 2 ? 0.5 : editDistance(w, c) }))
    .filter(({ c, d }) => d <= Math.max(1, Math.floor(c.length * 0.4)));
  scored.sort((x, y) => x.d - y.d || x.c.localeCompare(y.c));
  return scored.map(({ c }) => c);
}

/** The one line a mistyped command gets (exit 2), instead of serve's help. */
export function unknownCommandMessage(word: string, commands: readonly string[]): string {
  const close = suggest(word, commands);
  const hint = close.length
    ? `Did you mean ${close
        .slice(0, 2)
        .map((c) => `'${c}'`)
        .join(' or ')}?`
    : `Commands: ${commands.join(', ')}.`;
  return `unknown command '${word}'. ${hint} (stripe-events-mcp --help lists them; with no command it serves.)`;
}

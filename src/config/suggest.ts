/**
 * "Did you mean …?" for a mistyped name: a command (src/cli/suggest.ts), or a tool, model or
 * export named in the config file (src/config/names.ts). Pure, and shared, so the config layer and
 * the CLI judge "close enough" the same way.
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

/** The candidates close enough to `word` to be a typo (or a prefix), with their distance, best first. */
function ranked(word: string, candidates: readonly string[]): { c: string; d: number }[] {
  const w = word.toLowerCase();
  const scored = candidates
    .map((c) => ({ c, d: c.startsWith(w) && w.length >= 2 ? 0.5 : editDistance(w, c) }))
    .filter(({ c, d }) => d <= Math.max(1, Math.floor(c.length * 0.4)));
  scored.sort((x, y) => x.d - y.d || x.c.localeCompare(y.c));
  return scored;
}

/** The closest candidates to `word`, close enough to be a typo (or a prefix), best first. */
export function suggest(word: string, candidates: readonly string[]): string[] {
  return ranked(word, candidates).map(({ c }) => c);
}

/**
 * The best guesses only: the candidates tied for closest, at most `max`. Names in one family
 * (claude-sonnet-5-5, claude-sonnet-5, claude-opus-5-5) are all within suggest()'s reach of a typo
 * of one of them, and only the closest is the likely meant one.
 */
export function closest(word: string, candidates: readonly string[], max = 2): string[] {
  const all = ranked(word, candidates);
  const best = all[0]?.d;
  return all
    .filter(({ d }) => d === best)
    .slice(0, max)
    .map(({ c }) => c);
}

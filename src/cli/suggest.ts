/**
 * "Did you mean …?" for a mistyped command. Commander suggests for unknown subcommands itself, but
 * `serve` is the default command, so an unknown first word reaches serve as an argument instead:
 * the CLI asks here before serve would start. The matching itself is shared with the config file's
 * checks (src/config/suggest.ts).
 */
import { suggest } from '../config/suggest.js';

export { editDistance, suggest } from '../config/suggest.js';

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

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

/**
 * Output for the operator commands (trigger, events). They own stdout; `stdio` mode never loads
 * this module's callers, so JSON-RPC there is safe.
 */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function outJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

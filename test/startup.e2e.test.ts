/**
 * Start-up says where things are: before the JSON logs, `serve` prints the webhook, MCP and
 * console addresses as plain lines on stderr (stdout stays free: in stdio mode it is JSON-RPC),
 * and with the dev secret, the `trigger` command that sends it a signed event.
 */
import { describe, expect, it } from 'vitest';
import { e2eScope } from './helpers/e2e.js';
import { startServe } from './helpers/spawn.js';

const { tmp } = e2eScope();

describe('start-up', () => {
  it('prints the webhook, MCP and console URLs as plain lines before the listening log', async () => {
    const server = await startServe({ dataDir: tmp(), env: { STRIPE_WEBHOOK_SECRET: undefined } });
    const stderr = server.stderr();
    const lines = stderr.split('\n');
    const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
    const listening = at(/"msg":"listening"/);
    expect(listening).toBeGreaterThan(0);
    for (const [label, path] of [
      ['webhooks', '/stripe/webhook'],
      ['MCP', '/mcp'],
      ['console', '/console'],
    ] as const) {
      const i = at(new RegExp(`^  ${label} +${server.url.replace(/[.]/g, '\\.')}${path} `));
      expect(i, `${label} line`).toBeGreaterThan(-1);
      expect(i).toBeLessThan(listening);
    }
    // With no STRIPE_WEBHOOK_SECRET, the dev secret and a ready trigger command.
    const trigger = at(/ trigger charge\.dispute\.created --data-dir /);
    expect(trigger).toBeGreaterThan(-1);
    expect(trigger).toBeLessThan(listening);
    expect(server.stdout()).toBe('');
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

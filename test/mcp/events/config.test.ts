import { describe, expect, it } from 'vitest';
import { parseConfigFile } from '../../../src/config/file.js';
import { ConfigError } from '../../../src/errors.js';

describe('the mcp_events config keys', () => {
  it('accepts allow_private_callbacks and max_subscriptions', () => {
    const config = parseConfigFile(
      JSON.stringify({ mcp_events: { allow_private_callbacks: true, max_subscriptions: 5 } }),
      'cfg.json',
    );
    expect(config.mcp_events).toEqual({ allow_private_callbacks: true, max_subscriptions: 5 });
  });

  it('refuses a misspelt key naming it, and a bad value naming the setting', () => {
    const message = (json: unknown) => {
      try {
        parseConfigFile(JSON.stringify(json), 'cfg.json');
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(message({ mcp_events: { allow_private_callback: true } })).toMatch(
      /mcp_events: Unrecognized key: "allow_private_callback"/,
    );
    expect(message({ mcp_events: { max_subscriptions: 0 } })).toMatch(/max_subscriptions/);
  });
});

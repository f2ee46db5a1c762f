import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig, MIN_LEASE_SECONDS } from '../../src/config/agent.js';
import { loadServeConfig, MAX_TOLERANCE_SECONDS } from '../../src/config/config.js';
import { parseConfigFile } from '../../src/config/file.js';
import { ConfigError } from '../../src/errors.js';
import { runCli } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const AGENT_ENV = { ANTHROPIC_API_KEY: 'sk-ant-test' };

/** Spellings `Number()` reads as a number that are not whole decimal numbers. */
const NOT_DECIMAL = ['1e3', '0x2390', '9120.0', '0b101', '0o17', '1.5', '+80', 'Infinity', '1_000'];

describe('integer settings take whole decimal numbers only', () => {
  it('refuses PORT=1e3, 0x2390, 9120.0 … naming the setting, and still takes plain digits', () => {
    for (const text of NOT_DECIMAL) {
      const fromEnv = configError(() => loadServeConfig({}, { PORT: text }));
      expect(fromEnv.setting, text).toBe('--port / PORT');
      expect(fromEnv.message, text).toMatch(/not a whole decimal number|not a number/);
      expect(configError(() => loadServeConfig({ port: text }, {})).setting).toBe('--port / PORT');
    }
    expect(configError(() => loadServeConfig({}, { PORT: '1e3' })).message).toContain(
      '"1e3" is not valid (not a whole decimal number)',
    );
    expect(loadServeConfig({}, { PORT: '9120' }).port).toBe(9120);
    expect(loadServeConfig({}, { PORT: ' 9120\n' }).port).toBe(9120);
    expect(loadServeConfig({ port: '0' }, {}).port).toBe(0);
  });

  it('applies the same rule to every integer flag of serve and agent', () => {
    const serveFlags = [
      'tolerance',
      'maxPending',
      'mcpIdleTimeout',
      'backfillInterval',
      'maxAttempts',
      'mcpMaxSessions',
      'maxConnections',
      'requestTimeout',
    ] as const;
    for (const flag of serveFlags) {
      for (const text of NOT_DECIMAL) {
        const error = configError(() => loadServeConfig({ [flag]: text }, {}));
        expect(error.message, `${flag} ${text}`).toMatch(/not a whole decimal number|not a number/);
      }
      expect(() => loadServeConfig({ [flag]: '60' }, {}), flag).not.toThrow();
    }
    const agentFlags = ['concurrency', 'maxTurns', 'maxTokens', 'leaseSeconds'] as const;
    for (const flag of agentFlags) {
      for (const text of NOT_DECIMAL) {
        const error = configError(() => loadAgentConfig({ [flag]: text }, AGENT_ENV));
        expect(error.message, `${flag} ${text}`).toMatch(/not a whole decimal number|not a number/);
      }
      expect(() => loadAgentConfig({ [flag]: '8' }, AGENT_ENV), flag).not.toThrow();
    }
  });

  it(`bounds --tolerance at ${MAX_TOLERANCE_SECONDS} s, so staleness cannot be switched off`, () => {
    expect(MAX_TOLERANCE_SECONDS).toBe(86_400);
    expect(configError(() => loadServeConfig({ tolerance: '1e15' }, {})).setting).toBe(
      '--tolerance',
    );
    const big = configError(() => loadServeConfig({ tolerance: '1000000000000000' }, {}));
    expect(big.message).toMatch(/above 86400.*Fix: .*1 to 86400/);
    expect(configError(() => loadServeConfig({ tolerance: '86401' }, {})).setting).toBe(
      '--tolerance',
    );
    expect(loadServeConfig({ tolerance: '86400' }, {}).toleranceSeconds).toBe(86_400);
  });

  it(`refuses a lease under ${MIN_LEASE_SECONDS} s (it would expire between renewals)`, () => {
    expect(MIN_LEASE_SECONDS).toBe(5);
    for (const text of ['1', '4']) {
      const error = configError(() => loadAgentConfig({ leaseSeconds: text }, AGENT_ENV));
      expect(error.setting).toBe('--lease-seconds');
      expect(error.message).toMatch(/below 5.*Fix: .*from 5 to 3600/);
    }
    expect(loadAgentConfig({ leaseSeconds: '5' }, AGENT_ENV).leaseMs).toBe(5_000);
  });

  it('serve --port 0x2390 exits 2 with one line naming the setting and the fix', async () => {
    const tmp = tempDir();
    try {
      const result = await runCli(['serve', '--port', '0x2390', '--data-dir', tmp.dir]);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/--port \/ PORT: "0x2390" is not valid .*Fix:/);
    } finally {
      tmp.remove();
    }
  });
});

function fileError(json: unknown): string {
  try {
    parseConfigFile(typeof json === 'string' ? json : JSON.stringify(json), 'cfg.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config file tool names', () => {
  it('refuses an added type taking a built-in tool name, naming both types', () => {
    expect(fileError({ events: { 'invoice.paid': { tool: 'handle_dispute' } } })).toMatch(
      /"handle_dispute" is used for both charge\.dispute\.created and invoice\.paid/,
    );
    // A renamed built-in type collides the same way.
    expect(fileError({ events: { 'charge.refunded': { tool: 'fulfill_order' } } })).toMatch(
      /"fulfill_order" is used for both charge\.refunded and checkout\.session\.completed|"fulfill_order" is used for both checkout\.session\.completed and charge\.refunded/,
    );
    // Free again once its built-in type is renamed or removed.
    expect(() =>
      parseConfigFile(
        JSON.stringify({
          events: {
            'charge.dispute.created': { tool: 'dispute_desk' },
            'invoice.paid': { tool: 'handle_dispute' },
          },
        }),
        'cfg.json',
      ),
    ).not.toThrow();
    expect(() =>
      parseConfigFile(
        JSON.stringify({
          events: { 'charge.dispute.created': false, 'invoice.paid': { tool: 'handle_dispute' } },
        }),
        'cfg.json',
      ),
    ).not.toThrow();
  });

  it("refuses the agent loop's own tool names", () => {
    for (const tool of ['no_action_needed', 'ask_a_person']) {
      expect(fileError({ events: { 'invoice.paid': { tool } } })).toMatch(
        new RegExp(
          `\\$\\.events\\["invoice\\.paid"\\]\\.tool: "${tool}" is a tool of the agent loop`,
        ),
      );
      // A type with no tool given takes its own name as the tool's.
      expect(fileError({ events: { [tool]: {} } })).toMatch(/is a tool of the agent loop/);
    }
  });

  it('refuses an events key __proto__ instead of dropping it', () => {
    const text = '{"events":{"__proto__":{"tool":"sneaky"},"invoice.paid":{"tool":"thank"}}}';
    expect(fileError(text)).toMatch(/\$\.events\["__proto__"\]: is not an event type/);
  });

  it('catalog --config with a colliding tool name exits 2 naming both types', async () => {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'cfg.json');
      fs.writeFileSync(
        file,
        JSON.stringify({ events: { 'invoice.paid': { tool: 'handle_dispute' } } }),
      );
      const result = await runCli(['catalog', '--config', file]);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/charge\.dispute\.created and invoice\.paid/);
    } finally {
      tmp.remove();
    }
  });
});

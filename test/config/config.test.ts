import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadServeConfig, parseSecrets, parseSize } from '../../src/config/config.js';
import {
  defaultDataDir,
  ensureWritableDir,
  loadOrCreateDevSecret,
} from '../../src/config/data-dir.js';
import { ConfigError } from '../../src/errors.js';
import { parseRedisTarget, redactRedisUrl } from '../../src/buffer/redis/url.js';
import { REPO_ROOT } from '../helpers/spawn.js';
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

describe('serve configuration', () => {
  it('has safe defaults: loopback, 8000, 300 s, 2 MiB, 100 000 pending', () => {
    const c = loadServeConfig({}, { HOME: '/home/u' });
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 8000,
      toleranceSeconds: 300,
      maxBodyBytes: 2 * 1024 * 1024,
      maxPending: 100_000,
      store: 'sqlite',
      webhookSecrets: [],
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('bounds the listener: 10 s headers, 30 s request, 1024 connections, 64 MiB unverified bodies', () => {
    expect(loadServeConfig({}, { HOME: '/home/u' })).toMatchObject({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      maxConnections: 1024,
      maxBodyMemoryBytes: 64 * 1024 * 1024,
    });
    expect(
      loadServeConfig(
        { requestTimeout: '5', maxConnections: '50', maxBodyMemory: '8mb', maxBody: '1mb' },
        {},
      ),
    ).toMatchObject({
      headersTimeoutMs: 5_000, // the default gives way to a shorter request timeout
      requestTimeoutMs: 5_000,
      maxConnections: 50,
      maxBodyMemoryBytes: 8 * 1024 * 1024,
    });
    expect(configError(() => loadServeConfig({ headersTimeout: '40' }, {})).setting).toBe(
      '--headers-timeout',
    );
    expect(configError(() => loadServeConfig({ requestTimeout: '0' }, {})).setting).toBe(
      '--request-timeout',
    );
    expect(configError(() => loadServeConfig({ maxConnections: 'lots' }, {})).setting).toBe(
      '--max-connections',
    );
    expect(
      configError(() => loadServeConfig({ maxBody: '4mb', maxBodyMemory: '2mb' }, {})).setting,
    ).toBe('--max-body-memory');
  });

  it('takes the environment, and a flag over the variable', () => {
    const env = {
      PORT: '9000',
      HOST: '0.0.0.0',
      STRIPE_EVENTS_DATA_DIR: '/srv/events',
      LOG_LEVEL: 'warn',
    };
    expect(loadServeConfig({}, env)).toMatchObject({
      port: 9000,
      host: '0.0.0.0',
      dataDir: '/srv/events',
      logLevel: 'warn',
    });
    expect(loadServeConfig({ port: '9100', dataDir: '/x' }, env)).toMatchObject({
      port: 9100,
      dataDir: '/x',
    });
  });

  it('parses several comma-separated secrets, trimming stray whitespace', () => {
    expect(parseSecrets(' whsec_a ,whsec_b\n')).toEqual(['whsec_a', 'whsec_b']);
    expect(parseSecrets('')).toEqual([]);
    // The examples' placeholders are refused at start, naming the setting, never echoing it.
    for (const placeholder of [
      'whsec_replace_with_your_endpoint_secret',
      'whsec_…',
      'whsec_...',
      'whsec_<your-secret>',
    ]) {
      const error = configError(() => parseSecrets(`whsec_a,${placeholder}`));
      expect(error.message).toMatch(/STRIPE_WEBHOOK_SECRET: item 2 is a placeholder/);
      expect(error.message).not.toContain(placeholder);
    }
    // The mcp.json.example entries carry exactly such a placeholder.
    const example = JSON.parse(
      fs.readFileSync(path.join(REPO_ROOT, 'mcp.json.example'), 'utf8'),
    ) as { mcpServers: Record<string, { env?: Record<string, string> }> };
    for (const server of Object.values(example.mcpServers)) {
      const secret = server.env?.STRIPE_WEBHOOK_SECRET;
      if (secret) expect(() => parseSecrets(secret)).toThrow(/placeholder/);
    }
  });

  it('names the setting and the fix for each bad value, without echoing a secret', () => {
    expect(configError(() => loadServeConfig({ port: 'abc' }, {})).message).toMatch(
      /--port \/ PORT.*Fix:/,
    );
    expect(configError(() => loadServeConfig({}, { PORT: '70000' })).message).toMatch(
      /above 65535/,
    );
    const secret = configError(() =>
      loadServeConfig({}, { STRIPE_WEBHOOK_SECRET: 'sk_test_abcdefgh' }),
    );
    expect(secret.setting).toBe('STRIPE_WEBHOOK_SECRET');
    expect(secret.message).toContain('whsec_');
    expect(secret.message).not.toContain('sk_test_abcdefgh');
    expect(configError(() => parseSecrets('whsec_a,,whsec_b')).message).toMatch(
      /item 2 is an empty value/,
    );
    expect(configError(() => loadServeConfig({ tolerance: '0' }, {})).setting).toBe('--tolerance');
    expect(configError(() => loadServeConfig({ maxBody: '12' }, {})).setting).toBe('--max-body');
    expect(configError(() => loadServeConfig({ maxPending: '-1' }, {})).setting).toBe(
      '--max-pending',
    );
    for (const bad of ['0', '101', 'five', '2.5']) {
      expect(configError(() => loadServeConfig({ maxAttempts: bad }, {})).setting).toBe(
        '--max-attempts',
      );
    }
    expect(loadServeConfig({ maxAttempts: '2' }, {}).maxAttempts).toBe(2);
    // Not given: the stored policy stands.
    expect(loadServeConfig({}, {}).maxAttempts).toBeUndefined();
    expect(configError(() => loadServeConfig({ store: 'mongo' }, {})).message).toMatch(
      /--store sqlite .*--store redis/,
    );
    const redisUrl = configError(() =>
      loadServeConfig({ store: 'redis' }, { REDIS_URL: 'http://user:hunter2@cache:6379' }),
    );
    expect(redisUrl.setting).toBe('REDIS_URL');
    expect(redisUrl.message).not.toContain('hunter2');
    expect(
      configError(() => loadServeConfig({ store: 'redis', redisPrefix: 'has space' }, {})).setting,
    ).toBe('--redis-prefix / REDIS_KEY_PREFIX');
    // Redis settings are only checked when the Redis store is chosen.
    expect(loadServeConfig({}, { REDIS_URL: 'nonsense' }).store).toBe('sqlite');
    expect(loadServeConfig({ store: 'redis' }, {})).toMatchObject({
      store: 'redis',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'stripe-events:',
    });
    expect(
      loadServeConfig(
        { store: 'redis', redisPrefix: 'flag:' },
        { REDIS_URL: 'rediss://h:6380/2', REDIS_KEY_PREFIX: 'env:' },
      ),
    ).toMatchObject({ redisUrl: 'rediss://h:6380/2', redisPrefix: 'flag:' });
    expect(configError(() => loadServeConfig({ logLevel: 'loud' }, {})).setting).toBe(
      '--log-level / LOG_LEVEL',
    );
  });

  it('reads a Sentinel REDIS_URL, refusing a malformed one without echoing its password', () => {
    const url = 'redis+sentinel://app:hunter2@s1:26379,s2,[::1]:26380/mymaster/3';
    expect(loadServeConfig({ store: 'redis' }, { REDIS_URL: url }).redisUrl).toBe(url);
    expect(parseRedisTarget(url)).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'mymaster',
      username: 'app',
      password: 'hunter2',
      db: 3,
    });
    expect(redactRedisUrl(url)).toBe('redis+sentinel://app:***@s1:26379,s2,[::1]:26380/mymaster/3');
    expect(parseRedisTarget('redis://h:6379')).toEqual({ kind: 'url', url: 'redis://h:6379' });
    for (const bad of [
      'redis+sentinel://:hunter2@s1:26379',
      'redis+sentinel://:hunter2@s1:99999/mymaster',
      'redis+sentinel://:hunter2@/mymaster',
    ]) {
      const error = configError(() => loadServeConfig({ store: 'redis' }, { REDIS_URL: bad }));
      expect(error.setting, bad).toBe('REDIS_URL');
      expect(error.message, bad).not.toContain('hunter2');
      expect(error.message, bad).toContain('redis+sentinel://');
    }
  });

  it('needs STRIPE_SECRET_KEY for --enrich', () => {
    expect(configError(() => loadServeConfig({ enrich: true }, {})).setting).toBe(
      'STRIPE_SECRET_KEY',
    );
    expect(loadServeConfig({ enrich: true }, { STRIPE_SECRET_KEY: 'sk_test_abc123' }).enrich).toBe(
      true,
    );
  });

  it('reads sizes with units', () => {
    expect(parseSize('2mb')).toBe(2 * 1024 * 1024);
    expect(parseSize('512 KiB')).toBe(512 * 1024);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('lots')).toBeNull();
  });
});

describe('data directory', () => {
  it('is per user and never the current directory', () => {
    expect(defaultDataDir({}, 'linux', '/home/u')).toBe('/home/u/.local/share/stripe-events-mcp');
    expect(defaultDataDir({ XDG_DATA_HOME: '/xdg' }, 'linux', '/home/u')).toBe(
      '/xdg/stripe-events-mcp',
    );
    expect(defaultDataDir({ XDG_DATA_HOME: 'relative' }, 'linux', '/home/u')).toBe(
      '/home/u/.local/share/stripe-events-mcp',
    );
    expect(defaultDataDir({}, 'darwin', '/Users/u')).toBe(
      '/Users/u/Library/Application Support/stripe-events-mcp',
    );
  });

  it('refuses a directory it cannot write, naming the setting', () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'a-file');
    fs.writeFileSync(file, '');
    const error = configError(() => ensureWritableDir(path.join(file, 'sub')));
    expect(error.message).toMatch(
      /--data-dir \/ STRIPE_EVENTS_DATA_DIR: cannot write to .* \(ENOTDIR\)/,
    );
    tmp.remove();
  });

  it('creates a dev secret once, readable only by its owner, and reuses it', () => {
    const tmp = tempDir();
    const first = loadOrCreateDevSecret(tmp.dir);
    expect(first.created).toBe(true);
    // Letters and digits only, like Stripe's: a double-click selects all of it.
    expect(first.secret).toMatch(/^whsec_[A-Za-z0-9]{32}$/);
    expect(fs.statSync(first.file).mode & 0o777).toBe(0o600);
    const second = loadOrCreateDevSecret(tmp.dir);
    expect(second).toEqual({ ...first, created: false });
    const others = Array.from({ length: 50 }, () => {
      const dir = tempDir();
      const { secret } = loadOrCreateDevSecret(dir.dir);
      dir.remove();
      return secret;
    });
    for (const secret of others) expect(secret).toMatch(/^whsec_[A-Za-z0-9]{32}$/);
    expect(new Set(others).size).toBe(50);
    tmp.remove();
  });

  it('keeps using a dev secret file made before secrets were letters and digits only', () => {
    const tmp = tempDir();
    const old = 'whsec_Ab-_cdEFgh12-34_5678abcdEFGHijklMNop';
    fs.writeFileSync(path.join(tmp.dir, 'dev-webhook-secret'), old + '\n', { mode: 0o600 });
    expect(loadOrCreateDevSecret(tmp.dir)).toMatchObject({ secret: old, created: false });
    tmp.remove();
  });
});

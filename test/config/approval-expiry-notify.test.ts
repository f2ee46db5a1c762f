/**
 * The config keys of approval expiry and notifications (issue #20, points 6 and 7): durations
 * with their bounds, the expiry default, the notify URLs (https, or loopback http only when the
 * file says so), and typos of these keys refused with a did-you-mean, since a misspelt key would
 * quietly leave its default in force.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigFile } from '../../src/config/file.js';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { ConfigError } from '../../src/errors.js';
import { runCli } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';

function parse(json: unknown) {
  return parseConfigFile(JSON.stringify(json), 'cfg.json');
}

function error(json: unknown): string {
  try {
    parse(json);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('durations', () => {
  it('reads a number and a unit, or seconds', () => {
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('90m')).toBe(5_400_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration(45)).toBe(45_000);
    for (const bad of ['1h30m', '1.5h', '-1h', 'h', '24 hours', '', 1.5, -3, null, true]) {
      expect(parseDuration(bad), String(bad)).toBeNull();
    }
    expect(formatDuration(86_400_000)).toBe('24h');
    expect(formatDuration(172_800_000)).toBe('2d');
    expect(formatDuration(5_400_000)).toBe('90m');
  });
});

describe('approval.expires_after, dispute_margin, on_expiry', () => {
  it('takes durations and the default to apply, as ms', () => {
    const config = parse({
      approval: { expires_after: '90m', dispute_margin: 3600, on_expiry: 'approve' },
    });
    expect(config.approval).toMatchObject({
      expires_after: 5_400_000,
      dispute_margin: 3_600_000,
      on_expiry: 'approve',
    });
    expect(parse({ approval: { dispute_margin: 0 } }).approval?.dispute_margin).toBe(0);
  });

  it('refuses a bad duration naming the path and the bounds', () => {
    expect(error({ approval: { expires_after: '24 hours' } })).toMatch(
      /\$\.approval\.expires_after: a duration from 1s to 30d/,
    );
    expect(error({ approval: { expires_after: '0s' } })).toMatch(/\$\.approval\.expires_after/);
    expect(error({ approval: { expires_after: '31d' } })).toMatch(/\$\.approval\.expires_after/);
    expect(error({ approval: { dispute_margin: '-1h' } })).toMatch(
      /\$\.approval\.dispute_margin: a duration from 0 to 30d/,
    );
    expect(error({ approval: { on_expiry: 'ignore' } })).toMatch(
      /\$\.approval\.on_expiry: either "reject" \(the default\) or "approve"/,
    );
  });

  it('refuses a typo of a key with a did-you-mean (the default would quietly apply)', () => {
    expect(error({ approval: { expires_afer: '1h' } })).toMatch(
      /\$\.approval: .*"expires_afer".*did you mean "expires_after"\?/,
    );
    expect(error({ approval: { on_expiri: 'approve' } })).toMatch(/did you mean "on_expiry"\?/);
    expect(error({ notify: { slack: { webhook: 'https://hooks.slack.com/x' } } })).toMatch(
      /\$\.notify\.slack: .*did you mean "webhook_url"\?/,
    );
    expect(error({ notfy: {} })).toMatch(/did you mean "notify"\?/);
  });
});

describe('notify', () => {
  it('takes a Slack webhook and a signed webhook over https', () => {
    const config = parse({
      notify: {
        slack: { webhook_url: 'https://hooks.slack.com/services/T/B/x' },
        webhook: { url: 'https://ops.example.com/hook', secret: 'a-long-enough-secret' },
      },
    });
    expect(config.notify?.slack?.webhook_url).toBe('https://hooks.slack.com/services/T/B/x');
  });

  it('refuses plain http, and loopback http unless allowed in the file', () => {
    expect(error({ notify: { slack: { webhook_url: 'http://hooks.example.com/x' } } })).toMatch(
      /\$\.notify\.slack\.webhook_url: must be an https URL/,
    );
    expect(
      error({
        notify: { webhook: { url: 'http://127.0.0.1:9/x', secret: 'a-long-enough-secret' } },
      }),
    ).toMatch(/\$\.notify\.webhook\.url: is plain http: allowed only .*allow_http_loopback/);
    expect(
      error({
        notify: { allow_http_loopback: true, slack: { webhook_url: 'http://10.0.0.1/x' } },
      }),
    ).toMatch(/must be an https URL/);
    expect(
      parse({
        notify: { allow_http_loopback: true, slack: { webhook_url: 'http://127.0.0.1:9/x' } },
      }).notify?.slack?.webhook_url,
    ).toBe('http://127.0.0.1:9/x');
    expect(
      error({ notify: { webhook: { url: 'https://ops.example.com/hook', secret: 'short' } } }),
    ).toMatch(/\$\.notify\.webhook\.secret: at least 16 characters/);
    expect(error({ notify: { slack: { webhook_url: 'not a url' } } })).toMatch(/is not a URL/);
  });
});

describe('a real process exits 2 before starting anything', () => {
  it('on a bad approval.expires_after, a misspelt notify key, or a bad --public-url', async () => {
    const tmp = tempDir();
    try {
      const write = (name: string, json: unknown) => {
        const file = path.join(tmp.dir, name);
        fs.writeFileSync(file, JSON.stringify(json));
        return file;
      };
      const cases: [string[], RegExp][] = [
        [
          ['--config', write('a.json', { approval: { expires_after: '1 day' } })],
          /\$\.approval\.expires_after: a duration from 1s to 30d/,
        ],
        [
          ['--config', write('b.json', { notify: { slack: { webhookurl: 'https://x.example' } } })],
          /\$\.notify\.slack: .*did you mean "webhook_url"\?/,
        ],
        [
          ['--public-url', 'https://user:pw@events.example.com'],
          /--public-url \/ PUBLIC_URL: must be a plain address/,
        ],
        [['--public-url', 'ftp://events.example.com'], /must be an http\(s\) URL/],
      ];
      for (const [args, message] of cases) {
        const run = await runCli(['serve', '--port', '0', '--data-dir', tmp.dir, ...args]);
        expect(run.code, args.join(' ')).toBe(2);
        expect(run.stderr).toMatch(message);
        expect(run.stderr).not.toContain('pw@');
      }
    } finally {
      tmp.remove();
    }
  });
});

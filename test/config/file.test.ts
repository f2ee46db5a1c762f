import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfigFile } from '../../src/config/file.js';
import { ConfigError } from '../../src/errors.js';
import { REPO_ROOT } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';

function error(json: unknown): string {
  try {
    parseConfigFile(typeof json === 'string' ? json : JSON.stringify(json), 'cfg.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config file', () => {
  it('accepts the documented shape', () => {
    const config = parseConfigFile(
      JSON.stringify({
        events: {
          'invoice.paid': { tool: 'thank_customer', description: 'Thank them.' },
          'charge.refunded': false,
        },
        dispatch: {
          type: 'http',
          url: 'https://hooks.example.com/stripe',
          secret: 'a-long-enough-secret',
        },
        approval: { tools: ['handle_dispute'], amount_over: 50000 },
      }),
      'cfg.json',
    );
    expect(config.events?.['charge.refunded']).toBe(false);
    expect(config.dispatch).toMatchObject({ type: 'http' });
  });

  it('names the JSON path and the problem', () => {
    expect(error('{oops')).toMatch(/^--config cfg.json: is not valid JSON/);
    expect(error({ events: { 'invoice.paid': { tool: 'has spaces' } } })).toMatch(
      /\$\.events\["invoice\.paid"\]\.tool: a tool name/,
    );
    expect(error({ events: { 'invoice.paid': true } })).toMatch(/\$\.events\["invoice\.paid"\]/);
    expect(error({ dispatch: { type: 'carrier-pigeon' } })).toMatch(/\$\.dispatch\.type/);
    expect(
      error({ dispatch: { type: 'http', url: 'ftp://x', secret: 'a-long-enough-secret' } }),
    ).toMatch(/\$\.dispatch\.url/);
    expect(error({ approval: { amount_over: -1 } })).toMatch(/\$\.approval\.amount_over/);
    expect(error({ surprise: 1 })).toMatch(/surprise/);
    expect(
      error({ events: { 'invoice.paid': { tool: 'same' }, 'invoice.created': { tool: 'same' } } }),
    ).toMatch(/"same" is used for both invoice.paid and invoice.created/);
  });

  it('takes a model and per-model token prices, and rejects a bad price naming its path', () => {
    const config = parseConfigFile(
      JSON.stringify({
        model: 'claude-haiku-5-5',
        pricing: { 'claude-haiku-5-5': { input_per_mtok: 0.1, output_per_mtok: 0.5 } },
      }),
      'cfg.json',
    );
    expect(config.model).toBe('claude-haiku-5-5');
    expect(config.pricing?.['claude-haiku-5-5']).toEqual({
      input_per_mtok: 0.1,
      output_per_mtok: 0.5,
    });
    expect(error({ pricing: { 'claude-x': { input_per_mtok: -1, output_per_mtok: 1 } } })).toMatch(
      /^--config cfg\.json: \$\.pricing\["claude-x"\]\.input_per_mtok: not below 0/,
    );
    expect(error({ pricing: { 'claude-x': { input_per_mtok: '3', output_per_mtok: 1 } } })).toMatch(
      /\$\.pricing\["claude-x"\]\.input_per_mtok: a number of US dollars per million tokens/,
    );
    expect(error({ pricing: { 'claude-x': { input_per_mtok: 3 } } })).toMatch(
      /\$\.pricing\["claude-x"\]\.output_per_mtok/,
    );
    expect(
      error({ pricing: { 'claude-x': { input_per_mtok: 3, output_per_mtok: 15, cache: 1 } } }),
    ).toMatch(/cache/);
    expect(error({ model: 'has spaces' })).toMatch(/\$\.model: a model id/);
  });
});

describe('the README config example', () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

  /** The section a config error points to: its heading must exist. */
  function sectionNamedByErrors(): string {
    const message = error({ nope: 1 });
    const named = /see the "([^"]+)" section of the README/.exec(message);
    expect(named, message).not.toBeNull();
    return named![1]!;
  }

  it('the section config errors name is a heading of the README', () => {
    const name = sectionNamedByErrors();
    expect(readme.split('\n')).toContain(`### ${name}`);
  });

  it('its JSON block loads with the config loader as pasted', () => {
    const name = sectionNamedByErrors();
    const section = readme.slice(readme.indexOf(`### ${name}`));
    const block = /```json\n([\s\S]*?)\n```/.exec(section);
    expect(block).not.toBeNull();
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'config.json');
      fs.writeFileSync(file, block![1]!);
      const config = loadConfigFile(file);
      expect(config.dispatch).toMatchObject({ type: 'http' });
      expect(config.events?.['charge.refunded']).toBe(false);
      expect(config.approval?.tools).toEqual(['handle_dispute']);
    } finally {
      tmp.remove();
    }
  });
});

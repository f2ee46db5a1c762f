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
    expect(error({ approval: { amount_over: -1 } })).toMatch(
      /\$\.approval\.amount_over: not below 0/,
    );
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

describe('approval.amount_over: per currency, in minor units', () => {
  const parse = (amount_over: unknown) =>
    parseConfigFile(JSON.stringify({ approval: { amount_over } }), 'cfg.json').approval;

  it('takes thresholds per lowercase currency code', () => {
    expect(parse({ usd: 50000, eur: 45000, jpy: 75000 })).toEqual({
      amount_over: { usd: 50000, eur: 45000, jpy: 75000 },
    });
    expect(parse({})).toEqual({ amount_over: {} });
  });

  it('reads the old plain number as the USD threshold', () => {
    expect(parse(50000)).toEqual({ amount_over: { usd: 50000 } });
  });

  it('refuses a code that is not three lowercase letters, and a value that is not whole minor units, naming the path', () => {
    expect(error({ approval: { amount_over: { USD: 50000 } } })).toMatch(
      /\$\.approval\.amount_over\.USD: a currency code in lowercase, as Stripe sends it \(usd, eur, jpy\)/,
    );
    expect(error({ approval: { amount_over: { dollars: 50000 } } })).toMatch(
      /\$\.approval\.amount_over\.dollars: a currency code/,
    );
    expect(error({ approval: { amount_over: { usd: -1 } } })).toMatch(
      /\$\.approval\.amount_over\.usd: not below 0/,
    );
    expect(error({ approval: { amount_over: { jpy: 1.5 } } })).toMatch(
      /\$\.approval\.amount_over\.jpy: a whole number of the currency's minor units/,
    );
    expect(error({ approval: { amount_over: { usd: '500' } } })).toMatch(
      /\$\.approval\.amount_over\.usd: a whole number/,
    );
    expect(error({ approval: { amount_over: '500' } })).toMatch(
      /\$\.approval\.amount_over: per currency, the amount in minor units/,
    );
    expect(error('{"approval": {"amount_over": {"__proto__": 1}}}')).toMatch(/refused as keys/);
  });

  it('keeps the tool-name typo check of approval.tools working beside it', () => {
    expect(
      error({ approval: { tools: ['handle_disputes'], amount_over: { usd: 50000 } } }),
    ).toMatch(
      /\$\.approval\.tools\[0\]: "handle_disputes" is not a tool of the catalog; did you mean "handle_dispute"\?/,
    );
  });
});

describe('the config example of docs/GUIDE.md', () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'GUIDE.md'), 'utf8');

  /** The section a config error points to: its heading must exist. */
  function sectionNamedByErrors(): string {
    const message = error({ nope: 1 });
    const named = /see the "([^"]+)" section of docs\/GUIDE\.md/.exec(message);
    expect(named, message).not.toBeNull();
    return named![1]!;
  }

  it('the section config errors name is a heading of docs/GUIDE.md', () => {
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
      expect(config.approval?.amount_over).toEqual({ usd: 50000, eur: 45000, jpy: 75000 });
    } finally {
      tmp.remove();
    }
  });
});

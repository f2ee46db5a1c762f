/**
 * A typo never switches a control off (issue #19): every name the config file uses — a tool in
 * `approval.tools` or `limits`, a model in `pricing`, a `module` handler's export — must name
 * something, and a key that would reach an object's prototype is refused at any depth.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LIST_PRICES, priceOf } from '../../src/agent/pricing.js';
import { composeServices, type ServiceSettings } from '../../src/compose/services.js';
import { loadServeConfig } from '../../src/config/config.js';
import { parseConfigFile, type ConfigFile } from '../../src/config/file.js';
import { checkPricing, jsonPath } from '../../src/config/names.js';
import { closest, suggest } from '../../src/config/suggest.js';
import { suggest as cliSuggest } from '../../src/cli/suggest.js';
import { moduleHandlerNames } from '../../src/dispatch/dispatch.js';
import { ConfigError } from '../../src/errors.js';
import { killLeftovers, runCli } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';

const removals: Array<() => void> = [];

function tmp(): string {
  const t = tempDir('sem-typos-');
  removals.push(t.remove);
  return t.dir;
}

afterEach(async () => {
  await killLeftovers();
  for (const remove of removals.splice(0)) remove();
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

function accepts(json: unknown): ConfigFile {
  return parseConfigFile(JSON.stringify(json), 'cfg.json');
}

const DEFAULT_TOOLS =
  'handle_dispute, retry_failed_payment, churn_outreach, log_refund, confirm_payment, fulfill_order, trial_ending_outreach, review_subscription_change, record_dispute_outcome, request_payment_action, handle_failed_payment, review_fraud_warning';

describe('tool names in the config file must be tools of the active catalog', () => {
  it('refuses a typo in approval.tools with the JSON path and a did-you-mean', () => {
    expect(fileError({ approval: { tools: ['handle_disputes'] } })).toBe(
      '--config cfg.json: $.approval.tools[0]: "handle_disputes" is not a tool of the catalog; did you mean "handle_dispute"?',
    );
    expect(fileError({ approval: { tools: ['log_refund', 'handle_dispute', 'cofnirm'] } })).toBe(
      `--config cfg.json: $.approval.tools[2]: "cofnirm" is not a tool of the catalog (its tools: ${DEFAULT_TOOLS}). Fix: name one of its tools, or map an event type to this tool under "events" (\`stripe-events-mcp catalog --config <file>\` lists them).`,
    );
  });

  it('refuses a typo in a limits key', () => {
    expect(fileError({ limits: { retry_failed_paymnet: { per_hour: 1 } } })).toBe(
      '--config cfg.json: $.limits.retry_failed_paymnet: "retry_failed_paymnet" is not a tool of the catalog; did you mean "retry_failed_payment"?',
    );
  });

  it("refuses the issue's config, which used to start with disputes dispatched unapproved", () => {
    expect(
      fileError({
        approval: { tools: ['handle_disputes'] },
        limits: { retry_failed_paymnet: { per_hour: 1 } },
      }),
    ).toMatch(/\$\.approval\.tools\[0\]: "handle_disputes" is not a tool/);
  });

  it('lists the catalog instead of guessing when no tool is close', () => {
    const message = fileError({ limits: { refund_everything: { per_hour: 1 } } });
    expect(message).toContain('$.limits.refund_everything: "refund_everything" is not a tool');
    expect(message).not.toContain('did you mean');
    expect(message).toContain(`(its tools: ${DEFAULT_TOOLS})`);
    expect(message).toContain('Fix:');
  });

  it("checks against the file's own catalog: added, renamed and removed tools", () => {
    // An added type's tool, and a renamed built-in's new name, are tools.
    const ok = accepts({
      events: {
        'invoice.paid': { tool: 'thank_customer' },
        'charge.dispute.created': { tool: 'dispute_desk' },
      },
      approval: { tools: ['dispute_desk', 'thank_customer'] },
      limits: { thank_customer: { per_hour: 5 }, dispute_desk: { per_hour: 1 } },
    });
    expect(ok.approval?.tools).toEqual(['dispute_desk', 'thank_customer']);
    // A type added without a tool name maps to a tool named after it.
    expect(() =>
      accepts({ events: { 'invoice.paid': {} }, approval: { tools: ['invoice_paid'] } }),
    ).not.toThrow();
    // The old name of a renamed tool no longer is one.
    expect(
      fileError({
        events: { 'charge.dispute.created': { tool: 'dispute_desk' } },
        approval: { tools: ['handle_dispute'] },
      }),
    ).toMatch(/^--config cfg\.json: \$\.approval\.tools\[0\]: "handle_dispute" is not a tool/);
    // Nor is a removed type's; a typo of a renamed tool gets the new name suggested.
    expect(
      fileError({ events: { 'charge.refunded': false }, limits: { log_refund: { per_hour: 1 } } }),
    ).toMatch(/\$\.limits\.log_refund: "log_refund" is not a tool of the catalog \(its tools: /);
    expect(
      fileError({
        events: { 'charge.dispute.created': { tool: 'dispute_desk' } },
        limits: { dispute_dsk: { per_hour: 1 } },
      }),
    ).toMatch(
      /\$\.limits\.dispute_dsk: "dispute_dsk" is not a tool of the catalog; did you mean "dispute_desk"\?$/,
    );
  });

  it("does not count the agent loop's own tools as catalog tools", () => {
    expect(fileError({ approval: { tools: ['ask_a_person'] } })).toMatch(
      /\$\.approval\.tools\[0\]: "ask_a_person" is not a tool of the catalog/,
    );
  });
});

describe('prototype keys are refused anywhere in the file', () => {
  const cases: [string, string, RegExp][] = [
    [
      'a limits key',
      '{"limits":{"constructor":{"per_hour":1}}}',
      /^--config cfg\.json: \$\.limits\["constructor"\]: is not a tool name: __proto__, constructor, prototype are refused/,
    ],
    [
      'a pricing key',
      '{"pricing":{"prototype":{"input_per_mtok":1,"output_per_mtok":1}}}',
      /\$\.pricing\["prototype"\]: is not a model id/,
    ],
    [
      'an events key',
      '{"events":{"constructor":{}}}',
      /\$\.events\["constructor"\]: is not an event type/,
    ],
    ['the top level', '{"__proto__":{"model":"x"}}', /^--config cfg\.json: \$\["__proto__"\]: /],
    [
      'inside an override',
      '{"events":{"invoice.paid":{"__proto__":{"tool":"x"}}}}',
      /\$\.events\["invoice\.paid"\]\["__proto__"\]: is not a key this file may use/,
    ],
    [
      'inside an array',
      '{"approval":{"tools":[{"prototype":1}]}}',
      /\$\.approval\.tools\[0\]\["prototype"\]: /,
    ],
    [
      'an unknown setting (refused for its key before the schema sees it)',
      '{"metadata":{"a":{"b":{"constructor":1}}}}',
      /\$\.metadata\.a\.b\["constructor"\]: /,
    ],
  ];
  it.each(cases)('%s', (_name, text, expected) => {
    const message = fileError(text);
    expect(message).toMatch(expected);
    expect(message).toContain('Fix: remove that key.');
  });

  it('reports the first one in the file, and survives deep nesting', () => {
    expect(fileError('{"a":{"constructor":1},"b":{"__proto__":1}}')).toMatch(
      /\$\.a\["constructor"\]/,
    );
    const deep = '{"x":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
    // Not a prototype key: the schema's own error (an unknown key), no stack overflow.
    expect(fileError(deep)).toMatch(/\$: .*x/);
  });

  it('still writes ordinary keys the usual way in paths', () => {
    expect(jsonPath(['events', 'invoice.paid', 'tool'])).toBe('$.events["invoice.paid"].tool');
    expect(jsonPath(['approval', 'tools', 0])).toBe('$.approval.tools[0]');
    expect(jsonPath(['limits', '__proto__'])).toBe('$.limits["__proto__"]');
  });
});

const PRICES = { priceOf, list: LIST_PRICES };

function pricingError(
  config: Pick<ConfigFile, 'budget' | 'pricing'>,
  model: string,
  budget = true,
): string {
  try {
    checkPricing(config, model, PRICES, '--config cfg.json', { budget });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const price = { input_per_mtok: 1, output_per_mtok: 2 };

describe('pricing and budget name the model in use', () => {
  it('refuses a daily_usd budget for a model without a price, saying how to fix it', () => {
    expect(pricingError({ budget: { daily_usd: 20 } }, 'claude-unknown-1')).toBe(
      '--config cfg.json: $.budget.daily_usd: the model in use, claude-unknown-1, has no price (none built in, none under "pricing"), so the daily budget could not be enforced. Fix: add "pricing": {"claude-unknown-1": {"input_per_mtok": …, "output_per_mtok": …}} (US dollars per million tokens), or use a model with a built-in price.',
    );
  });

  it('accepts the budget with a built-in price, a pricing entry, or a token budget only', () => {
    const ok = (config: Pick<ConfigFile, 'budget' | 'pricing'>, model: string) =>
      expect(() =>
        checkPricing(config, model, PRICES, '--config cfg.json', { budget: true }),
      ).not.toThrow();
    ok({ budget: { daily_usd: 20 } }, 'claude-sonnet-5-5');
    ok({ budget: { daily_usd: 20 } }, 'claude-haiku-4-5-20251001');
    ok({ budget: { daily_usd: 20 }, pricing: { 'claude-unknown-1': price } }, 'claude-unknown-1');
    ok({ budget: { daily_tokens: 1000 } }, 'claude-unknown-1');
    // Prices of other built-in models (and their dated snapshots) are allowed: they override.
    ok(
      { pricing: { 'claude-haiku-5-5': price, 'claude-haiku-4-5-20251001': price } },
      'claude-sonnet-5-5',
    );
    // The alias prices a dated snapshot in use, as priceOf reads it.
    ok({ budget: { daily_usd: 1 }, pricing: { 'claude-new-1': price } }, 'claude-new-1-20270101');
  });

  it('refuses a pricing key that is neither built in nor the model in use, with a did-you-mean', () => {
    expect(pricingError({ pricing: { 'claude-sonet-5-5': price } }, 'claude-sonnet-5-5')).toBe(
      '--config cfg.json: $.pricing["claude-sonet-5-5"]: "claude-sonet-5-5" is neither the model in use (claude-sonnet-5-5) nor a model with a built-in price, so it prices nothing; did you mean "claude-sonnet-5-5"?',
    );
    // A typo of a custom model in use: found before the budget, whose error would be less helpful.
    expect(
      pricingError(
        { budget: { daily_usd: 5 }, pricing: { 'acme-claude-prxy': price } },
        'acme-claude-proxy',
      ),
    ).toMatch(/\$\.pricing\["acme-claude-prxy"\]: .*; did you mean "acme-claude-proxy"\?$/);
    // Nothing close: no guess, and the fix.
    const far = pricingError({ pricing: { 'gpt-4o': price } }, 'claude-sonnet-5-5');
    expect(far).not.toContain('did you mean');
    expect(far).toContain('Fix: key it by the model in use');
  });

  it('checks pricing keys but not the budget when asked so (rehearse)', () => {
    expect(() =>
      checkPricing({ budget: { daily_usd: 1 } }, 'claude-unknown-1', PRICES, 'x', {
        budget: false,
      }),
    ).not.toThrow();
    expect(
      pricingError({ pricing: { 'claude-sonet-5-5': price } }, 'claude-sonnet-5-5', false),
    ).toMatch(/did you mean "claude-sonnet-5-5"/);
  });
});

describe('serve/agent resolve the model the loop uses, for the pricing check', () => {
  function configFile(json: unknown): string {
    const file = path.join(tmp(), 'cfg.json');
    fs.writeFileSync(file, JSON.stringify(json));
    return file;
  }

  it('--model < ANTHROPIC_MODEL < the file, only when the loop runs', () => {
    const config = configFile({ model: 'claude-haiku-5-5' });
    expect(loadServeConfig({ config, agent: true }, {}).agentModel).toBe('claude-haiku-5-5');
    expect(
      loadServeConfig({ config, agent: true }, { ANTHROPIC_MODEL: 'claude-opus-5' }).agentModel,
    ).toBe('claude-opus-5');
    expect(
      loadServeConfig(
        { config, agent: true, model: 'claude-x' },
        { ANTHROPIC_MODEL: 'claude-opus-5' },
      ).agentModel,
    ).toBe('claude-x');
    expect(loadServeConfig({ agent: true }, {}).agentModel).toBe('claude-sonnet-5-5');
    expect(loadServeConfig({ config }, {}).agentModel).toBeUndefined();
    expect(loadServeConfig({ config }, {}).configFile).toBe(config);
  });
});

describe('composeServices checks what the config names against the catalog and the model', () => {
  function settings(extra: Partial<ServiceSettings>): ServiceSettings {
    return {
      store: 'sqlite',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'x:',
      dataDir: path.join(tmp(), 'data'),
      ifMissing: 'create',
      configFile: 'cfg.json',
      ...extra,
    };
  }

  async function composeError(s: ServiceSettings): Promise<string> {
    try {
      const services = await composeServices(s);
      await services.close();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      // Refused before the store was opened: nothing was created.
      expect(fs.existsSync(s.dataDir)).toBe(false);
      return (e as Error).message;
    }
    throw new Error('expected a ConfigError');
  }

  function handlers(source: string): { dir: string; path: string } {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'handlers.mjs'), source);
    return { dir, path: './handlers.mjs' };
  }

  it('refuses a module export named after no tool, with a did-you-mean', async () => {
    const m = handlers(
      'export async function handle_disputes() {}\nexport function log_refund() {}\n',
    );
    expect(
      await composeError(
        settings({ dispatch: { type: 'module', path: m.path }, configDir: m.dir }),
      ),
    ).toBe(
      '--config cfg.json: $.dispatch.path: ./handlers.mjs exports "handle_disputes", which is not a tool of the catalog; did you mean "handle_dispute"?',
    );
  });

  it("counts a default export object's functions, not the object, and the active catalog", async () => {
    const m = handlers(
      'export default { handle_dispute() {}, thank_custmer() {}, note: "not a function" };\nexport const VERSION = 2;\n',
    );
    const message = await composeError(
      settings({
        dispatch: { type: 'module', path: m.path },
        configDir: m.dir,
        catalogOverrides: { 'invoice.paid': { tool: 'thank_customer' } },
      }),
    );
    expect(message).toMatch(
      /exports "thank_custmer", which is not a tool of the catalog; did you mean "thank_customer"\?$/,
    );
    expect(await moduleHandlerNames(m.path, m.dir)).toEqual(['handle_dispute', 'thank_custmer']);
  });

  it('lists the catalog when an export is close to no tool', async () => {
    const m = handlers('export function handle_dispute() {}\nexport function formatAmount() {}\n');
    const message = await composeError(
      settings({ dispatch: { type: 'module', path: m.path }, configDir: m.dir }),
    );
    expect(message).toContain(
      'exports "formatAmount", which is not a tool of the catalog (its tools: handle_dispute,',
    );
    expect(message).not.toContain('did you mean');
  });

  it('takes a class of static handlers as the default export', async () => {
    const m = handlers(
      'export default class Handlers { static handle_dispute() {} static log_refnd() {} }\n',
    );
    expect(await moduleHandlerNames(m.path, m.dir)).toEqual(['handle_dispute', 'log_refnd']);
    expect(
      await composeError(
        settings({ dispatch: { type: 'module', path: m.path }, configDir: m.dir }),
      ),
    ).toMatch(
      /exports "log_refnd", which is not a tool of the catalog; did you mean "log_refund"\?$/,
    );
  });

  it('starts with a module whose exports are all tools', async () => {
    const m = handlers(
      'export function handle_dispute() {}\nexport default { log_refund() {} };\n',
    );
    const services = await composeServices(
      settings({ dispatch: { type: 'module', path: m.path }, configDir: m.dir }),
    );
    expect(services.sink.kind).toBe('module');
    await services.close();
  });

  it("checks pricing and budget against the loop's model, and only when the loop runs", async () => {
    const budget = { budget: { daily_usd: 5 } };
    expect(
      await composeError(settings({ agentModel: 'claude-unknown-1', guardrails: budget })),
    ).toMatch(/^--config cfg\.json: \$\.budget\.daily_usd: the model in use, claude-unknown-1,/);
    expect(
      await composeError(
        settings({
          agentModel: 'claude-sonnet-5-5',
          guardrails: { pricing: { 'claude-sonet-5-5': price } },
        }),
      ),
    ).toMatch(/\$\.pricing\["claude-sonet-5-5"\]: .*did you mean "claude-sonnet-5-5"\?$/);
    // Without the loop (serve, stdio, the CLI) no model is in use.
    const services = await composeServices(settings({ guardrails: budget }));
    await services.close();
  });
});

describe('the did-you-mean helper is shared', () => {
  it('is the same function for the CLI and the config layer', () => {
    expect(cliSuggest).toBe(suggest);
    expect(closest('claude-sonet-5-5', Object.keys(LIST_PRICES))).toEqual(['claude-sonnet-5-5']);
    expect(closest('handle', ['handle_dispute', 'handle_failed_payment', 'log_refund'])).toEqual([
      'handle_dispute',
      'handle_failed_payment',
    ]);
  });
});

describe('a real process exits 2 on a typo, before starting anything', () => {
  async function agent(json: unknown, args: string[] = []) {
    const dir = tmp();
    const config = path.join(dir, 'cfg.json');
    fs.writeFileSync(config, JSON.stringify(json));
    const dataDir = path.join(dir, 'data');
    const result = await runCli(
      ['agent', '--config', config, '--data-dir', dataDir, '--port', '0', ...args],
      // A dummy key: the config is refused before the API is ever asked.
      { env: { ANTHROPIC_API_KEY: 'sk-ant-dummy', ANTHROPIC_BASE_URL: 'http://127.0.0.1:1' } },
    );
    expect(result.stdout).toBe('');
    // No store was opened (a name the file alone shows wrong is refused before the data dir is
    // even made; the model's price, once the agent's settings are known, before the store opens).
    expect(fs.existsSync(path.join(dataDir, 'events.db'))).toBe(false);
    return { ...result, config, dataDir };
  }

  it('agent with a typo in approval.tools', async () => {
    const r = await agent({
      approval: { tools: ['handle_disputes'] },
      limits: { retry_failed_paymnet: { per_hour: 1 } },
    });
    expect(r.code, r.stderr).toBe(2);
    expect(fs.existsSync(r.dataDir)).toBe(false);
    expect(r.stderr).toBe(
      `stripe-events-mcp: --config ${r.config}: $.approval.tools[0]: "handle_disputes" is not a tool of the catalog; did you mean "handle_dispute"?\n`,
    );
  });

  it('agent with a typo in a limits key', async () => {
    const r = await agent({ limits: { retry_failed_paymnet: { per_hour: 1 } } });
    expect(r.code, r.stderr).toBe(2);
    expect(fs.existsSync(r.dataDir)).toBe(false);
    expect(r.stderr).toBe(
      `stripe-events-mcp: --config ${r.config}: $.limits.retry_failed_paymnet: "retry_failed_paymnet" is not a tool of the catalog; did you mean "retry_failed_payment"?\n`,
    );
  });

  it('agent --model with no price under a daily_usd budget', async () => {
    const r = await agent({ budget: { daily_usd: 5 } }, ['--model', 'claude-unknown-1']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^stripe-events-mcp: --config \S+: \$\.budget\.daily_usd: the model in use, claude-unknown-1, has no price .* could not be enforced\. Fix: add "pricing": \{"claude-unknown-1": /,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it("rehearse checks each config's pricing against that config's own model", async () => {
    const dir = tmp();
    const write = (name: string, json: unknown) => {
      fs.writeFileSync(path.join(dir, name), JSON.stringify(json));
      return path.join(dir, name);
    };
    const primary = write('a.json', { pricing: { 'claude-sonet-5-5': price } });
    // The compare config prices its own model, which the primary does not use: that is fine.
    const other = write('b.json', {
      model: 'claude-custom-1',
      pricing: { 'claude-custom-1': price },
    });
    const env = { ANTHROPIC_API_KEY: 'sk-ant-dummy', ANTHROPIC_BASE_URL: 'http://127.0.0.1:1' };
    const out = path.join(dir, 'out');
    const bad = await runCli(['rehearse', '--config', primary, '--compare', other, '--out', out], {
      env,
    });
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toBe(
      `stripe-events-mcp: --config ${primary}: $.pricing["claude-sonet-5-5"]: "claude-sonet-5-5" is neither the model in use (claude-sonnet-5-5) nor a model with a built-in price, so it prices nothing; did you mean "claude-sonnet-5-5"?\n`,
    );
    // With the primary fixed, both pass the check and the run stops at the next missing thing.
    write('a.json', { pricing: { 'claude-sonnet-5-5': price } });
    const next = await runCli(['rehearse', '--config', primary, '--compare', other, '--out', out], {
      env,
    });
    expect(next.code, next.stderr).toBe(2);
    expect(next.stderr).toContain('STRIPE_SECRET_KEY');
    expect(fs.existsSync(out)).toBe(false);
  });
});

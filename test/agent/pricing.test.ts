import { describe, expect, it } from 'vitest';
import { costOf, LIST_PRICES, priceOf } from '../../src/agent/pricing.js';
import { DEFAULT_MODEL, loadAgentConfig } from '../../src/config/agent.js';

describe('model prices', () => {
  it('has a list price for the default model', () => {
    expect(priceOf(DEFAULT_MODEL)).not.toBeNull();
    expect(LIST_PRICES['claude-sonnet-5-5']).toEqual({ input_per_mtok: 2, output_per_mtok: 10 });
  });

  it('prices a dated snapshot as its alias, lets the config override, and knows no price for an unknown model', () => {
    expect(priceOf('claude-haiku-4-5-20251001')).toEqual(LIST_PRICES['claude-haiku-4-5']);
    const overrides = { 'claude-sonnet-5-5': { input_per_mtok: 1, output_per_mtok: 2 } };
    expect(priceOf('claude-sonnet-5-5', overrides)).toEqual({
      input_per_mtok: 1,
      output_per_mtok: 2,
    });
    expect(priceOf('my-proxy-model')).toBeNull();
    expect(
      priceOf('my-proxy-model', { 'my-proxy-model': { input_per_mtok: 0, output_per_mtok: 0 } }),
    ).toEqual({
      input_per_mtok: 0,
      output_per_mtok: 0,
    });
  });

  it('costs input and output tokens at their own rates', () => {
    const cost = costOf(
      { input_tokens: 1_000, output_tokens: 500 },
      { input_per_mtok: 2, output_per_mtok: 10 },
    );
    expect(cost).toBeCloseTo(0.002 + 0.005, 12);
  });
});

describe('the model setting', () => {
  const env = { ANTHROPIC_API_KEY: 'sk-ant-test' };
  it('takes the config file model below ANTHROPIC_MODEL and --model', () => {
    expect(loadAgentConfig({}, env).model).toBe(DEFAULT_MODEL);
    expect(loadAgentConfig({}, env, 'claude-haiku-5-5').model).toBe('claude-haiku-5-5');
    expect(
      loadAgentConfig({}, { ...env, ANTHROPIC_MODEL: 'claude-opus-5-5' }, 'claude-haiku-5-5').model,
    ).toBe('claude-opus-5-5');
    expect(loadAgentConfig({ model: 'claude-fable-5-2' }, env, 'claude-haiku-5-5').model).toBe(
      'claude-fable-5-2',
    );
  });
});

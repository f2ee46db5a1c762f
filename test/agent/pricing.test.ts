import { describe, expect, it } from 'vitest';
import { approvalReason } from '../../src/agent/approval-rule.js';
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

describe('approval rule', () => {
  const call = (name: string, amount: unknown) => ({ name, input: { amount, action: 'x' } });

  it('holds a listed tool, and an amount over the limit', () => {
    expect(approvalReason(call('handle_dispute', 100), { tools: ['handle_dispute'] })).toBe(
      'approval required for handle_dispute',
    );
    expect(approvalReason(call('retry_failed_payment', 50_001), { amount_over: 50_000 })).toBe(
      'approval required: amount 50001 is over 50000',
    );
  });

  it('lets anything else through, including an amount at the limit or not a number', () => {
    expect(
      approvalReason(call('retry_failed_payment', 50_000), { amount_over: 50_000 }),
    ).toBeNull();
    expect(approvalReason(call('retry_failed_payment', null), { amount_over: 0 })).toBeNull();
    expect(approvalReason(call('handle_dispute', 1), undefined)).toBeNull();
    expect(approvalReason(call('handle_dispute', 1), {})).toBeNull();
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

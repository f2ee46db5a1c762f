import { describe, expect, it } from 'vitest';
import { approvalReason } from '../../src/agent/approval-rule.js';
import { parseConfigFile } from '../../src/config/file.js';

/** A decided call as the loop builds it: the catalog's facts and the model's decision. */
const call = (name: string, amount: unknown, currency: unknown = 'usd') => ({
  name,
  input: { amount, currency, action: 'accept' },
});

describe('approval rule: tools', () => {
  it('holds a listed tool whatever its amount', () => {
    expect(approvalReason(call('handle_dispute', 100), { tools: ['handle_dispute'] })).toBe(
      'approval required for handle_dispute',
    );
    expect(approvalReason(call('handle_dispute', 1), undefined)).toBeNull();
    expect(approvalReason(call('handle_dispute', 1), {})).toBeNull();
  });
});

describe('approval rule: amount thresholds per currency', () => {
  const approval = { amount_over: { usd: 50_000, eur: 45_000, jpy: 75_000 } };

  it('holds a USD amount over the USD threshold, in words and in dollars', () => {
    expect(approvalReason(call('retry_failed_payment', 87_000), approval)).toBe(
      '$870.00 is over the $500.00 threshold for usd',
    );
    expect(approvalReason(call('handle_dispute', 412_000), approval)).toBe(
      '$4,120.00 is over the $500.00 threshold for usd',
    );
  });

  it('lets a USD amount at or under the threshold through', () => {
    expect(approvalReason(call('retry_failed_payment', 50_000), approval)).toBeNull();
    expect(approvalReason(call('retry_failed_payment', 49_999), approval)).toBeNull();
  });

  it('reads a JPY amount against the JPY threshold, in yen (zero-decimal)', () => {
    expect(approvalReason(call('handle_dispute', 75_000, 'jpy'), approval)).toBeNull();
    expect(approvalReason(call('handle_dispute', 80_000, 'jpy'), approval)).toBe(
      '¥80,000 is over the ¥75,000 threshold for jpy',
    );
    // Stripe sends lowercase codes; an uppercase one is the same currency.
    expect(approvalReason(call('handle_dispute', 80_000, 'JPY'), approval)).toBe(
      '¥80,000 is over the ¥75,000 threshold for jpy',
    );
  });

  it('holds an amount in a currency with no threshold (fail safe), saying which key to set', () => {
    const usdOnly = { amount_over: { usd: 50_000 } };
    // ¥10,000 is under $100, but the loop cannot know that: it waits for a person.
    expect(approvalReason(call('handle_dispute', 10_000, 'jpy'), usdOnly)).toBe(
      'no approval threshold is set for jpy: held (set approval.amount_over.jpy)',
    );
    expect(approvalReason(call('handle_dispute', 10_000, 'gbp'), approval)).toBe(
      'no approval threshold is set for gbp: held (set approval.amount_over.gbp)',
    );
    expect(approvalReason(call('handle_dispute', 10_000, null), approval)).toBe(
      'amount 10000 has no currency code, so no approval threshold applies: held',
    );
    // A currency code is never looked up through Object.prototype.
    expect(approvalReason(call('handle_dispute', 10_000, 'toS'), usdOnly)).toMatch(/held/);
  });

  it('gates nothing by amount without amount_over, for no amount, or for an amount of 0', () => {
    expect(approvalReason(call('handle_dispute', 10_000_000, 'jpy'), {})).toBeNull();
    expect(approvalReason(call('retry_failed_payment', null), approval)).toBeNull();
    expect(
      approvalReason(call('retry_failed_payment', null, 'jpy'), { amount_over: {} }),
    ).toBeNull();
    expect(approvalReason(call('churn_outreach', 0, 'jpy'), { amount_over: {} })).toBeNull();
  });

  it('reads the old plain number as USD only: USD gates as before, other currencies are held', () => {
    expect(approvalReason(call('retry_failed_payment', 50_001), { amount_over: 50_000 })).toBe(
      '$500.01 is over the $500.00 threshold for usd',
    );
    expect(
      approvalReason(call('retry_failed_payment', 50_000), { amount_over: 50_000 }),
    ).toBeNull();
    expect(approvalReason(call('retry_failed_payment', 100, 'eur'), { amount_over: 50_000 })).toBe(
      'no approval threshold is set for eur: held (set approval.amount_over.eur)',
    );
  });

  it('applies the config file as parsed: the plain number becomes {usd}', () => {
    const config = parseConfigFile(JSON.stringify({ approval: { amount_over: 50_000 } }), 'a.json');
    expect(config.approval).toEqual({ amount_over: { usd: 50_000 } });
    expect(approvalReason(call('handle_dispute', 60_000, 'jpy'), config.approval)).toMatch(
      /no approval threshold is set for jpy/,
    );
  });
});

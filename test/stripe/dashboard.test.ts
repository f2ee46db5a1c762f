import { describe, expect, it } from 'vitest';
import { dashboardUrl } from '../../src/stripe/dashboard.js';

describe('dashboardUrl', () => {
  it('links a test-mode object under /test and a live one without it', () => {
    expect(dashboardUrl({ id: 'dp_1Abc', object: 'dispute', livemode: false })).toBe(
      'https://dashboard.stripe.com/test/disputes/dp_1Abc',
    );
    expect(dashboardUrl({ id: 'dp_1Abc', object: 'dispute', livemode: true })).toBe(
      'https://dashboard.stripe.com/disputes/dp_1Abc',
    );
  });

  it.each([
    ['charge', 'ch_1', 'payments'],
    ['payment_intent', 'pi_1', 'payments'],
    ['invoice', 'in_1', 'invoices'],
    ['subscription', 'sub_1', 'subscriptions'],
    ['customer', 'cus_1', 'customers'],
    ['refund', 're_1', 'refunds'],
    ['payout', 'po_1', 'payouts'],
    ['checkout.session', 'cs_test_1', 'checkout/sessions'],
  ])('a %s goes to /%s', (object, id, path) => {
    expect(dashboardUrl({ id, object, livemode: true })).toBe(
      `https://dashboard.stripe.com/${path}/${id}`,
    );
  });

  it('falls back to the id prefix when the object type is missing or unknown', () => {
    expect(dashboardUrl({ id: 'in_9', livemode: false })).toBe(
      'https://dashboard.stripe.com/test/invoices/in_9',
    );
    expect(dashboardUrl({ id: 'sub_sched_9', object: 'mystery', livemode: true })).toBe(
      'https://dashboard.stripe.com/subscription_schedules/sub_sched_9',
    );
    expect(dashboardUrl({ id: 'sub_9', object: null, livemode: true })).toBe(
      'https://dashboard.stripe.com/subscriptions/sub_9',
    );
  });

  it('gives no link rather than a wrong one', () => {
    expect(dashboardUrl({ id: 'zz_unknown', livemode: true })).toBeNull();
    expect(dashboardUrl({ id: null, object: 'dispute', livemode: true })).toBeNull();
    // Not a Stripe id: it never reaches the URL's path.
    expect(dashboardUrl({ id: 'dp_1/../../evil', object: 'dispute', livemode: true })).toBeNull();
    expect(dashboardUrl({ id: 'dp_1?x=1', object: 'dispute', livemode: true })).toBeNull();
    // An own property only: `toString` is no Dashboard path.
    expect(dashboardUrl({ id: 'xx_1', object: 'toString', livemode: true })).toBeNull();
  });
});

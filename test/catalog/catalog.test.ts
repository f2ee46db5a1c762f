import { describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/catalog/catalog.js';
import { DEFAULT_DEFINITIONS } from '../../src/catalog/definitions.js';
import { FIXTURE_TYPES } from '../../src/stripe/fixtures.js';
import { fixed, NOW } from './fixtures.js';

const catalog = createCatalog();

/** The catalog table of docs/ARCHITECTURE.md ("Public names"): the contract. */
const ARCHITECTURE_TABLE: Record<string, string> = {
  'charge.dispute.created': 'handle_dispute',
  'invoice.payment_failed': 'retry_failed_payment',
  'customer.subscription.deleted': 'churn_outreach',
  'charge.refunded': 'log_refund',
  'payment_intent.succeeded': 'confirm_payment',
  'checkout.session.completed': 'fulfill_order',
  'customer.subscription.trial_will_end': 'trial_ending_outreach',
  'customer.subscription.updated': 'review_subscription_change',
  'charge.dispute.closed': 'record_dispute_outcome',
  'invoice.payment_action_required': 'request_payment_action',
  'payment_intent.payment_failed': 'handle_failed_payment',
  'radar.early_fraud_warning.created': 'review_fraud_warning',
};

/** Hand-written expectations of the common facts, following the amount rules of the catalog issue. */
const COMMON: Record<string, Record<string, unknown>> = {
  'charge.dispute.created': {
    amount: 12900,
    currency: 'usd',
    customer: null,
    reason: 'fraudulent',
  },
  'charge.dispute.closed': { currency: 'usd', customer: null },
  'invoice.payment_failed': { amount: 2900, currency: 'usd', customer: 'cus_RvK8mQ2xLp7Tna' },
  'invoice.payment_action_required': { currency: 'usd', customer: 'cus_RvK8mQ2xLp7Tna' },
  'customer.subscription.deleted': {
    amount: 2900,
    currency: 'usd',
    customer: 'cus_RvK8mQ2xLp7Tna',
    reason: 'cancellation_requested',
  },
  'charge.refunded': { amount: 4800, currency: 'usd', customer: 'cus_RvK8mQ2xLp7Tna' },
  'payment_intent.succeeded': { amount: 4800, currency: 'usd', reason: null },
  'checkout.session.completed': { amount: 4800, currency: 'usd', reason: null },
  'payment_intent.payment_failed': { currency: 'usd', reason: 'insufficient_funds' },
  'radar.early_fraud_warning.created': {
    amount: null,
    currency: null,
    reason: 'made_with_stolen_card',
  },
};

describe('default catalog', () => {
  it('maps exactly the types of docs/ARCHITECTURE.md to their tool names', () => {
    expect(Object.fromEntries(catalog.entries().map((d) => [d.type, d.tool]))).toEqual(
      ARCHITECTURE_TABLE,
    );
  });

  it('has a fixture for every type, so trigger can send each', () => {
    for (const type of Object.keys(ARCHITECTURE_TABLE)) expect(FIXTURE_TYPES).toContain(type);
  });

  it('gives every tool a decision: an action enum, a rationale, and a description saying what to decide', () => {
    for (const def of DEFAULT_DEFINITIONS) {
      expect(def.description, def.tool).toMatch(/\b[Dd]ecide/);
      expect(def.actions.length, def.tool).toBeGreaterThanOrEqual(2);
      const shape = def.decision.shape as Record<string, unknown>;
      expect(Object.keys(shape), def.tool).toEqual(expect.arrayContaining(['action', 'rationale']));
      for (const key of ['stripe_id', 'amount', 'currency', 'customer', 'reason']) {
        expect(Object.keys(def.facts.shape), def.tool).toContain(key);
      }
      for (const field of Object.keys(def.untrusted)) {
        expect(Object.keys(def.facts.shape), `${def.tool}.${field}`).toContain(field);
      }
    }
  });

  describe.each(Object.keys(ARCHITECTURE_TABLE))('%s', (type) => {
    const event = fixed(type);
    const call = catalog.toolCall(type, JSON.stringify(event))!;
    const def = catalog.lookup(type)!;

    it('builds its tool call from the event alone, valid against the facts schema', () => {
      expect(call.name).toBe(ARCHITECTURE_TABLE[type]);
      expect(call.input.stripe_id).toBe(event.data.object.id);
      expect(call.input).toMatchObject(COMMON[type] ?? {});
      expect(def.facts.safeParse(call.input).success).toBe(true);
      expect(Object.keys(call.input).sort()).toEqual(Object.keys(def.facts.shape).sort());
    });

    it('gives the same facts for a parsed event and its JSON text', () => {
      expect(catalog.toolCall(type, event)).toEqual(call);
    });

    it('matches its golden file', async () => {
      await expect(JSON.stringify(call, null, 2) + '\n').toMatchFileSnapshot(`golden/${type}.json`);
    });

    it('gives null facts, not errors, for an object without the fields', () => {
      const bare = { id: 'evt_bare', type, data: { object: { id: 'x_1', object: 'unknown' } } };
      const facts = catalog.toolCall(type, bare)!.input;
      expect(def.facts.safeParse(facts).success).toBe(true);
      expect(facts.stripe_id).toBe('x_1');
      for (const [key, value] of Object.entries(facts)) {
        if (key === 'stripe_id') continue;
        expect(
          [null, false, true].includes(value as never) || Array.isArray(value),
          `${type}.${key}`,
        ).toBe(true);
        if (Array.isArray(value)) expect(value).toEqual([]);
      }
    });
  });

  it('follows the amount rules: invoice amount_due, refund amount_refunded, checkout amount_total', () => {
    const invoice = fixed('invoice.payment_failed');
    invoice.data.object.amount_due = 1234;
    invoice.data.object.amount_paid = 1;
    expect(catalog.toolCall(invoice.type, invoice)!.input.amount).toBe(1234);
    const charge = fixed('charge.refunded');
    charge.data.object.amount = 5000;
    charge.data.object.amount_refunded = 1500;
    expect(catalog.toolCall(charge.type, charge)!.input.amount).toBe(1500);
    const session = fixed('checkout.session.completed');
    session.data.object.amount_subtotal = 100;
    session.data.object.amount_total = 120;
    expect(catalog.toolCall(session.type, session)!.input.amount).toBe(120);
  });

  it('sums a subscription over its items, and gives null when an item has no unit amount', () => {
    const sub = fixed('customer.subscription.deleted');
    const item = sub.data.object.items.data[0];
    sub.data.object.items.data.push({
      ...item,
      quantity: 3,
      price: { ...item.price, unit_amount: 500 },
    });
    expect(catalog.toolCall(sub.type, sub)!.input.amount).toBe(2900 + 1500);
    sub.data.object.items.data[1].price.unit_amount = null;
    expect(catalog.toolCall(sub.type, sub)!.input.amount).toBeNull();
  });

  it('writes dates as ISO-8601', () => {
    const facts = catalog.toolCall(
      'charge.dispute.created',
      fixed('charge.dispute.created'),
    )!.input;
    expect(facts.evidence_due_by).toBe(
      new Date(NOW.getTime() + 7 * 86_400_000).toISOString().replace(/\.\d+Z$/, '.000Z'),
    );
  });

  it('reads what changed from previous_attributes', () => {
    const facts = catalog.toolCall(
      'customer.subscription.updated',
      fixed('customer.subscription.updated'),
    )!.input;
    expect(facts.changed_fields).toEqual(expect.arrayContaining(['cancel_at_period_end']));
    expect(facts.previous_cancel_at_period_end).toBe(false);
    expect(facts.cancel_at_period_end).toBe(true);
  });

  it('returns null for a type it does not map, and survives an unreadable payload', () => {
    expect(catalog.toolCall('invoice.paid', fixed('invoice.paid'))).toBeNull();
    expect(catalog.toolCall('charge.refunded', '{not json')).toMatchObject({
      name: 'log_refund',
      input: { stripe_id: null, amount: null },
    });
  });
});

describe('user overrides', () => {
  it('adds a type with the common facts, renames a tool, re-describes one and removes one', () => {
    const c = createCatalog({
      'invoice.paid': { tool: 'thank_customer', description: 'Thank the customer.' },
      'charge.dispute.created': { tool: 'dispute_desk' },
      'invoice.payment_failed': { description: 'Custom words.' },
      'charge.refunded': false,
    });
    const paid = c.toolCall('invoice.paid', fixed('invoice.paid'))!;
    expect(paid.name).toBe('thank_customer');
    expect(Object.keys(paid.input).sort()).toEqual([
      'amount',
      'currency',
      'customer',
      'reason',
      'stripe_id',
    ]);
    expect(paid.input.stripe_id).toBe(fixed('invoice.paid').data.object.id);
    expect(c.lookup('invoice.paid')!.description).toBe('Thank the customer.');
    expect(c.toolCall('charge.dispute.created', fixed('charge.dispute.created'))!.name).toBe(
      'dispute_desk',
    );
    // A renamed tool keeps its facts.
    expect(
      c.toolCall('charge.dispute.created', fixed('charge.dispute.created'))!.input
        .network_reason_code,
    ).toBe('10.4');
    expect(c.lookup('invoice.payment_failed')).toMatchObject({
      tool: 'retry_failed_payment',
      description: 'Custom words.',
    });
    expect(c.lookup('charge.refunded')).toBeUndefined();
    expect(c.types()).not.toContain('charge.refunded');
    expect(c.types()).toContain('invoice.paid');
  });
});

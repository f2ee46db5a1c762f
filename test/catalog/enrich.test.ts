import { afterEach, describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/catalog/catalog.js';
import { Enricher } from '../../src/catalog/enrich.js';
import { createStripeClient } from '../../src/stripe/client.js';
import { startFakeStripe, type FakeStripe } from '../helpers/fake-stripe.js';
import { fixed } from './fixtures.js';

const catalog = createCatalog();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0)) await fn();
});

/** An Enricher over stripe-node pointed (STRIPE_API_BASE) at a fake Stripe API over HTTP. */
async function enricher(objects: Record<string, Record<string, unknown>>) {
  const fake: FakeStripe = await startFakeStripe({ objects });
  cleanups.push(() => fake.close());
  const stripe = createStripeClient({
    secretKey: fake.key,
    apiBase: fake.url,
    maxNetworkRetries: 0,
  });
  const errors: string[] = [];
  const e = new Enricher(
    {
      charge: async (id) =>
        (await stripe.charges.retrieve(id)) as unknown as Record<string, unknown>,
      customer: async (id) =>
        (await stripe.customers.retrieve(id)) as unknown as Record<string, unknown>,
    },
    { onError: (_error, what) => errors.push(what) },
  );
  return { e, fake, errors };
}

describe('enrichment', () => {
  it("adds a dispute's customer through its charge, once per charge", async () => {
    const event = fixed('charge.dispute.created');
    const facts = catalog.toolCall(event.type, event)!.input;
    expect(facts.customer).toBeNull();
    const { e, fake } = await enricher({
      [facts.charge as string]: { id: facts.charge, object: 'charge', customer: 'cus_fromcharge' },
    });
    const [a, b] = await Promise.all([e.enrich(event.type, facts), e.enrich(event.type, facts)]);
    const c = await e.enrich(event.type, facts);
    for (const enriched of [a, b, c]) expect(enriched.customer).toBe('cus_fromcharge');
    expect(facts.customer).toBeNull();
    expect(fake.requests.filter((r) => r.path.startsWith('/v1/charges/'))).toHaveLength(1);
  });

  it("adds a failed invoice's customer email when the invoice has none, and it stays untrusted", async () => {
    const event = fixed('invoice.payment_failed');
    event.data.object.customer_email = null;
    const facts = catalog.toolCall(event.type, event)!.input;
    const { e } = await enricher({
      [facts.customer as string]: {
        id: facts.customer,
        object: 'customer',
        email: 'billing@example.com',
      },
    });
    const enriched = await e.enrich(event.type, facts);
    expect(enriched.customer_email).toBe('billing@example.com');
    expect(catalog.lookup(event.type)!.untrusted.customer_email).toBe('email');
  });

  it('leaves the facts as they were when a lookup fails, and tries again next time', async () => {
    const event = fixed('charge.dispute.created');
    const facts = catalog.toolCall(event.type, event)!.input;
    const { e, fake, errors } = await enricher({});
    expect(await e.enrich(event.type, facts)).toEqual(facts);
    expect(await e.enrich(event.type, facts)).toEqual(facts);
    expect(errors).toHaveLength(2);
    expect(fake.requests.filter((r) => r.path.startsWith('/v1/charges/'))).toHaveLength(2);
  });

  it('does nothing for other types or when the fact is already there', async () => {
    const { e, fake } = await enricher({});
    const refund = fixed('charge.refunded');
    const facts = catalog.toolCall(refund.type, refund)!.input;
    expect(await e.enrich(refund.type, facts)).toBe(facts);
    const invoice = fixed('invoice.payment_failed');
    const invoiceFacts = catalog.toolCall(invoice.type, invoice)!.input;
    expect(await e.enrich(invoice.type, invoiceFacts)).toBe(invoiceFacts);
    expect(fake.requests).toHaveLength(0);
  });
});

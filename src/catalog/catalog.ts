/**
 * Which Stripe event types become work, and the tool each one calls. Definitions are data; the
 * catalog issue grows each entry with its input schema and per-type facts.
 */
export interface CatalogEntry {
  type: string;
  tool: string;
  description: string;
}

export const DEFAULT_CATALOG: readonly CatalogEntry[] = [
  {
    type: 'charge.dispute.created',
    tool: 'handle_dispute',
    description:
      'A customer disputed a charge. Decide whether to accept the dispute or counter it with evidence before the evidence due date.',
  },
  {
    type: 'invoice.payment_failed',
    tool: 'retry_failed_payment',
    description:
      "An invoice payment failed. Decide whether to let Stripe's retry schedule run, retry now, or contact the customer to update their payment method.",
  },
  {
    type: 'customer.subscription.deleted',
    tool: 'churn_outreach',
    description:
      'A subscription ended. Decide whether to reach out to the customer (and with what offer) or to let them go.',
  },
  {
    type: 'charge.refunded',
    tool: 'log_refund',
    description:
      'A charge was refunded in full or in part. Record it and decide whether anything downstream (fulfilment, access, accounting) must change.',
  },
  {
    type: 'payment_intent.succeeded',
    tool: 'confirm_payment',
    description:
      'A payment succeeded. Decide whether to confirm it to the customer or take no action.',
  },
  {
    type: 'checkout.session.completed',
    tool: 'fulfill_order',
    description:
      'A Checkout session completed. Decide whether to fulfil the order now, hold it (payment not yet settled), or flag it for review.',
  },
  {
    type: 'customer.subscription.trial_will_end',
    tool: 'trial_ending_outreach',
    description:
      "A subscription's trial ends in three days. Decide whether to remind the customer, offer an extension, or take no action.",
  },
  {
    type: 'customer.subscription.updated',
    tool: 'review_subscription_change',
    description:
      'A subscription changed (plan, quantity, status or scheduled cancellation). Decide whether the change needs follow-up.',
  },
  {
    type: 'charge.dispute.closed',
    tool: 'record_dispute_outcome',
    description:
      'A dispute was closed (won, lost or accepted). Record the outcome and decide whether follow-up is needed.',
  },
  {
    type: 'invoice.payment_action_required',
    tool: 'request_payment_action',
    description:
      'An invoice payment needs the customer to authenticate (e.g. 3-D Secure). Decide whether to send them the hosted invoice link now.',
  },
  {
    type: 'payment_intent.payment_failed',
    tool: 'handle_failed_payment',
    description:
      'A payment attempt failed. Decide whether to ask the customer for another payment method, retry, or take no action.',
  },
  {
    type: 'radar.early_fraud_warning.created',
    tool: 'review_fraud_warning',
    description:
      'A card issuer flagged a charge as likely fraud. Decide whether to refund it proactively (avoiding a dispute) or to keep it and watch.',
  },
];

export interface Catalog {
  lookup(type: string): CatalogEntry | undefined;
  entries(): readonly CatalogEntry[];
}

export function createCatalog(entries: readonly CatalogEntry[] = DEFAULT_CATALOG): Catalog {
  const byType = new Map(entries.map((e) => [e.type, e]));
  return {
    lookup: (type) => byType.get(type),
    entries: () => entries,
  };
}

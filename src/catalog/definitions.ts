import { z } from 'zod';
import { arr, at, bool, isoDate, num, obj, refId, str, stringMap, type Obj } from './extract.js';
import type { Precondition } from './precondition.js';
import { defineTool, type EventInput, type ToolDefinition } from './tool.js';

/** The default catalog: the twelve event types of docs/ARCHITECTURE.md ("Public names"), as data. */

const ESCALATE = 'escalate_to_human';

const iso = () => z.string().nullable().describe('ISO-8601 date-time, null when not set');
const text = (what: string) =>
  z.string().nullable().describe(`${what} (customer-written: untrusted)`);
const id = (what: string) => z.string().nullable().describe(what);
const metadataFact = z
  .record(z.string(), z.string())
  .nullable()
  .describe('The object metadata (set by your integration or customer input: untrusted)');

const itemSchema = z.object({
  price: z.string().nullable(),
  product: z.string().nullable(),
  nickname: z.string().nullable(),
  quantity: z.number().nullable(),
  unit_amount: z.number().nullable(),
  interval: z.string().nullable(),
});

function object(event: EventInput): Obj {
  return event.data.object;
}

/** Money fields name the amount that matters for the type; the rest is common to all. */
function common(o: Obj, amount: number | null, reason: string | null): Record<string, unknown> {
  return {
    stripe_id: str(o.id),
    amount,
    currency: str(o.currency),
    customer: refId(o.customer),
    reason,
  };
}

function subscriptionItems(o: Obj) {
  return arr(at(o, 'items', 'data')).map((raw) => {
    const item = obj(raw) ?? {};
    const price = obj(item.price) ?? {};
    return {
      price: str(price.id),
      product: refId(price.product),
      nickname: str(price.nickname),
      quantity: num(item.quantity),
      unit_amount: num(price.unit_amount),
      interval: str(at(price, 'recurring', 'interval')),
    };
  });
}

/** The recurring total of a subscription's items, when every item has a unit amount. */
function recurringTotal(o: Obj): number | null {
  const items = subscriptionItems(o);
  if (items.length === 0 || items.some((i) => i.unit_amount === null)) return null;
  return items.reduce((sum, i) => sum + i.unit_amount! * (i.quantity ?? 1), 0);
}

/** Since 2025 the billing period lives on the items; older API versions keep it on the subscription. */
function periodEnd(o: Obj): string | null {
  return isoDate(at(o, 'items', 'data', 0, 'current_period_end') ?? o.current_period_end);
}

function invoiceSubscription(o: Obj): string | null {
  return (
    refId(at(o, 'parent', 'subscription_details', 'subscription')) ??
    refId(o.subscription) ??
    refId(at(o, 'lines', 'data', 0, 'parent', 'subscription_item_details', 'subscription'))
  );
}

const invoiceFacts = {
  invoice_number: id('Invoice number'),
  status: id('Invoice status'),
  billing_reason: id('Why the invoice was created (subscription_cycle, manual, …)'),
  attempt_count: z.number().int().nullable().describe('Payment attempts made so far'),
  next_payment_attempt: iso().describe(
    "When Stripe's retry schedule tries again; null if it will not",
  ),
  amount_paid: z.number().int().nullable(),
  amount_remaining: z.number().int().nullable(),
  due_date: iso(),
  hosted_invoice_url: id('Page where the customer can pay or authenticate'),
  subscription: id('Subscription id (sub_…) when the invoice bills one'),
  customer_email: text('Billing email'),
  customer_name: text('Billing name'),
  lines_summary: text('The invoice lines, one per line: quantity × description (amount)'),
};

function invoiceExtract(event: EventInput): Record<string, unknown> {
  const o = object(event);
  const lines = arr(at(o, 'lines', 'data'))
    .map((raw) => {
      const line = obj(raw) ?? {};
      return `${num(line.quantity) ?? 1} × ${str(line.description) ?? '(no description)'} (${num(line.amount) ?? '?'})`;
    })
    .join('\n');
  return {
    ...common(o, num(o.amount_due), str(at(o, 'last_finalization_error', 'code'))),
    invoice_number: str(o.number),
    status: str(o.status),
    billing_reason: str(o.billing_reason),
    attempt_count: num(o.attempt_count),
    next_payment_attempt: isoDate(o.next_payment_attempt),
    amount_paid: num(o.amount_paid),
    amount_remaining: num(o.amount_remaining),
    due_date: isoDate(o.due_date),
    hosted_invoice_url: str(o.hosted_invoice_url),
    subscription: invoiceSubscription(o),
    customer_email: str(o.customer_email),
    customer_name: str(o.customer_name),
    lines_summary: lines || null,
  };
}

/** An invoice still waiting for money: not paid (or voided) since the event. */
const INVOICE_STILL_DUE: Precondition = [
  { field: 'status', in: ['open'] },
  { field: 'amount_remaining', gt: 0 },
];

const INVOICE_UNTRUSTED = {
  customer_email: 'email',
  customer_name: 'name',
  lines_summary: 'text',
} as const;

const disputeFacts = {
  charge: id('The disputed charge (ch_…)'),
  payment_intent: id('The payment intent (pi_…)'),
  status: id('Dispute status (needs_response, warning_needs_response, under_review, won, lost, …)'),
  evidence_due_by: iso().describe('Deadline to submit evidence'),
  has_evidence: z.boolean().nullable(),
  submission_count: z.number().int().nullable(),
  network_reason_code: id("The card network's reason code (e.g. Visa 10.4)"),
  card_brand: id('Card brand'),
  is_charge_refundable: z.boolean().nullable().describe('Whether the charge can still be refunded'),
  evidence_customer_name: text('Customer name given as evidence'),
  evidence_customer_email: text('Customer email given as evidence'),
  evidence_product_description: text('Product description given as evidence'),
  metadata: metadataFact,
};

function disputeExtract(event: EventInput): Record<string, unknown> {
  const o = object(event);
  const evidence = obj(o.evidence) ?? {};
  return {
    ...common(o, num(o.amount), str(o.reason)),
    charge: refId(o.charge),
    payment_intent: refId(o.payment_intent),
    status: str(o.status),
    evidence_due_by: isoDate(at(o, 'evidence_details', 'due_by')),
    has_evidence: bool(at(o, 'evidence_details', 'has_evidence')),
    submission_count: num(at(o, 'evidence_details', 'submission_count')),
    network_reason_code: str(at(o, 'payment_method_details', 'card', 'network_reason_code')),
    card_brand: str(at(o, 'payment_method_details', 'card', 'brand')),
    is_charge_refundable: bool(o.is_charge_refundable),
    evidence_customer_name: str(evidence.customer_name),
    evidence_customer_email: str(evidence.customer_email_address),
    evidence_product_description: str(evidence.product_description),
    metadata: stringMap(o.metadata),
  };
}

const DISPUTE_UNTRUSTED = {
  evidence_customer_name: 'name',
  evidence_customer_email: 'email',
  evidence_product_description: 'text',
  metadata: 'text',
} as const;

const subscriptionFacts = {
  status: id('Subscription status'),
  items: z.array(itemSchema).describe('What the subscription bills for'),
  current_period_end: iso(),
  cancel_at_period_end: z.boolean().nullable(),
  cancel_at: iso(),
  canceled_at: iso(),
  ended_at: iso(),
  cancellation_feedback: id("The customer's feedback choice (too_expensive, missing_features, …)"),
  cancellation_comment: text("The customer's comment when cancelling"),
  metadata: metadataFact,
};

function subscriptionExtract(event: EventInput): Record<string, unknown> {
  const o = object(event);
  const details = obj(o.cancellation_details) ?? {};
  return {
    ...common(o, recurringTotal(o), str(details.reason)),
    status: str(o.status),
    items: subscriptionItems(o),
    current_period_end: periodEnd(o),
    cancel_at_period_end: bool(o.cancel_at_period_end),
    cancel_at: isoDate(o.cancel_at),
    canceled_at: isoDate(o.canceled_at),
    ended_at: isoDate(o.ended_at),
    cancellation_feedback: str(details.feedback),
    cancellation_comment: str(details.comment),
    metadata: stringMap(o.metadata),
  };
}

const SUBSCRIPTION_UNTRUSTED = { cancellation_comment: 'text', metadata: 'text' } as const;

const paymentIntentFacts = {
  status: id('Payment intent status'),
  amount_received: z.number().int().nullable(),
  latest_charge: id('The latest charge (ch_…)'),
  payment_method_types: z.array(z.string()),
  receipt_email: text('Receipt email'),
  description: text('Payment description'),
  metadata: metadataFact,
};

function paymentIntentBase(o: Obj, reason: string | null): Record<string, unknown> {
  return {
    ...common(o, num(o.amount), reason),
    status: str(o.status),
    amount_received: num(o.amount_received),
    latest_charge: refId(o.latest_charge),
    payment_method_types: arr(o.payment_method_types).filter((t) => typeof t === 'string'),
    receipt_email: str(o.receipt_email),
    description: str(o.description),
    metadata: stringMap(o.metadata),
  };
}

const PAYMENT_INTENT_UNTRUSTED = {
  receipt_email: 'email',
  description: 'text',
  metadata: 'text',
} as const;

export const DEFAULT_DEFINITIONS: readonly ToolDefinition[] = [
  defineTool({
    type: 'charge.dispute.created',
    tool: 'handle_dispute',
    description:
      'A customer disputed a charge. Decide whether to accept the dispute (the disputed amount and the dispute fee are lost), counter it with evidence before evidence_due_by, or hand it to a person.',
    facts: disputeFacts,
    untrusted: DISPUTE_UNTRUSTED,
    actions: ['accept', 'submit_evidence', ESCALATE],
    extraDecision: {
      evidence_summary: z
        .string()
        .optional()
        .describe('With submit_evidence: the evidence to gather and the argument to make'),
    },
    precondition: [
      { field: 'status', in: ['needs_response', 'warning_needs_response'] },
      { field: 'evidence_details.due_by', after_now: true },
    ],
    extract: disputeExtract,
  }),
  defineTool({
    type: 'invoice.payment_failed',
    tool: 'retry_failed_payment',
    description:
      "An invoice payment failed. Decide whether to let Stripe's automatic retries run (see next_payment_attempt), retry now, or contact the customer to update their payment method.",
    facts: invoiceFacts,
    untrusted: INVOICE_UNTRUSTED,
    actions: ['wait_for_automatic_retry', 'retry_now', 'contact_customer', ESCALATE],
    messagesCustomer: true,
    precondition: INVOICE_STILL_DUE,
    extract: invoiceExtract,
  }),
  defineTool({
    type: 'customer.subscription.deleted',
    tool: 'churn_outreach',
    description:
      'A subscription ended. Decide whether to reach out to the customer (a win-back offer or a feedback request) or to let them go, considering the cancellation reason, feedback and comment.',
    facts: subscriptionFacts,
    untrusted: SUBSCRIPTION_UNTRUSTED,
    actions: ['send_winback_offer', 'request_feedback', 'no_action', ESCALATE],
    messagesCustomer: true,
    extraDecision: { offer: z.string().optional().describe('With send_winback_offer: the offer') },
    precondition: [{ field: 'status', in: ['canceled'] }],
    extract: subscriptionExtract,
  }),
  defineTool({
    type: 'charge.refunded',
    tool: 'log_refund',
    description:
      'A charge was refunded, fully or in part. Record it, and decide whether fulfilment, access or accounting must change because of it.',
    facts: {
      fully_refunded: z.boolean().nullable(),
      amount_captured: z.number().int().nullable(),
      payment_intent: id('The payment intent (pi_…)'),
      refund_id: id('The latest refund (re_…), when the event carries it'),
      refund_status: id('Status of that refund'),
      receipt_email: text('Receipt email'),
      billing_name: text('Billing name'),
      description: text('Charge description'),
      metadata: metadataFact,
    },
    untrusted: {
      receipt_email: 'email',
      billing_name: 'name',
      description: 'text',
      metadata: 'text',
    },
    actions: ['record_only', 'revoke_access', 'update_fulfilment', ESCALATE],
    precondition: [{ field: 'amount_refunded', gt: 0 }],
    extract(event) {
      const o = object(event);
      const refund = obj(at(o, 'refunds', 'data', 0)) ?? {};
      return {
        ...common(o, num(o.amount_refunded), str(refund.reason)),
        fully_refunded: bool(o.refunded),
        amount_captured: num(o.amount_captured),
        payment_intent: refId(o.payment_intent),
        refund_id: str(refund.id),
        refund_status: str(refund.status),
        receipt_email: str(o.receipt_email) ?? str(at(o, 'billing_details', 'email')),
        billing_name: str(at(o, 'billing_details', 'name')),
        description: str(o.description),
        metadata: stringMap(o.metadata),
      };
    },
  }),
  defineTool({
    type: 'payment_intent.succeeded',
    tool: 'confirm_payment',
    description:
      'A payment succeeded. Decide whether to confirm it to the customer (or trigger what it paid for) or take no action.',
    facts: paymentIntentFacts,
    untrusted: PAYMENT_INTENT_UNTRUSTED,
    actions: ['send_confirmation', 'no_action', ESCALATE],
    messagesCustomer: true,
    precondition: [{ field: 'status', in: ['succeeded'] }],
    extract: (event) => paymentIntentBase(object(event), null),
  }),
  defineTool({
    type: 'checkout.session.completed',
    tool: 'fulfill_order',
    description:
      'A Checkout session completed. Decide whether to fulfil the order now, hold it until payment settles (payment_status not "paid"), or flag it for review.',
    facts: {
      payment_status: id('paid, unpaid or no_payment_required'),
      status: id('Session status'),
      mode: id('payment, subscription or setup'),
      payment_intent: id('The payment intent (pi_…)'),
      subscription: id('The subscription (sub_…) in subscription mode'),
      // A Payment Link copies it from its URL (?client_reference_id=…): whoever holds the link
      // chooses it, so it is fenced like the rest of what a customer writes.
      client_reference_id: text('Your reference for the order, as the session carries it'),
      customer_email: text('Customer email'),
      customer_name: text('Customer name'),
      customer_phone: text('Customer phone'),
      shipping_address: text('Shipping address, one line'),
      line_items_summary: text(
        'Line items when the event carries them, else the metadata "items" field, else null',
      ),
      custom_fields: z
        .array(
          z.object({ key: z.string(), label: z.string().nullable(), value: z.string().nullable() }),
        )
        .describe('Custom fields the customer filled in (untrusted)'),
      metadata: metadataFact,
    },
    untrusted: {
      client_reference_id: 'text',
      customer_email: 'email',
      customer_name: 'name',
      customer_phone: 'phone',
      shipping_address: 'address',
      line_items_summary: 'text',
      custom_fields: 'text',
      metadata: 'text',
    },
    actions: ['fulfil_now', 'hold_until_paid', 'flag_for_review'],
    precondition: [{ field: 'status', in: ['complete'] }],
    extract(event) {
      const o = object(event);
      const details = obj(o.customer_details) ?? {};
      const shipping =
        obj(at(o, 'collected_information', 'shipping_details', 'address')) ??
        obj(at(o, 'shipping_details', 'address')) ??
        obj(details.address);
      const items = arr(at(o, 'line_items', 'data'))
        .map((raw) => {
          const li = obj(raw) ?? {};
          return `${num(li.quantity) ?? 1} × ${str(li.description) ?? '(item)'} (${num(li.amount_total) ?? '?'})`;
        })
        .join('\n');
      const metadata = stringMap(o.metadata);
      return {
        ...common(o, num(o.amount_total), null),
        payment_status: str(o.payment_status),
        status: str(o.status),
        mode: str(o.mode),
        payment_intent: refId(o.payment_intent),
        subscription: refId(o.subscription),
        client_reference_id: str(o.client_reference_id),
        customer_email: str(details.email) ?? str(o.customer_email),
        customer_name: str(details.name),
        customer_phone: str(details.phone),
        shipping_address: shipping ? formatAddress(shipping) : null,
        line_items_summary: items || metadata?.items || null,
        custom_fields: arr(o.custom_fields).map((raw) => {
          const f = obj(raw) ?? {};
          const kind = str(f.type) ?? 'text';
          return {
            key: str(f.key) ?? '',
            label: str(at(f, 'label', 'custom')),
            value: str(at(f, kind, 'value')),
          };
        }),
        metadata,
      };
    },
  }),
  defineTool({
    type: 'customer.subscription.trial_will_end',
    tool: 'trial_ending_outreach',
    description:
      "A subscription's trial ends in three days. Decide whether to remind the customer (especially without a payment method on file), offer an extension, or take no action.",
    facts: {
      ...subscriptionFacts,
      trial_end: iso().describe('When the trial ends'),
      has_payment_method: z
        .boolean()
        .describe('Whether a default payment method is on file for the first charge'),
    },
    untrusted: SUBSCRIPTION_UNTRUSTED,
    actions: ['send_reminder', 'offer_extension', 'no_action'],
    messagesCustomer: true,
    precondition: [{ field: 'status', in: ['trialing'] }],
    extract(event) {
      const o = object(event);
      return {
        ...subscriptionExtract(event),
        trial_end: isoDate(o.trial_end),
        has_payment_method:
          refId(o.default_payment_method) !== null || refId(o.default_source) !== null,
      };
    },
  }),
  defineTool({
    type: 'customer.subscription.updated',
    tool: 'review_subscription_change',
    description:
      'A subscription changed: plan, quantity, status, or a scheduled cancellation (see changed_fields and previous). Decide whether the change needs follow-up.',
    facts: {
      ...subscriptionFacts,
      changed_fields: z.array(z.string()).describe('Top-level fields that changed'),
      previous_status: id('The status before the change, when it changed'),
      previous_cancel_at_period_end: z.boolean().nullable(),
    },
    untrusted: SUBSCRIPTION_UNTRUSTED,
    actions: ['no_action', 'send_retention_offer', 'notify_team'],
    messagesCustomer: true,
    precondition: [{ field: 'status', not_in: ['canceled', 'incomplete_expired'] }],
    extract(event) {
      const previous = obj(event.data.previous_attributes) ?? {};
      return {
        ...subscriptionExtract(event),
        changed_fields: Object.keys(previous).sort(),
        previous_status: str(previous.status),
        previous_cancel_at_period_end: bool(previous.cancel_at_period_end),
      };
    },
  }),
  defineTool({
    type: 'charge.dispute.closed',
    tool: 'record_dispute_outcome',
    description:
      'A dispute closed: won, lost, or accepted (status). Record the outcome and decide whether follow-up is needed (e.g. with the customer, or to change what let the dispute happen).',
    facts: disputeFacts,
    untrusted: DISPUTE_UNTRUSTED,
    actions: ['record_only', 'follow_up_with_customer', ESCALATE],
    precondition: [{ field: 'status', in: ['won', 'lost', 'warning_closed'] }],
    extract: disputeExtract,
  }),
  defineTool({
    type: 'invoice.payment_action_required',
    tool: 'request_payment_action',
    description:
      'An invoice payment needs the customer to act (e.g. 3-D Secure authentication). Decide whether to send them the hosted_invoice_url now, wait, or hand it to a person.',
    facts: invoiceFacts,
    untrusted: INVOICE_UNTRUSTED,
    actions: ['send_payment_link', 'wait', ESCALATE],
    messagesCustomer: true,
    precondition: INVOICE_STILL_DUE,
    extract: invoiceExtract,
  }),
  defineTool({
    type: 'payment_intent.payment_failed',
    tool: 'handle_failed_payment',
    description:
      'A payment attempt failed (see decline_code and error_message). Decide whether to ask the customer for another payment method, retry, or take no action.',
    facts: {
      ...paymentIntentFacts,
      decline_code: id("The issuer's decline code (insufficient_funds, …)"),
      error_code: id("Stripe's error code (card_declined, …)"),
      error_message: id("Stripe's explanation of the failure"),
      payment_method_type: id('card, us_bank_account, …'),
    },
    untrusted: PAYMENT_INTENT_UNTRUSTED,
    actions: ['request_new_payment_method', 'retry', 'no_action', ESCALATE],
    messagesCustomer: true,
    precondition: [{ field: 'status', in: ['requires_payment_method', 'requires_action'] }],
    extract(event) {
      const o = object(event);
      const error = obj(o.last_payment_error) ?? {};
      return {
        ...paymentIntentBase(o, str(error.decline_code) ?? str(error.code)),
        decline_code: str(error.decline_code),
        error_code: str(error.code),
        error_message: str(error.message),
        payment_method_type: str(at(error, 'payment_method', 'type')),
      };
    },
  }),
  defineTool({
    type: 'radar.early_fraud_warning.created',
    tool: 'review_fraud_warning',
    description:
      'A card issuer reported a charge as likely fraud. Decide whether to refund it now (a refunded charge cannot be disputed) or keep it and watch; actionable=false means it was already refunded or disputed.',
    facts: {
      charge: id('The charge (ch_…)'),
      payment_intent: id('The payment intent (pi_…)'),
      fraud_type: id('made_with_stolen_card, unauthorized_use_of_card, …'),
      actionable: z.boolean().nullable(),
    },
    actions: ['refund_proactively', 'keep_and_monitor', ESCALATE],
    precondition: [{ field: 'actionable', in: [true] }],
    extract(event) {
      const o = object(event);
      return {
        ...common(o, null, str(o.fraud_type)),
        charge: refId(o.charge),
        payment_intent: refId(o.payment_intent),
        fraud_type: str(o.fraud_type),
        actionable: bool(o.actionable),
      };
    },
  }),
];

/** A user-mapped type the catalog has no definition for: the common facts, a generic decision. */
export function genericDefinition(type: string, tool: string, description: string): ToolDefinition {
  return defineTool({
    type,
    tool,
    description,
    facts: {},
    actions: ['act', 'no_action', ESCALATE],
    messagesCustomer: true,
    extract(event) {
      const o = object(event);
      return common(o, num(o.amount) ?? num(o.amount_due) ?? num(o.amount_total), str(o.reason));
    },
  });
}

function formatAddress(a: Obj): string | null {
  const parts = ['line1', 'line2', 'city', 'state', 'postal_code', 'country']
    .map((k) => str(a[k]))
    .filter((p): p is string => p !== null && p !== '');
  return parts.length ? parts.join(', ') : null;
}

// Realistic snapshot webhook events for `stripe-events-mcp trigger <type>`.
//
// All fixtures tell one story: a single customer of a small online shop who
// buys physical goods through Checkout and pays a monthly "Pro" subscription.
// Object ids are fixed so events read as related; the event id and request
// ids are fresh per call. Every timestamp is derived from `now`.
import { randomInt, randomUUID } from 'node:crypto';

type Json = Record<string, unknown>;

export interface BuildOptions {
  now?: Date;
  id?: string;
  livemode?: boolean;
}

interface Ctx {
  /** Unix seconds. */
  now: number;
  livemode: boolean;
  /** "test" or "live", for ids and URLs that embed the mode. */
  mode: 'test' | 'live';
}

interface Built {
  object: Json;
  previous_attributes?: Json;
}

interface FixtureSpec {
  // Events caused by an API/Dashboard call carry a request id; events Stripe
  // emits on its own (retries, disputes, trial reminders) have a null request.
  origin: 'api' | 'automatic';
  build: (ctx: Ctx) => Built;
}

const API_VERSION = '2026-08-26.dahlia';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// ---------------------------------------------------------------------------
// The story's fixed cast.

const ACCOUNT_ID = 'acct_1QzX7hLkT3vR9mPa';

const CUSTOMER = {
  id: 'cus_RvK8mQ2xLp7Tna',
  name: 'Maya Okafor',
  email: 'maya.okafor@example.com',
  phone: '+15035550147',
  invoicePrefix: '4F7A2C9D',
} as const;

interface PlanSpec {
  product: string;
  price: string;
  name: string;
  nickname: string;
  lookupKey: string;
  unitAmount: number;
}

const PRO_PLAN: PlanSpec = {
  product: 'prod_RvK9aZq1Wm3Ye2',
  price: 'price_1QzXb2LkT3vR9mPaZk4Hc8Dq',
  name: 'Pro plan',
  nickname: 'Pro monthly',
  lookupKey: 'pro_monthly',
  unitAmount: 2900,
};

const TEAM_PLAN: PlanSpec = {
  product: 'prod_RwA5tY8uJk2Dfs',
  price: 'price_1R2f9KLkT3vR9mPaM2pTq7Xb',
  name: 'Team plan',
  nickname: 'Team monthly',
  lookupKey: 'team_monthly',
  unitAmount: 7900,
};

const PRO_SUBSCRIPTION = {
  id: 'sub_1R0aT5LkT3vR9mPaQx7NwE2c',
  itemId: 'si_RvL2hT8kPq0Wzn',
  paymentMethod: 'pm_1R0aT1LkT3vR9mPaKe3Rw6Nf',
} as const;

const TRIAL_SUBSCRIPTION = {
  id: 'sub_1R2fH8LkT3vR9mPaVb3Ks9Ty',
  itemId: 'si_RwA7cN1mXq4Lpe',
} as const;

interface CardSpec {
  brand: string;
  last4: string;
  funding: string;
  expMonth: number;
  expYear: number;
  fingerprint: string;
}

interface OrderSpec {
  orderId: string;
  description: string;
  amount: number;
  paymentIntent: string;
  charge: string;
  paymentMethod: string;
  balanceTransaction: string | null;
  card: CardSpec;
}

/** Paid through Checkout; later fully refunded. */
const ORDER_PAID: OrderSpec = {
  orderId: '1042',
  description: 'Order #1042 (2x Ceramic pour-over set, 1x Paper filters 100ct)',
  amount: 4800,
  paymentIntent: 'pi_3R1dK2LkT3vR9mPa0Hn5Ws8E',
  charge: 'ch_3R1dK2LkT3vR9mPa0vQ1Zr6U',
  paymentMethod: 'pm_1R1dJzLkT3vR9mPaC4xT7nRd',
  balanceTransaction: 'txn_3R1dK2LkT3vR9mPa0aB8Lm2F',
  card: {
    brand: 'mastercard',
    last4: '4444',
    funding: 'credit',
    expMonth: 11,
    expYear: 2029,
    fingerprint: 'Xq8vT2mNc5LrK0pW',
  },
};

/** Flagged by an early fraud warning, then disputed as fraudulent. */
const ORDER_DISPUTED: OrderSpec = {
  orderId: '1017',
  description: 'Order #1017 (Walnut desk organizer)',
  amount: 12900,
  paymentIntent: 'pi_3QyP4sLkT3vR9mPa1Fg6Tb2N',
  charge: 'ch_3QyP4sLkT3vR9mPa1Kd9Wx3C',
  paymentMethod: 'pm_1QyP4qLkT3vR9mPaRt5Vn8Hj',
  balanceTransaction: 'txn_3QyP4sLkT3vR9mPa1Ue2Pc9D',
  card: {
    brand: 'visa',
    last4: '0259',
    funding: 'credit',
    expMonth: 4,
    expYear: 2028,
    fingerprint: 'Hd3kW9pZs1QvN7yB',
  },
};

/** Declined for insufficient funds. */
const ORDER_DECLINED: OrderSpec = {
  orderId: '1051',
  description: 'Order #1051 (Stoneware mug set of 4)',
  amount: 6500,
  paymentIntent: 'pi_3R2mN8LkT3vR9mPa2Sj3Hq6V',
  charge: 'ch_3R2mN8LkT3vR9mPa2Lc7Ub1X',
  paymentMethod: 'pm_1R2mN6LkT3vR9mPaGz2Wk4Yp',
  balanceTransaction: null,
  card: {
    brand: 'visa',
    last4: '9995',
    funding: 'debit',
    expMonth: 2,
    expYear: 2027,
    fingerprint: 'Mb6rJ4tQx8ZcV2nL',
  },
};

const CHECKOUT_SESSION_SUFFIX = 'a1Qm7Rz3Kp9Lw2Xe5Tn8Vb4Hc6Jd0Fs1Gy3Uk7Pq2Mx9Wr5Na8Zt4Le6Yb0C';
const REFUND_ID = 're_3R1dK2LkT3vR9mPa0Yp4Gh7J';
const DISPUTE_ID = 'dp_1R3bW7LkT3vR9mPaE6uJc0Zs';
const EARLY_FRAUD_WARNING_ID = 'issfr_1R3aQ2LkT3vR9mPaYw8Df5Kb';

// ---------------------------------------------------------------------------
// Public helpers.

function randomBase62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62.charAt(randomInt(BASE62.length));
  return out;
}

export function newEventId(): string {
  return `evt_${randomBase62(24)}`;
}

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);
const ARRAY_INDEX = /^(?:0|[1-9]\d*)$/;

function isContainer(value: unknown): value is Json | unknown[] {
  return typeof value === 'object' && value !== null;
}

function readChild(container: Json | unknown[], segment: string): unknown {
  if (Array.isArray(container)) return container[Number(segment)];
  return Object.hasOwn(container, segment) ? container[segment] : undefined;
}

function writeChild(container: Json | unknown[], segment: string, value: unknown): void {
  if (Array.isArray(container)) container[Number(segment)] = value;
  else container[segment] = value;
}

/**
 * Sets `value` at a dot path such as "data.object.lines.data.0.amount".
 * Missing (undefined or null) intermediates are created: an array when the
 * next segment is an index, an object otherwise.
 */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const segments = path.split('.');
  for (const segment of segments) {
    if (segment === '') throw new Error(`Invalid path "${path}": empty segment`);
    if (FORBIDDEN_SEGMENTS.has(segment)) {
      throw new Error(`Invalid path "${path}": segment "${segment}" is not allowed`);
    }
  }

  let cursor: Json | unknown[] = target;
  segments.forEach((segment, i) => {
    const at = segments.slice(0, i + 1).join('.');
    if (Array.isArray(cursor)) {
      if (!ARRAY_INDEX.test(segment)) {
        throw new Error(`Invalid path "${path}": "${at}" indexes an array, expected a number`);
      }
      // Refuse holes: a sparse array serializes as nulls and hides typos.
      if (Number(segment) > cursor.length) {
        throw new Error(
          `Invalid path "${path}": index ${segment} is past the end of an array of length ${cursor.length}`,
        );
      }
    }

    const next = segments[i + 1];
    if (next === undefined) {
      writeChild(cursor, segment, value);
      return;
    }

    const child = readChild(cursor, segment);
    if (isContainer(child)) {
      cursor = child;
    } else if (child === undefined || child === null) {
      const created: Json | unknown[] = ARRAY_INDEX.test(next) ? [] : {};
      writeChild(cursor, segment, created);
      cursor = created;
    } else {
      throw new Error(`Invalid path "${path}": "${at}" is a ${typeof child}, not an object`);
    }
  });
}

/** Interprets a `--set` value as JSON when it parses, otherwise as a plain string. */
export function parseSetValue(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

// ---------------------------------------------------------------------------
// Time helpers.

function daysInMonthUTC(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** Adds calendar months, clamping to the month's last day as Stripe billing does. */
function addMonths(ts: number, months: number): number {
  const d = new Date(ts * 1000);
  const total = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12;
  const day = Math.min(d.getUTCDate(), daysInMonthUTC(year, month));
  return Date.UTC(year, month, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()) / 1000;
}

/** The monthly billing period, anchored at `anchor`, that contains `at`. */
function periodContaining(anchor: number, at: number): { start: number; end: number } {
  let start = anchor;
  let end = addMonths(anchor, 1);
  for (let n = 1; end <= at; n++) {
    start = end;
    end = addMonths(anchor, n + 1);
  }
  return { start, end };
}

// ---------------------------------------------------------------------------
// Building blocks. Each returns fresh objects so callers may mutate the
// result (e.g. with setPath) without affecting later builds.

function customerAddress(): Json {
  return {
    city: 'Portland',
    country: 'US',
    line1: '2150 Larkspur Lane',
    line2: 'Apt 3B',
    postal_code: '97214',
    state: 'OR',
  };
}

function billingDetails(): Json {
  return {
    address: customerAddress(),
    email: CUSTOMER.email,
    name: CUSTOMER.name,
    phone: CUSTOMER.phone,
    tax_id: null,
  };
}

function shipping(): Json {
  return {
    address: customerAddress(),
    carrier: 'USPS',
    name: CUSTOMER.name,
    phone: CUSTOMER.phone,
    tracking_number: null,
  };
}

function cardPaymentMethodDetails(
  card: CardSpec,
  amountAuthorized: number,
  cvcCheck: string,
): Json {
  return {
    card: {
      amount_authorized: amountAuthorized,
      authorization_code: amountAuthorized > 0 ? '482913' : null,
      brand: card.brand,
      checks: {
        address_line1_check: 'pass',
        address_postal_code_check: 'pass',
        cvc_check: cvcCheck,
      },
      country: 'US',
      exp_month: card.expMonth,
      exp_year: card.expYear,
      extended_authorization: { status: 'disabled' },
      fingerprint: card.fingerprint,
      funding: card.funding,
      incremental_authorization: { status: 'unavailable' },
      installments: null,
      last4: card.last4,
      mandate: null,
      multicapture: { status: 'unavailable' },
      network: card.brand,
      network_token: { used: false },
      network_transaction_id: amountAuthorized > 0 ? '583910274615832' : null,
      overcapture: { maximum_amount_capturable: amountAuthorized, status: 'unavailable' },
      regulated_status: 'unregulated',
      three_d_secure: null,
      wallet: null,
    },
    type: 'card',
  };
}

function receiptUrl(order: OrderSpec): string {
  const token = Buffer.from(`${ACCOUNT_ID}:${order.charge}`).toString('base64url');
  return `https://pay.stripe.com/receipts/payment/${token}`;
}

interface ChargeState {
  created: number;
  status: 'succeeded' | 'failed';
  refund?: { created: number };
  disputed?: boolean;
}

function charge(ctx: Ctx, order: OrderSpec, state: ChargeState): Json {
  const succeeded = state.status === 'succeeded';
  const refunded = state.refund !== undefined;
  const amountCaptured = succeeded ? order.amount : 0;
  const amountRefunded = refunded ? order.amount : 0;

  const object: Json = {
    id: order.charge,
    object: 'charge',
    amount: order.amount,
    amount_captured: amountCaptured,
    amount_refunded: amountRefunded,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: succeeded ? order.balanceTransaction : null,
    billing_details: billingDetails(),
    calculated_statement_descriptor: 'NORTHWIND CERAMICS',
    captured: succeeded,
    created: state.created,
    currency: 'usd',
    customer: CUSTOMER.id,
    description: order.description,
    disputed: state.disputed ?? false,
    failure_balance_transaction: null,
    failure_code: succeeded ? null : 'card_declined',
    failure_message: succeeded ? null : 'Your card has insufficient funds.',
    fraud_details: {},
    livemode: ctx.livemode,
    metadata: { order_id: order.orderId },
    on_behalf_of: null,
    outcome: succeeded
      ? {
          advice_code: null,
          network_advice_code: null,
          network_decline_code: null,
          network_status: 'approved_by_network',
          reason: null,
          risk_level: 'normal',
          risk_score: 23,
          seller_message: 'Payment complete.',
          type: 'authorized',
        }
      : {
          advice_code: 'try_again_later',
          network_advice_code: null,
          network_decline_code: '51',
          network_status: 'declined_by_network',
          reason: 'insufficient_funds',
          risk_level: 'normal',
          risk_score: 31,
          seller_message: 'The bank returned the decline code `insufficient_funds`.',
          type: 'issuer_declined',
        },
    paid: succeeded,
    payment_intent: order.paymentIntent,
    payment_method: order.paymentMethod,
    payment_method_details: cardPaymentMethodDetails(
      order.card,
      succeeded ? order.amount : 0,
      'pass',
    ),
    receipt_email: CUSTOMER.email,
    receipt_number: succeeded ? '2291-4471' : null,
    receipt_url: succeeded ? receiptUrl(order) : null,
    refunded,
    review: null,
    shipping: shipping(),
    source: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: state.status,
    transfer_data: null,
    transfer_group: null,
  };

  if (state.refund !== undefined) {
    object['refunds'] = {
      object: 'list',
      data: [
        {
          id: REFUND_ID,
          object: 'refund',
          amount: order.amount,
          balance_transaction: 'txn_3R1dK2LkT3vR9mPa0Rf6Sd3K',
          charge: order.charge,
          created: state.refund.created,
          currency: 'usd',
          customer: CUSTOMER.id,
          customer_account: null,
          destination_details: {
            card: {
              reference: '74829103847561029384751',
              reference_status: 'pending',
              reference_type: 'acquirer_reference_number',
              type: 'refund',
            },
            type: 'card',
          },
          metadata: { order_id: order.orderId },
          payment_intent: order.paymentIntent,
          payment_method: order.paymentMethod,
          reason: 'requested_by_customer',
          receipt_number: null,
          source_transfer_reversal: null,
          status: 'succeeded',
          transfer_reversal: null,
        },
      ],
      has_more: false,
      url: `/v1/charges/${order.charge}/refunds`,
    };
  }
  return object;
}

function paymentIntent(
  ctx: Ctx,
  order: OrderSpec,
  state: { created: number; status: 'succeeded' | 'requires_payment_method' },
): Json {
  const succeeded = state.status === 'succeeded';
  return {
    id: order.paymentIntent,
    object: 'payment_intent',
    amount: order.amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: succeeded ? order.amount : 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: { allow_redirects: 'always', enabled: true },
    canceled_at: null,
    cancellation_reason: null,
    capture_method: 'automatic_async',
    client_secret: `${order.paymentIntent}_secret_${randomBase62(25)}`,
    confirmation_method: 'automatic',
    created: state.created,
    currency: 'usd',
    customer: CUSTOMER.id,
    customer_account: null,
    description: order.description,
    excluded_payment_method_types: null,
    last_payment_error: succeeded
      ? null
      : {
          advice_code: 'try_again_later',
          charge: order.charge,
          code: 'card_declined',
          decline_code: 'insufficient_funds',
          doc_url: 'https://docs.stripe.com/error-codes/card-declined',
          message: 'Your card has insufficient funds.',
          network_decline_code: '51',
          payment_method: {
            id: order.paymentMethod,
            object: 'payment_method',
            billing_details: billingDetails(),
            card: {
              brand: order.card.brand,
              country: 'US',
              exp_month: order.card.expMonth,
              exp_year: order.card.expYear,
              fingerprint: order.card.fingerprint,
              funding: order.card.funding,
              last4: order.card.last4,
            },
            created: state.created,
            customer: CUSTOMER.id,
            livemode: ctx.livemode,
            metadata: {},
            type: 'card',
          },
          type: 'card_error',
        },
    latest_charge: order.charge,
    livemode: ctx.livemode,
    metadata: { order_id: order.orderId },
    next_action: null,
    on_behalf_of: null,
    payment_method: succeeded ? order.paymentMethod : null,
    payment_method_configuration_details: null,
    payment_method_options: {
      card: {
        installments: null,
        mandate_options: null,
        network: null,
        request_three_d_secure: 'automatic',
      },
    },
    payment_method_types: ['card'],
    processing: null,
    receipt_email: CUSTOMER.email,
    review: null,
    setup_future_usage: null,
    shipping: shipping(),
    source: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: state.status,
    transfer_data: null,
    transfer_group: null,
  };
}

function price(ctx: Ctx, plan: PlanSpec): Json {
  return {
    id: plan.price,
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: ctx.now - 240 * DAY,
    currency: 'usd',
    custom_unit_amount: null,
    livemode: ctx.livemode,
    lookup_key: plan.lookupKey,
    metadata: {},
    nickname: plan.nickname,
    product: plan.product,
    recurring: {
      interval: 'month',
      interval_count: 1,
      meter: null,
      trial_period_days: null,
      usage_type: 'licensed',
    },
    tax_behavior: 'exclusive',
    tiers_mode: null,
    transform_quantity: null,
    type: 'recurring',
    unit_amount: plan.unitAmount,
    unit_amount_decimal: String(plan.unitAmount),
  };
}

function legacyPlan(ctx: Ctx, plan: PlanSpec): Json {
  return {
    id: plan.price,
    object: 'plan',
    active: true,
    amount: plan.unitAmount,
    amount_decimal: String(plan.unitAmount),
    billing_scheme: 'per_unit',
    created: ctx.now - 240 * DAY,
    currency: 'usd',
    interval: 'month',
    interval_count: 1,
    livemode: ctx.livemode,
    metadata: {},
    meter: null,
    nickname: plan.nickname,
    product: plan.product,
    tiers_mode: null,
    transform_usage: null,
    trial_period_days: null,
    usage_type: 'licensed',
  };
}

interface SubscriptionState {
  id: string;
  itemId: string;
  plan: PlanSpec;
  quantity: number;
  created: number;
  period: { start: number; end: number };
  status: 'active' | 'trialing' | 'canceled' | 'past_due';
  trial?: { start: number; end: number };
  cancelAtPeriodEnd?: boolean;
  canceledAt?: number;
  endedAt?: number;
  cancellation?: { reason: string; feedback: string; comment: string };
  latestInvoice: string | null;
  defaultPaymentMethod: string | null;
}

function subscriptionItem(ctx: Ctx, state: SubscriptionState): Json {
  return {
    id: state.itemId,
    object: 'subscription_item',
    billing_thresholds: null,
    created: state.created,
    current_period_end: state.period.end,
    current_period_start: state.period.start,
    discounts: [],
    metadata: {},
    plan: legacyPlan(ctx, state.plan),
    price: price(ctx, state.plan),
    quantity: state.quantity,
    subscription: state.id,
    tax_rates: [],
  };
}

function subscription(ctx: Ctx, state: SubscriptionState): Json {
  const cancelAtPeriodEnd = state.cancelAtPeriodEnd ?? false;
  return {
    id: state.id,
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: true, liability: { type: 'self' } },
    billing_cycle_anchor: state.trial?.end ?? state.created,
    billing_cycle_anchor_config: null,
    billing_thresholds: null,
    cancel_at: cancelAtPeriodEnd ? state.period.end : null,
    cancel_at_period_end: cancelAtPeriodEnd,
    canceled_at: state.canceledAt ?? null,
    cancellation_details: {
      comment: state.cancellation?.comment ?? null,
      feedback: state.cancellation?.feedback ?? null,
      feedback_option: null,
      reason: state.cancellation?.reason ?? null,
    },
    collection_method: 'charge_automatically',
    created: state.created,
    currency: 'usd',
    customer: CUSTOMER.id,
    customer_account: null,
    days_until_due: null,
    default_payment_method: state.defaultPaymentMethod,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    ended_at: state.endedAt ?? null,
    invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
    items: {
      object: 'list',
      data: [subscriptionItem(ctx, state)],
      has_more: false,
      total_count: 1,
      url: `/v1/subscription_items?subscription=${state.id}`,
    },
    latest_invoice: state.latestInvoice,
    livemode: ctx.livemode,
    metadata: { signup_channel: 'pricing_page' },
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: {
      payment_method_options: null,
      payment_method_types: null,
      save_default_payment_method: 'on_subscription',
    },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: state.created,
    status: state.status,
    test_clock: null,
    transfer_data: null,
    trial_end: state.trial?.end ?? null,
    trial_settings: { end_behavior: { missing_payment_method: 'cancel' } },
    trial_start: state.trial?.start ?? null,
  };
}

interface InvoiceState {
  id: string;
  lineId: string;
  sequence: number;
  /** Start of the billing period the invoice charges for (also its creation time). */
  cycleStart: number;
  status: 'open' | 'paid';
  attemptCount: number;
  nextPaymentAttempt: number | null;
  paidAt: number | null;
}

function invoice(ctx: Ctx, state: InvoiceState): Json {
  const plan = PRO_PLAN;
  const amount = plan.unitAmount;
  const paid = state.status === 'paid';
  const finalizedAt = state.cycleStart + HOUR;
  const cycleEnd = addMonths(state.cycleStart, 1);
  const token = `${ctx.mode}_${Buffer.from(`${ACCOUNT_ID}/${state.id}`).toString('base64url')}`;

  return {
    id: state.id,
    object: 'invoice',
    account_country: 'US',
    account_name: 'Northwind Ceramics',
    account_tax_ids: null,
    amount_due: amount,
    amount_overpaid: 0,
    amount_paid: paid ? amount : 0,
    amount_remaining: paid ? 0 : amount,
    amount_shipping: 0,
    application: null,
    attempt_count: state.attemptCount,
    attempted: state.attemptCount > 0,
    auto_advance: !paid,
    automatic_tax: {
      disabled_reason: null,
      enabled: false,
      liability: null,
      provider: null,
      status: null,
    },
    automatically_finalizes_at: null,
    billing_reason: 'subscription_cycle',
    collection_method: 'charge_automatically',
    created: state.cycleStart,
    currency: 'usd',
    custom_fields: null,
    customer: CUSTOMER.id,
    customer_account: null,
    customer_address: customerAddress(),
    customer_email: CUSTOMER.email,
    customer_name: CUSTOMER.name,
    customer_phone: CUSTOMER.phone,
    customer_shipping: null,
    customer_tax_exempt: 'none',
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: finalizedAt,
    ending_balance: 0,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: `https://invoice.stripe.com/i/${ACCOUNT_ID}/${token}?s=ap`,
    invoice_pdf: `https://pay.stripe.com/invoice/${ACCOUNT_ID}/${token}/pdf?s=ap`,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    lines: {
      object: 'list',
      data: [
        {
          id: state.lineId,
          object: 'line_item',
          amount,
          currency: 'usd',
          description: `1 × ${plan.name} (at $${(amount / 100).toFixed(2)} / month)`,
          discount_amounts: [],
          discountable: true,
          discounts: [],
          invoice: state.id,
          livemode: ctx.livemode,
          metadata: {},
          parent: {
            invoice_item_details: null,
            subscription_item_details: {
              invoice_item: null,
              proration: false,
              proration_details: { credited_items: null },
              subscription: PRO_SUBSCRIPTION.id,
              subscription_item: PRO_SUBSCRIPTION.itemId,
            },
            type: 'subscription_item_details',
          },
          period: { end: cycleEnd, start: state.cycleStart },
          pretax_credit_amounts: [],
          // Since the 2025 "basil" API the line's price lives under pricing.
          pricing: {
            price_details: { price: plan.price, product: plan.product },
            type: 'price_details',
            unit_amount_decimal: String(amount),
          },
          quantity: 1,
          subtotal: amount,
          taxes: [],
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/invoices/${state.id}/lines`,
    },
    livemode: ctx.livemode,
    metadata: {},
    next_payment_attempt: state.nextPaymentAttempt,
    number: `${CUSTOMER.invoicePrefix}-${String(state.sequence).padStart(4, '0')}`,
    on_behalf_of: null,
    parent: {
      quote_details: null,
      subscription_details: {
        metadata: { signup_channel: 'pricing_page' },
        subscription: PRO_SUBSCRIPTION.id,
      },
      type: 'subscription_details',
    },
    payment_settings: {
      default_mandate: null,
      payment_method_options: null,
      payment_method_types: null,
    },
    // For a licensed subscription the invoice period is the one just ended.
    period_end: state.cycleStart,
    period_start: addMonths(state.cycleStart, -1),
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: paid ? '2291-4486' : null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: state.status,
    status_transitions: {
      finalized_at: finalizedAt,
      marked_uncollectible_at: null,
      paid_at: state.paidAt,
      voided_at: null,
    },
    subtotal: amount,
    subtotal_excluding_tax: amount,
    test_clock: null,
    total: amount,
    total_discount_amounts: [],
    total_excluding_tax: amount,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: state.cycleStart + 1,
  };
}

type DisputeStage = 'created' | 'closed';

function dispute(ctx: Ctx, stage: DisputeStage): Json {
  const order = ORDER_DISPUTED;
  const closed = stage === 'closed';
  // A closed dispute was opened weeks ago; a new one opens now.
  const created = closed ? ctx.now - 45 * DAY : ctx.now;
  const dueBy = created + 7 * DAY;
  const withdrawal = {
    id: 'txn_1R3bW8LkT3vR9mPaNw4Qy7Hd',
    object: 'balance_transaction',
    amount: -order.amount,
    available_on: created + 2 * DAY,
    created,
    currency: 'usd',
    description: `Chargeback withdrawal for ${order.charge}`,
    fee: 1500,
    fee_details: [
      {
        amount: 1500,
        application: null,
        currency: 'usd',
        description: 'Dispute fee',
        type: 'stripe_fee',
      },
    ],
    net: -order.amount - 1500,
    reporting_category: 'dispute',
    source: DISPUTE_ID,
    status: closed ? 'available' : 'pending',
    type: 'adjustment',
  };
  const reinstatement = {
    id: 'txn_1R9kE2LkT3vR9mPaTz6Vb1Mc',
    object: 'balance_transaction',
    amount: order.amount,
    available_on: ctx.now + 2 * DAY,
    created: ctx.now,
    currency: 'usd',
    description: `Chargeback reversal for ${order.charge}`,
    fee: -1500,
    fee_details: [
      {
        amount: -1500,
        application: null,
        currency: 'usd',
        description: 'Dispute fee refund',
        type: 'stripe_fee',
      },
    ],
    net: order.amount + 1500,
    reporting_category: 'dispute_reversal',
    source: DISPUTE_ID,
    status: 'pending',
    type: 'adjustment',
  };

  return {
    id: DISPUTE_ID,
    object: 'dispute',
    amount: order.amount,
    balance_transactions: closed ? [withdrawal, reinstatement] : [withdrawal],
    charge: order.charge,
    created,
    currency: 'usd',
    enhanced_eligibility_types: ['visa_compelling_evidence_3'],
    evidence: {
      access_activity_log: null,
      billing_address: '2150 Larkspur Lane, Apt 3B, Portland, OR 97214, US',
      cancellation_policy: null,
      cancellation_policy_disclosure: null,
      cancellation_rebuttal: null,
      customer_communication: null,
      customer_email_address: CUSTOMER.email,
      customer_name: CUSTOMER.name,
      customer_purchase_ip: '203.0.113.42',
      customer_signature: null,
      duplicate_charge_documentation: null,
      duplicate_charge_explanation: null,
      duplicate_charge_id: null,
      enhanced_evidence: {},
      product_description:
        'Handmade walnut desk organizer with three compartments and a phone stand. Shipped via USPS Priority Mail.',
      receipt: closed ? 'file_1R4cF3LkT3vR9mPaJh2Ws8Kq' : null,
      refund_policy: null,
      refund_policy_disclosure: null,
      refund_refusal_explanation: null,
      service_date: null,
      service_documentation: null,
      shipping_address: closed ? '2150 Larkspur Lane, Apt 3B, Portland, OR 97214, US' : null,
      shipping_carrier: closed ? 'USPS' : null,
      shipping_date: closed
        ? new Date((created - 19 * DAY) * 1000).toISOString().slice(0, 10)
        : null,
      shipping_documentation: null,
      shipping_tracking_number: closed ? '9405511899223197428490' : null,
      uncategorized_file: null,
      uncategorized_text: closed
        ? "Order was delivered to the cardholder's billing address and signed for. The same card was used for two prior undisputed orders."
        : null,
    },
    evidence_details: {
      due_by: dueBy,
      enhanced_eligibility: {
        visa_compelling_evidence_3: {
          required_actions: closed ? [] : ['missing_prior_undisputed_transactions'],
          status: closed ? 'qualified' : 'requires_action',
        },
      },
      has_evidence: closed,
      past_due: false,
      submission_count: closed ? 1 : 0,
    },
    is_charge_refundable: false,
    livemode: ctx.livemode,
    metadata: { order_id: order.orderId },
    payment_intent: order.paymentIntent,
    payment_method_details: {
      card: {
        brand: 'visa',
        case_type: 'chargeback',
        network: 'visa',
        network_reason_code: '10.4',
      },
      type: 'card',
    },
    reason: 'fraudulent',
    status: closed ? 'won' : 'needs_response',
  };
}

function checkoutSession(ctx: Ctx): Json {
  const order = ORDER_PAID;
  const created = ctx.now - 4 * MINUTE;
  return {
    id: `cs_${ctx.mode}_${CHECKOUT_SESSION_SUFFIX}`,
    object: 'checkout.session',
    adaptive_pricing: { enabled: false },
    after_expiration: null,
    allow_promotion_codes: true,
    amount_subtotal: order.amount,
    amount_total: order.amount,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
    billing_address_collection: 'required',
    cancel_url: 'https://shop.example.com/cart',
    client_reference_id: `order_${order.orderId}`,
    client_secret: null,
    collected_information: {
      business_name: null,
      individual_name: null,
      shipping_details: { address: customerAddress(), name: CUSTOMER.name },
    },
    consent: null,
    consent_collection: null,
    created,
    currency: 'usd',
    currency_conversion: null,
    custom_fields: [
      {
        key: 'gift_message',
        label: { custom: 'Gift message (optional)', type: 'custom' },
        optional: true,
        text: {
          default_value: null,
          maximum_length: 200,
          minimum_length: null,
          value: 'Happy housewarming, Sam! Enjoy slow mornings with good coffee.',
        },
        type: 'text',
      },
    ],
    custom_text: {
      after_submit: null,
      shipping_address: null,
      submit: null,
      terms_of_service_acceptance: null,
    },
    customer: CUSTOMER.id,
    customer_account: null,
    customer_creation: null,
    customer_details: {
      address: customerAddress(),
      business_name: null,
      email: CUSTOMER.email,
      individual_name: null,
      name: CUSTOMER.name,
      phone: CUSTOMER.phone,
      tax_exempt: 'none',
      tax_ids: [],
    },
    customer_email: null,
    discounts: [],
    expires_at: created + DAY,
    invoice: null,
    invoice_creation: null,
    livemode: ctx.livemode,
    locale: 'auto',
    metadata: {
      order_id: order.orderId,
      items: '2x Ceramic pour-over set ($19.00 each); 1x Paper filters 100ct ($10.00)',
    },
    mode: 'payment',
    origin_context: null,
    payment_intent: order.paymentIntent,
    payment_link: null,
    payment_method_collection: 'if_required',
    payment_method_configuration_details: null,
    payment_method_options: { card: { request_three_d_secure: 'automatic' } },
    payment_method_types: ['card', 'link'],
    payment_status: 'paid',
    permissions: null,
    phone_number_collection: { enabled: true },
    recovered_from: null,
    saved_payment_method_options: null,
    setup_intent: null,
    shipping_address_collection: { allowed_countries: ['US', 'CA'] },
    shipping_cost: null,
    shipping_options: [],
    status: 'complete',
    submit_type: 'pay',
    subscription: null,
    success_url: 'https://shop.example.com/orders/thanks?session_id={CHECKOUT_SESSION_ID}',
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted',
    url: null,
    wallet_options: null,
  };
}

function customer(ctx: Ctx): Json {
  return {
    id: CUSTOMER.id,
    object: 'customer',
    address: customerAddress(),
    balance: 0,
    created: ctx.now,
    currency: null,
    customer_account: null,
    default_source: null,
    delinquent: false,
    description: null,
    discount: null,
    email: CUSTOMER.email,
    invoice_prefix: CUSTOMER.invoicePrefix,
    invoice_settings: {
      custom_fields: null,
      default_payment_method: null,
      footer: null,
      rendering_options: null,
    },
    livemode: ctx.livemode,
    metadata: { signup_source: 'storefront' },
    name: CUSTOMER.name,
    next_invoice_sequence: 1,
    phone: CUSTOMER.phone,
    preferred_locales: ['en-US'],
    shipping: { address: customerAddress(), name: CUSTOMER.name, phone: CUSTOMER.phone },
    tax_exempt: 'none',
    test_clock: null,
  };
}

// ---------------------------------------------------------------------------
// Fixtures by event type.

/** The Pro subscription, started about three months before `now`. */
function proSubscriptionState(ctx: Ctx): SubscriptionState {
  const created = ctx.now - 95 * DAY;
  return {
    id: PRO_SUBSCRIPTION.id,
    itemId: PRO_SUBSCRIPTION.itemId,
    plan: PRO_PLAN,
    quantity: 1,
    created,
    period: periodContaining(created, ctx.now),
    status: 'active',
    latestInvoice: 'in_1R5dH7LkT3vR9mPaWc4Nf2Tb',
    defaultPaymentMethod: PRO_SUBSCRIPTION.paymentMethod,
  };
}

function paidInvoiceFixture(ctx: Ctx): Built {
  return {
    object: invoice(ctx, {
      id: 'in_1R5dH7LkT3vR9mPaWc4Nf2Tb',
      lineId: 'il_1R5dH7LkT3vR9mPaXs8Gk1Vr',
      sequence: 4,
      cycleStart: ctx.now - HOUR,
      status: 'paid',
      attemptCount: 1,
      nextPaymentAttempt: null,
      paidAt: ctx.now,
    }),
  };
}

const FIXTURES = new Map<string, FixtureSpec>([
  [
    'charge.dispute.created',
    { origin: 'automatic', build: (ctx) => ({ object: dispute(ctx, 'created') }) },
  ],
  [
    'charge.dispute.closed',
    { origin: 'automatic', build: (ctx) => ({ object: dispute(ctx, 'closed') }) },
  ],
  [
    'radar.early_fraud_warning.created',
    {
      origin: 'automatic',
      build: (ctx) => ({
        object: {
          id: EARLY_FRAUD_WARNING_ID,
          object: 'radar.early_fraud_warning',
          actionable: true,
          charge: ORDER_DISPUTED.charge,
          created: ctx.now,
          fraud_type: 'made_with_stolen_card',
          livemode: ctx.livemode,
          payment_intent: ORDER_DISPUTED.paymentIntent,
        },
      }),
    },
  ],
  [
    'invoice.payment_failed',
    {
      // Smart Retries: this is the automatic second attempt.
      origin: 'automatic',
      build: (ctx) => ({
        object: invoice(ctx, {
          id: 'in_1R4bG2LkT3vR9mPaLd7Yq3Xs',
          lineId: 'il_1R4bG2LkT3vR9mPaBv5Tn9Ke',
          sequence: 3,
          cycleStart: ctx.now - 3 * DAY,
          status: 'open',
          attemptCount: 2,
          nextPaymentAttempt: ctx.now + 3 * DAY,
          paidAt: null,
        }),
      }),
    },
  ],
  [
    'invoice.payment_action_required',
    {
      origin: 'automatic',
      build: (ctx) => ({
        object: invoice(ctx, {
          id: 'in_1R4cJ9LkT3vR9mPaFm2Ur8Wd',
          lineId: 'il_1R4cJ9LkT3vR9mPaQh6Zc4Pa',
          sequence: 3,
          cycleStart: ctx.now - HOUR,
          status: 'open',
          attemptCount: 1,
          // Stripe does not retry on its own while the customer must authenticate.
          nextPaymentAttempt: null,
          paidAt: null,
        }),
      }),
    },
  ],
  ['invoice.paid', { origin: 'automatic', build: paidInvoiceFixture }],
  ['invoice.payment_succeeded', { origin: 'automatic', build: paidInvoiceFixture }],
  [
    'customer.subscription.created',
    {
      origin: 'api',
      build: (ctx) => ({
        object: subscription(ctx, {
          ...proSubscriptionState(ctx),
          created: ctx.now,
          period: { start: ctx.now, end: addMonths(ctx.now, 1) },
          latestInvoice: 'in_1R6aB3LkT3vR9mPaYe5Jp8Ls',
        }),
      }),
    },
  ],
  [
    'customer.subscription.updated',
    {
      // The customer scheduled a cancellation from the billing portal.
      origin: 'api',
      build: (ctx) => {
        const state = proSubscriptionState(ctx);
        return {
          object: subscription(ctx, {
            ...state,
            cancelAtPeriodEnd: true,
            canceledAt: ctx.now,
            cancellation: {
              reason: 'cancellation_requested',
              feedback: 'missing_features',
              comment: "I need shared team folders, which the Pro plan doesn't have yet.",
            },
          }),
          previous_attributes: {
            cancel_at: null,
            cancel_at_period_end: false,
            canceled_at: null,
            cancellation_details: { comment: null, feedback: null, reason: null },
          },
        };
      },
    },
  ],
  [
    'customer.subscription.deleted',
    {
      origin: 'api',
      build: (ctx) => ({
        object: subscription(ctx, {
          ...proSubscriptionState(ctx),
          status: 'canceled',
          canceledAt: ctx.now,
          endedAt: ctx.now,
          cancellation: {
            reason: 'cancellation_requested',
            feedback: 'too_expensive',
            comment: 'Love the product, but $29 a month is too much for how often I use it.',
          },
        }),
      }),
    },
  ],
  [
    'customer.subscription.trial_will_end',
    {
      // Sent three days before a 14-day trial ends.
      origin: 'automatic',
      build: (ctx) => {
        const trialEnd = ctx.now + 3 * DAY;
        const trialStart = trialEnd - 14 * DAY;
        return {
          object: subscription(ctx, {
            id: TRIAL_SUBSCRIPTION.id,
            itemId: TRIAL_SUBSCRIPTION.itemId,
            plan: TEAM_PLAN,
            quantity: 3,
            created: trialStart,
            period: { start: trialStart, end: trialEnd },
            status: 'trialing',
            trial: { start: trialStart, end: trialEnd },
            latestInvoice: 'in_1R7eC1LkT3vR9mPaUk3Dh6Qz',
            defaultPaymentMethod: null,
          }),
        };
      },
    },
  ],
  [
    'charge.succeeded',
    {
      origin: 'api',
      build: (ctx) => ({
        object: charge(ctx, ORDER_PAID, { created: ctx.now, status: 'succeeded' }),
      }),
    },
  ],
  [
    'charge.failed',
    {
      origin: 'api',
      build: (ctx) => ({
        object: charge(ctx, ORDER_DECLINED, { created: ctx.now, status: 'failed' }),
      }),
    },
  ],
  [
    'charge.refunded',
    {
      origin: 'api',
      build: (ctx) => ({
        object: charge(ctx, ORDER_PAID, {
          created: ctx.now - 6 * DAY,
          status: 'succeeded',
          refund: { created: ctx.now },
        }),
      }),
    },
  ],
  [
    'payment_intent.succeeded',
    {
      origin: 'api',
      build: (ctx) => ({
        object: paymentIntent(ctx, ORDER_PAID, { created: ctx.now - 30, status: 'succeeded' }),
      }),
    },
  ],
  [
    'payment_intent.payment_failed',
    {
      origin: 'api',
      build: (ctx) => ({
        object: paymentIntent(ctx, ORDER_DECLINED, {
          created: ctx.now - 25,
          status: 'requires_payment_method',
        }),
      }),
    },
  ],
  [
    'checkout.session.completed',
    { origin: 'automatic', build: (ctx) => ({ object: checkoutSession(ctx) }) },
  ],
  ['customer.created', { origin: 'api', build: (ctx) => ({ object: customer(ctx) }) }],
]);

export const FIXTURE_TYPES: readonly string[] = Object.freeze([...FIXTURES.keys()].sort());

export function buildTestEvent(type: string, opts: BuildOptions = {}): Record<string, unknown> {
  const spec = FIXTURES.get(type);
  if (spec === undefined) {
    throw new Error(
      `Unsupported event type "${type}". Supported types: ${FIXTURE_TYPES.join(', ')}`,
    );
  }
  const nowDate = opts.now ?? new Date();
  const nowMs = nowDate.getTime();
  if (!Number.isFinite(nowMs)) throw new Error('Invalid `now` date');

  const livemode = opts.livemode ?? false;
  const ctx: Ctx = { now: Math.floor(nowMs / 1000), livemode, mode: livemode ? 'live' : 'test' };
  const built = spec.build(ctx);

  const data: Json = { object: built.object };
  if (built.previous_attributes !== undefined) {
    data['previous_attributes'] = built.previous_attributes;
  }

  return {
    id: opts.id ?? newEventId(),
    object: 'event',
    api_version: API_VERSION,
    created: ctx.now,
    data,
    livemode,
    pending_webhooks: 1,
    request:
      spec.origin === 'api'
        ? { id: `req_${randomBase62(14)}`, idempotency_key: randomUUID() }
        : { id: null, idempotency_key: null },
    type,
  };
}

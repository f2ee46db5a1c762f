/**
 * Where a Stripe object lives in the Dashboard, so a person approving a call can open the dispute
 * (invoice, subscription …) it is about. Test-mode objects live under `/test/`; a live object's
 * link has no such segment. A pure function: no request is made, nothing is looked up.
 */

const DASHBOARD = 'https://dashboard.stripe.com';

/** The Dashboard path of each object type (the `object` field of a Stripe object). */
const PATH_BY_OBJECT: Readonly<Record<string, string>> = {
  dispute: 'disputes',
  charge: 'payments',
  payment_intent: 'payments',
  invoice: 'invoices',
  subscription: 'subscriptions',
  customer: 'customers',
  refund: 'refunds',
  payout: 'payouts',
  product: 'products',
  price: 'prices',
  coupon: 'coupons',
  setup_intent: 'setup_intents',
  subscription_schedule: 'subscription_schedules',
  'checkout.session': 'checkout/sessions',
  'radar.early_fraud_warning': 'radar/early-fraud-warnings',
};

/** The same by id prefix, for an object whose `object` field is missing or unknown. */
const PATH_BY_PREFIX: readonly [string, string][] = [
  ['dp_', 'disputes'],
  ['du_', 'disputes'],
  ['ch_', 'payments'],
  ['py_', 'payments'],
  ['pi_', 'payments'],
  ['in_', 'invoices'],
  ['sub_sched_', 'subscription_schedules'],
  ['sub_', 'subscriptions'],
  ['cus_', 'customers'],
  ['re_', 'refunds'],
  ['pyr_', 'refunds'],
  ['po_', 'payouts'],
  ['prod_', 'products'],
  ['price_', 'prices'],
  ['seti_', 'setup_intents'],
  ['cs_', 'checkout/sessions'],
  ['issfr_', 'radar/early-fraud-warnings'],
];

/** A Stripe id as it appears in a URL path: letters, digits and underscores only. */
const STRIPE_ID = /^[A-Za-z0-9_]{3,255}$/;

export interface DashboardObject {
  id: string | null | undefined;
  /** The object's `object` field (`dispute`, `invoice` …), when known. */
  object?: string | null;
  livemode: boolean;
}

/**
 * The object's Dashboard page, or null when its id is not a Stripe id or its type has no page we
 * know (better no link than a wrong one).
 */
export function dashboardUrl(target: DashboardObject): string | null {
  const { id } = target;
  if (typeof id !== 'string' || !STRIPE_ID.test(id)) return null;
  const path =
    (target.object && Object.hasOwn(PATH_BY_OBJECT, target.object)
      ? PATH_BY_OBJECT[target.object]
      : undefined) ?? PATH_BY_PREFIX.find(([prefix]) => id.startsWith(prefix))?.[1];
  if (!path) return null;
  return `${DASHBOARD}${target.livemode ? '' : '/test'}/${path}/${id}`;
}

import type Stripe from 'stripe';

/**
 * Reading one Stripe object as it is now, by the type Stripe names it with (`dispute`,
 * `invoice`, …): the agent's re-checks before deciding and before dispatching
 * (src/operations/fresh.ts). Uses the process's one stripe-node client (backfill and --enrich use
 * it too). No stripe-node value is imported here: the SDK loads only when a key is set.
 */

/** An event's object: its type and id, and the connected account the event came from. */
export interface StripeObjectRef {
  type: string;
  id: string;
  /** `event.account` for Connect events: read with the Stripe-Account header. */
  account: string | null;
}

/** Where each object type is read, and the restricted-key permission (Dashboard name) it needs. */
export const OBJECT_RESOURCES: Readonly<Record<string, { path: string; permission: string }>> = {
  dispute: { path: 'disputes', permission: 'Disputes: Read' },
  invoice: { path: 'invoices', permission: 'Invoices: Read' },
  subscription: { path: 'subscriptions', permission: 'Subscriptions: Read' },
  payment_intent: { path: 'payment_intents', permission: 'PaymentIntents: Read' },
  charge: { path: 'charges', permission: 'Charges: Read' },
  refund: { path: 'refunds', permission: 'Refunds: Read' },
  customer: { path: 'customers', permission: 'Customers: Read' },
  'checkout.session': { path: 'checkout/sessions', permission: 'Checkout Sessions: Read' },
  'radar.early_fraud_warning': {
    path: 'radar/early_fraud_warnings',
    permission: 'Early Fraud Warnings: Read',
  },
};

/** Reads the current object; throws StripeReadError when it cannot. */
export type ObjectReader = (ref: StripeObjectRef) => Promise<Record<string, unknown>>;

/**
 * Why an object could not be read. `unavailable`: the API did not answer usefully (unreachable,
 * 5xx, still rate-limited after the retries) — not the event's fault. `forbidden`: the key may not
 * read it (401/403; `message` names the permission). `missing`: Stripe says it does not exist.
 */
export class StripeReadError extends Error {
  constructor(
    message: string,
    readonly kind: 'unavailable' | 'forbidden' | 'missing',
  ) {
    super(message);
    this.name = 'StripeReadError';
  }
}

export interface ReaderOptions {
  /** 429s retried here (stripe-node retries a 429 only when Stripe-Should-Retry says so). */
  rateLimitRetries?: number;
  /** First wait after a 429 (ms), doubled per retry, with jitter; a Retry-After header wins. */
  rateLimitBackoffMs?: number;
  /** Removes the key from any message (a Stripe message can quote part of it). */
  secretKey?: string | null;
}

function describe(ref: StripeObjectRef): string {
  return `${ref.type} ${ref.id}${ref.account ? ` on ${ref.account}` : ''}`;
}

/** A reader over a stripe-node client; the type must be one of OBJECT_RESOURCES. */
export function createObjectReader(stripe: Stripe, options: ReaderOptions = {}): ObjectReader {
  const retries = options.rateLimitRetries ?? 4;
  const backoffMs = options.rateLimitBackoffMs ?? 500;
  const clean = (text: string) =>
    options.secretKey ? text.split(options.secretKey).join('[redacted]') : text;
  return async (ref) => {
    const resource = OBJECT_RESOURCES[ref.type];
    if (!resource) throw new StripeReadError(`cannot read a ${ref.type}`, 'unavailable');
    const path = `/v1/${resource.path}/${encodeURIComponent(ref.id)}`;
    for (let attempt = 0; ; attempt++) {
      try {
        const object: unknown = await stripe.rawRequest(
          'GET',
          path,
          undefined,
          ref.account ? { stripeAccount: ref.account } : undefined,
        );
        if (object === null || typeof object !== 'object' || Array.isArray(object)) {
          throw new StripeReadError(
            `Stripe answered ${describe(ref)} with no object`,
            'unavailable',
          );
        }
        return object as Record<string, unknown>;
      } catch (error) {
        if (error instanceof StripeReadError) throw error;
        const e = error as {
          statusCode?: number;
          message?: string;
          headers?: Record<string, string | undefined>;
        };
        const status = e.statusCode;
        const said = clean(String(e.message ?? error));
        if (status === 429 && attempt < retries) {
          const after = Number(e.headers?.['retry-after']);
          const wait =
            Number.isFinite(after) && after > 0
              ? Math.min(after * 1000, 30_000)
              : backoffMs * 2 ** attempt * (0.5 + Math.random() / 2);
          await new Promise((resolve) => setTimeout(resolve, wait));
          continue;
        }
        if (status === 401 || status === 403) {
          // Stripe's own message names its internal permission (rak_…) when it can; the Dashboard
          // name is what a person ticks when creating the restricted key.
          throw new StripeReadError(
            `the Stripe key may not read ${describe(ref)} (HTTP ${status}): give the restricted key the "${resource.permission}" permission. Stripe said: ${said}`,
            'forbidden',
          );
        }
        if (status === 404) {
          throw new StripeReadError(
            `the ${ref.type} ${ref.id} no longer exists in Stripe`,
            'missing',
          );
        }
        throw new StripeReadError(
          `could not read ${describe(ref)} from Stripe: ${said}${status ? ` (HTTP ${status})` : ''}`,
          'unavailable',
        );
      }
    }
  };
}

/**
 * The connected account an event came from (`event.account`, Connect), or null. Most events carry
 * none: the payload is parsed only when it mentions the key at all.
 */
export function accountOf(payload: string | unknown): string | null {
  if (typeof payload === 'string' && !payload.includes('"account"')) return null;
  let parsed: unknown = payload;
  if (typeof payload === 'string') {
    try {
      parsed = JSON.parse(payload);
    } catch {
      return null;
    }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const account = (parsed as Record<string, unknown>).account;
  return typeof account === 'string' && account !== '' ? account : null;
}

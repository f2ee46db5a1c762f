import { LRUCache } from 'lru-cache';
import { obj, refId, str } from './extract.js';

/**
 * Facts a decision needs that the event itself lacks, looked up in the Stripe API: a dispute's
 * customer (a dispute names only its charge), a failed invoice's customer email (when the invoice
 * carries none). Lookups are cached; a failed lookup leaves the facts as they were.
 */
export interface ObjectFetcher {
  charge(id: string): Promise<Record<string, unknown>>;
  customer(id: string): Promise<Record<string, unknown>>;
}

export interface EnrichOptions {
  max?: number;
  ttlMs?: number;
  onError?: (error: unknown, what: string) => void;
}

type Facts = Record<string, unknown>;

/** The lookup as its users see it: a copy of a tool call's facts with what the API adds. */
export type Enrich = (type: string, facts: Facts) => Promise<Facts>;

const DISPUTES = new Set(['charge.dispute.created', 'charge.dispute.closed']);
const INVOICES = new Set(['invoice.payment_failed', 'invoice.payment_action_required']);

export class Enricher {
  private readonly cache: LRUCache<string, Promise<Record<string, unknown> | null>>;

  constructor(
    private readonly fetcher: ObjectFetcher,
    private readonly options: EnrichOptions = {},
  ) {
    this.cache = new LRUCache({ max: options.max ?? 5_000, ttl: options.ttlMs ?? 10 * 60_000 });
  }

  /** A copy of `facts` with what the API adds; `facts` itself is never changed. */
  async enrich(type: string, facts: Facts): Promise<Facts> {
    if (DISPUTES.has(type) && facts.customer === null && typeof facts.charge === 'string') {
      const charge = await this.lookup(`charge:${facts.charge}`, () =>
        this.fetcher.charge(facts.charge as string),
      );
      const customer = refId(charge?.customer);
      return customer ? { ...facts, customer } : facts;
    }
    if (INVOICES.has(type) && facts.customer_email === null && typeof facts.customer === 'string') {
      const customer = await this.lookup(`customer:${facts.customer}`, () =>
        this.fetcher.customer(facts.customer as string),
      );
      const email = str(customer?.email);
      return email ? { ...facts, customer_email: email } : facts;
    }
    return facts;
  }

  /** One request per object while it is cached, however many events ask at once. */
  private lookup(
    key: string,
    fetch: () => Promise<Record<string, unknown>>,
  ): Promise<Record<string, unknown> | null> {
    let pending = this.cache.get(key);
    if (!pending) {
      pending = fetch().then(
        (value) => obj(value),
        (error: unknown) => {
          // Not cached: the next event tries again.
          this.cache.delete(key);
          this.options.onError?.(error, key);
          return null;
        },
      );
      this.cache.set(key, pending);
    }
    return pending;
  }
}

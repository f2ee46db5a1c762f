/**
 * MCP Events webhook subscriptions, kept in the store (`EventBuffer.subscriptions`) so they
 * survive a restart and every instance on a shared store sees the same ones. Each subscription has
 * a delivery lease: only the instance holding it posts that subscription's next occurrence, so on
 * Redis with two instances each occurrence goes out once per subscription. The lease is taken and
 * the cursor advanced by compare-and-set on the holder (`owner`), so an instance that lost its
 * lease (it stalled past the lease) cannot move the cursor back or deliver twice after it.
 */

export interface WebhookSubscription {
  /** Derived from (principal, url, name, arguments): stable across refreshes and restarts. */
  id: string;
  principal: string;
  name: string;
  /** Canonical JSON of the subscription's arguments. */
  arguments: string;
  url: string;
  /** The client's `whsec_` secret (never shown anywhere). */
  secret: string;
  /** The delivery position: an MCP Events cursor. */
  cursor: string;
  /** ms; null: no expiry. */
  refreshBefore: number | null;
  /** Delivery failures of the current occurrence in a row; 0 when the last one succeeded. */
  failures: number;
  /** When the next attempt may go (ms). */
  nextAttemptAt: number;
  lastError: string | null;
  lastDeliveryAt: number | null;
  createdAt: number;
}

/** The fields a refresh or a delivery changes. */
export type SubscriptionPatch = Partial<
  Pick<
    WebhookSubscription,
    | 'secret'
    | 'cursor'
    | 'refreshBefore'
    | 'failures'
    | 'nextAttemptAt'
    | 'lastError'
    | 'lastDeliveryAt'
  >
>;

export interface SubscriptionStore {
  /** Inserts, or replaces the whole subscription with this id. */
  put(subscription: WebhookSubscription): Promise<void>;
  get(id: string): Promise<WebhookSubscription | null>;
  /** Changes the given fields of an existing subscription; false when there is none. */
  patch(id: string, patch: SubscriptionPatch): Promise<boolean>;
  /** Removes it (its lease too); false when there was none. */
  remove(id: string): Promise<boolean>;
  /** Every subscription (the deliverer's sweep; bounded by the per-principal cap). */
  all(): Promise<WebhookSubscription[]>;
  countByPrincipal(principal: string): Promise<number>;
  /** Takes (or renews) the delivery lease unless another owner holds an unexpired one. */
  lease(id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** patch, only while `owner` holds the lease. */
  advance(id: string, owner: string, patch: SubscriptionPatch): Promise<boolean>;
  unlease(id: string, owner: string): Promise<void>;
}

/** The memory store's subscriptions (one process; tests and `--store memory`). */
export class MemorySubscriptions implements SubscriptionStore {
  private readonly subs = new Map<string, WebhookSubscription>();
  private readonly leases = new Map<string, { owner: string; until: number }>();

  constructor(private readonly now: () => number) {}

  async put(subscription: WebhookSubscription): Promise<void> {
    this.subs.set(subscription.id, { ...subscription });
  }

  async get(id: string): Promise<WebhookSubscription | null> {
    const sub = this.subs.get(id);
    return sub ? { ...sub } : null;
  }

  async patch(id: string, patch: SubscriptionPatch): Promise<boolean> {
    const sub = this.subs.get(id);
    if (!sub) return false;
    Object.assign(sub, patch);
    return true;
  }

  async remove(id: string): Promise<boolean> {
    this.leases.delete(id);
    return this.subs.delete(id);
  }

  async all(): Promise<WebhookSubscription[]> {
    return [...this.subs.values()].map((s) => ({ ...s }));
  }

  async countByPrincipal(principal: string): Promise<number> {
    let n = 0;
    for (const sub of this.subs.values()) if (sub.principal === principal) n += 1;
    return n;
  }

  async lease(id: string, owner: string, leaseMs: number): Promise<boolean> {
    if (!this.subs.has(id)) return false;
    const held = this.leases.get(id);
    const now = this.now();
    if (held && held.owner !== owner && held.until > now) return false;
    this.leases.set(id, { owner, until: now + leaseMs });
    return true;
  }

  async advance(id: string, owner: string, patch: SubscriptionPatch): Promise<boolean> {
    const held = this.leases.get(id);
    if (!held || held.owner !== owner || held.until <= this.now()) return false;
    return this.patch(id, patch);
  }

  async unlease(id: string, owner: string): Promise<void> {
    if (this.leases.get(id)?.owner === owner) this.leases.delete(id);
  }
}

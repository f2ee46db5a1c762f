import type Database from 'better-sqlite3';
import type {
  SubscriptionPatch,
  SubscriptionStore,
  WebhookSubscription,
} from '../subscriptions.js';

/**
 * Schema 7: MCP Events webhook subscriptions and their delivery leases (buffer/subscriptions.ts).
 * Idempotent, so it folds into whichever version adds it.
 */
export const SUBSCRIPTIONS_SCHEMA = `
CREATE TABLE IF NOT EXISTS event_subscriptions (
  id TEXT PRIMARY KEY,
  principal TEXT NOT NULL,
  data TEXT NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_subscriptions_principal ON event_subscriptions(principal);
`;

/**
 * The SQLite store's subscriptions. Written on the main connection, not the writer thread: a
 * subscribe or a delivery's step is one small statement, rare next to appends, and each is a
 * compare-and-set in one statement, so two processes on the file cannot both hold a lease.
 */
export class SqliteSubscriptions implements SubscriptionStore {
  private prepared: ReturnType<SqliteSubscriptions['prepare']> | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

  /**
   * Prepared on first use: a read-only store (the CLI's) written before schema 7 has no table,
   * and never asks for subscriptions.
   */
  private get stmt() {
    this.prepared ??= this.prepare(this.db);
    return this.prepared;
  }

  private get patchTx() {
    return this.stmt.patchTx;
  }

  private prepare(db: Database.Database) {
    const stmt = {
      put: db.prepare(
        `INSERT INTO event_subscriptions (id, principal, data) VALUES (?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET principal = excluded.principal, data = excluded.data`,
      ),
      get: db.prepare('SELECT data FROM event_subscriptions WHERE id = ?').pluck(),
      setData: db.prepare('UPDATE event_subscriptions SET data = ? WHERE id = ?'),
      setDataHeld: db.prepare(
        'UPDATE event_subscriptions SET data = ? WHERE id = ? AND lease_owner = ? AND lease_until > ?',
      ),
      remove: db.prepare('DELETE FROM event_subscriptions WHERE id = ?'),
      all: db.prepare('SELECT data FROM event_subscriptions ORDER BY id').pluck(),
      count: db.prepare('SELECT count(*) FROM event_subscriptions WHERE principal = ?').pluck(),
      lease: db.prepare(
        `UPDATE event_subscriptions SET lease_owner = ?, lease_until = ?
         WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)`,
      ),
      unlease: db.prepare(
        'UPDATE event_subscriptions SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?',
      ),
    };
    // IMMEDIATE (see the callers): the read and the write of a patch hold the write lock together.
    const patchTx = db.transaction(
      (id: string, patch: SubscriptionPatch, owner: string | null): boolean => {
        const data = stmt.get.get(id) as string | undefined;
        if (data === undefined) return false;
        const next = JSON.stringify({ ...(JSON.parse(data) as WebhookSubscription), ...patch });
        const info = owner
          ? stmt.setDataHeld.run(next, id, owner, this.now())
          : stmt.setData.run(next, id);
        return info.changes === 1;
      },
    );
    return { ...stmt, patchTx };
  }

  async put(subscription: WebhookSubscription): Promise<void> {
    this.stmt.put.run(subscription.id, subscription.principal, JSON.stringify(subscription));
  }

  async get(id: string): Promise<WebhookSubscription | null> {
    const data = this.stmt.get.get(id) as string | undefined;
    return data === undefined ? null : (JSON.parse(data) as WebhookSubscription);
  }

  async patch(id: string, patch: SubscriptionPatch): Promise<boolean> {
    return this.patchTx.immediate(id, patch, null);
  }

  async remove(id: string): Promise<boolean> {
    return this.stmt.remove.run(id).changes === 1;
  }

  async all(): Promise<WebhookSubscription[]> {
    return (this.stmt.all.all() as string[]).map((d) => JSON.parse(d) as WebhookSubscription);
  }

  async countByPrincipal(principal: string): Promise<number> {
    return this.stmt.count.get(principal) as number;
  }

  async lease(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = this.now();
    return this.stmt.lease.run(owner, now + leaseMs, id, owner, now).changes === 1;
  }

  async advance(id: string, owner: string, patch: SubscriptionPatch): Promise<boolean> {
    return this.patchTx.immediate(id, patch, owner);
  }

  async unlease(id: string, owner: string): Promise<void> {
    this.stmt.unlease.run(id, owner);
  }
}

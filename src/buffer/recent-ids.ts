import { LRUCache } from 'lru-cache';
import { DEDUP_WINDOW_MS } from './buffer.js';

/**
 * The dedup fast path: ids known to be durably stored. Only ever a shortcut — the store's unique
 * key stays the authority, so an evicted or restarted cache costs a lookup, never a duplicate.
 */
export class RecentIds {
  private readonly cache: LRUCache<string, true>;

  /**
   * 10 000 ids: minutes of a busy account's arrivals, which is when a repeat usually comes (Stripe
   * retrying after an answer it did not get, a replay of the last few events). It held 100 000: at
   * 120 events a second it filled for 14 minutes, ~15 MB of heap that V8 then sized its heap at up
   * to 4 times — the growth of a 30-minute soak (bench/soak.mjs). A forgotten id costs one indexed
   * read.
   */
  constructor(max = 10_000, ttlMs = DEDUP_WINDOW_MS) {
    this.cache = new LRUCache<string, true>({ max, ttl: ttlMs, ttlAutopurge: false });
  }

  has(id: string): boolean {
    return this.cache.has(id);
  }

  /** Call only after the id is committed: a remembered id is answered `duplicate` without a read. */
  remember(id: string): void {
    this.cache.set(id, true);
  }
}

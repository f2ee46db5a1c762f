import type { EventStatus } from './buffer.js';

/**
 * One object, one order: events about the same Stripe object (`objectId`) are handled in the order
 * Stripe created them — `created`, then the event id (byte order) as the stable tiebreak. An event
 * is not claimed while an older event about its object is still active: pending, claimed or
 * awaiting approval. Every store applies this rule in its claim (memory.ts, sqlite/seqs.ts, the
 * Redis claim script); an event older than one already handled is judged on the fresh state.
 */
export const ACTIVE_STATUSES: readonly EventStatus[] = ['pending', 'claimed', 'awaiting_approval'];

export function isActive(status: EventStatus): boolean {
  return status === 'pending' || status === 'claimed' || status === 'awaiting_approval';
}

/** Whether `a` comes before `b` in Stripe's order for one object. */
export function createdBefore(
  a: { created: number; id: string },
  b: { created: number; id: string },
): boolean {
  return a.created < b.created || (a.created === b.created && a.id < b.id);
}

/** How many due candidates one claim looks through past those held back (bounds its cost). */
export const ORDER_SCAN = 1_000;

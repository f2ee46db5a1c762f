import { InvalidTransitionError } from '../errors.js';
import type { EventStatus } from './buffer.js';

/** Pure state rules shared by every adapter, so they cannot drift apart. */

export interface FailureOutcome {
  status: 'pending' | 'dead';
  attempts: number;
  retryAt: number | null;
}

/** A failed attempt (nack or an expired lease): retry later, or dead once attempts run out. */
export function afterFailure(
  attempts: number,
  maxAttempts: number,
  now: number,
  retryInMs: number,
): FailureOutcome {
  const next = attempts + 1;
  if (next >= maxAttempts) return { status: 'dead', attempts: next, retryAt: null };
  return { status: 'pending', attempts: next, retryAt: retryInMs > 0 ? now + retryInMs : null };
}

const NACKABLE: readonly EventStatus[] = ['pending', 'claimed', 'awaiting_approval'];

export function assertNackable(id: string, status: EventStatus): void {
  if (!NACKABLE.includes(status)) throw new InvalidTransitionError(id, status, 'nacked');
}

/** Backoff for an expired lease: the holder died, so the next try should not wait long. */
export const LEASE_EXPIRY_RETRY_MS = 0;

export function assertHeldBy(
  id: string,
  status: EventStatus,
  holder: string | null,
  owner: string,
): void {
  if (status !== 'claimed' || holder !== owner) {
    throw new InvalidTransitionError(
      id,
      status === 'claimed' ? `claimed by ${holder ?? 'nobody'}` : status,
      `held for approval by ${owner}`,
    );
  }
}

export function assertAwaitingApproval(id: string, status: EventStatus): void {
  if (status !== 'awaiting_approval')
    throw new InvalidTransitionError(id, status, 'resumed from approval');
}

import crypto from 'node:crypto';
import {
  NOT_PAUSED,
  type AckOptions,
  type AgentPause,
  type HistoryInput,
  type NackOptions,
  type RejectOptions,
  type StoredEvent,
} from './buffer.js';
import { EventNotFoundError, LeaseLostError } from '../errors.js';
import {
  DEFAULT_POLICY,
  holds,
  ownerOf,
  type Command,
  type Lease,
  type EventState,
  type QueuePolicy,
} from './transitions.js';

/**
 * The named state changes of the port, each one `apply` command: every adapter extends this, so
 * they differ only in how `apply` (and `claim`) reach their storage, never in what a change means.
 */
export abstract class CommandMethods {
  abstract apply(id: string, command: Command): Promise<StoredEvent>;

  renew(id: string, token: string, leaseMs: number): Promise<StoredEvent> {
    return this.apply(id, { op: 'renew', token, leaseMs });
  }

  /**
   * Throws LeaseLostError unless `token` holds the event's claim now: a read, no write. The loop's
   * check right before it calls a handler (the lease itself is kept alive by renew).
   */
  async assertHeld(id: string, token: string, now = Date.now()): Promise<void> {
    const lease = await this.leaseOf(id);
    if (!lease) throw new EventNotFoundError(id);
    if (!holds(lease, token, now)) {
      throw new LeaseLostError(
        id,
        lease.status === 'claimed' ? `claimed by ${ownerOf(lease.leaseOwner)}` : lease.status,
        'dispatch',
      );
    }
  }

  /** Who holds the event and until when; an adapter may read only these instead of the row. */
  protected leaseOf(id: string): Promise<Lease | null> {
    return this.get(id);
  }

  abstract get(id: string): Promise<StoredEvent | null>;

  release(
    id: string,
    token: string,
    options: { retryInMs?: number; note?: string } = {},
  ): Promise<StoredEvent> {
    return this.apply(id, { op: 'release', token, ...options });
  }

  hold(
    id: string,
    token: string,
    note?: string,
    record?: readonly HistoryInput[],
  ): Promise<StoredEvent> {
    return this.apply(id, { op: 'hold', token, note, record });
  }

  ack(id: string, options: AckOptions = {}): Promise<StoredEvent> {
    return this.apply(id, { op: 'ack', ...options });
  }

  nack(id: string, options: NackOptions): Promise<StoredEvent> {
    return this.apply(id, { op: 'nack', ...options });
  }

  approve(id: string, by: string, leaseMs: number): Promise<StoredEvent> {
    return this.apply(id, { op: 'approve', by, token: claimToken(`approver:${by}`), leaseMs });
  }

  reject(
    id: string,
    by: string,
    reason: string,
    options: RejectOptions = {},
  ): Promise<StoredEvent> {
    return this.apply(id, { op: 'reject', by, reason, ...options });
  }

  replay(id: string, options: { by?: string; note?: string } = {}): Promise<StoredEvent> {
    return this.apply(id, { op: 'replay', ...options });
  }

  async addHistory(id: string, entry: HistoryInput): Promise<void> {
    await this.apply(id, { op: 'note', entry });
  }
}

/** A claim token: the worker's name for people to read, and a nonce new for every claim. */
export function claimToken(owner: string): string {
  return `${owner}~${crypto.randomBytes(6).toString('base64url')}`;
}

/** The stored policy parts merged over the default; invalid stored values fall back. */
export function policyFrom(stored: {
  maxAttempts?: number | null;
  retryBaseMs?: number | null;
}): QueuePolicy {
  const ok = (n: number | null | undefined) =>
    typeof n === 'number' && Number.isInteger(n) && n >= 0;
  return {
    maxAttempts:
      ok(stored.maxAttempts) && stored.maxAttempts! >= 1
        ? stored.maxAttempts!
        : DEFAULT_POLICY.maxAttempts,
    retryBaseMs: ok(stored.retryBaseMs) ? stored.retryBaseMs! : DEFAULT_POLICY.retryBaseMs,
  };
}

/** A stored pause as JSON → AgentPause; anything unreadable reads as not paused. */
export function pauseFrom(text: string | null | undefined): AgentPause {
  if (!text) return { ...NOT_PAUSED };
  try {
    const v = JSON.parse(text) as Partial<AgentPause>;
    if (typeof v !== 'object' || v === null || v.paused !== true) return { ...NOT_PAUSED };
    const str = (x: unknown) => (typeof x === 'string' ? x : null);
    const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
    return {
      paused: true,
      reason: str(v.reason),
      by: str(v.by),
      note: str(v.note),
      since: num(v.since),
      until: num(v.until),
    };
  } catch {
    return { ...NOT_PAUSED };
  }
}

/** A transition's state as the stores' columns and fields name it (SQLite and Redis alike). */
export function stateColumns(state: EventState, updatedAt: number) {
  return {
    status: state.status,
    attempts: state.attempts,
    retry_at: state.retryAt,
    lease_owner: state.leaseOwner,
    lease_expires_at: state.leaseExpiresAt,
    last_error: state.lastError,
    outcome: state.outcome,
    updated_at: updatedAt,
  };
}

/** A history entry as stored: its kind, and the other fields as JSON (null when there are none). */
export function entryRow(entry: HistoryInput): { kind: string; data: string | null } {
  const { kind, ...data } = entry;
  return { kind, data: Object.keys(data).length ? JSON.stringify(data) : null };
}

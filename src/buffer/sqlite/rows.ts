import {
  isEventOutcome,
  type EventStatus,
  type HistoryEntry,
  type StoredEvent,
} from '../buffer.js';
import type { Lease } from '../transitions.js';

/** A row of the events table (schema.ts). */
export interface EventRow {
  seq: number;
  id: string;
  type: string;
  created: number;
  livemode: number;
  object_id: string | null;
  payload: string;
  status: string;
  attempts: number;
  received_at: number;
  updated_at: number;
  retry_at: number | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  last_error: string | null;
  /** How the event ended (EVENT_OUTCOMES), null until it is acked; schema 7. */
  outcome: string | null;
  /** Bumped by every state change: what a compare-and-set write checks (sqlite/writer.ts). */
  rev: number;
}

/** The lease columns of an events row, all the pre-dispatch check reads. */
export interface LeaseRow {
  status: string;
  lease_owner: string | null;
  lease_expires_at: number | null;
}

/** A row of the history table. */
export interface HistoryRow {
  at: number;
  kind: string;
  data: string | null;
}

export function toEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    type: row.type,
    created: row.created,
    livemode: row.livemode === 1,
    objectId: row.object_id,
    payload: row.payload,
    status: row.status as EventStatus,
    attempts: row.attempts,
    receivedAt: row.received_at,
    updatedAt: row.updated_at,
    retryAt: row.retry_at,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    lastError: row.last_error,
    outcome: row.outcome !== null && isEventOutcome(row.outcome) ? row.outcome : null,
  };
}

export function toLease(row: LeaseRow): Lease {
  return {
    status: row.status as EventStatus,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
  };
}

/** An event's history: received at `receivedAt`, then its history rows in order. */
export function toHistory(receivedAt: number, rows: readonly HistoryRow[]): HistoryEntry[] {
  // "received" is not stored as a row: the event's own received_at says it, saving a write
  // on the hot path.
  const entries: HistoryEntry[] = [{ at: iso(receivedAt), kind: 'received' }];
  for (const r of rows) {
    const data = r.data ? (JSON.parse(r.data) as Partial<HistoryEntry>) : {};
    entries.push({ ...data, at: iso(r.at), kind: r.kind as HistoryEntry['kind'] });
  }
  return entries;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

import {
  isEventOutcome,
  isEventStatus,
  type EventStatus,
  type HistoryEntry,
  type StoredEvent,
} from '../buffer.js';

/** A flat `[field, value, field, value, …]` reply (HGETALL inside a script) as a record. */
export function pairs(flat: readonly string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!;
  return record;
}

export function nullableNumber(value: string | undefined): number | null {
  return value === undefined ? null : Number(value);
}

/** An event's hash (`<prefix>ev:<id>`) as the stored event. */
export function toEvent(h: Record<string, string>): StoredEvent {
  const status = h.status ?? '';
  return {
    id: h.id ?? '',
    type: h.type ?? '',
    created: Number(h.created),
    livemode: h.livemode === '1',
    objectId: h.object_id ?? null,
    payload: h.payload ?? '',
    status: (isEventStatus(status) ? status : 'pending') as EventStatus,
    attempts: Number(h.attempts ?? 0),
    receivedAt: Number(h.received_at),
    updatedAt: Number(h.updated_at),
    retryAt: nullableNumber(h.retry_at),
    leaseOwner: h.lease_owner ?? null,
    leaseExpiresAt: nullableNumber(h.lease_expires_at),
    lastError: h.last_error ?? null,
    outcome: h.outcome !== undefined && isEventOutcome(h.outcome) ? h.outcome : null,
  };
}

/** "<at>\t<kind>\t<JSON of the other fields>" → the entry, like the SQLite store builds it. */
export function parseHistory(row: string): HistoryEntry {
  const first = row.indexOf('\t');
  const second = row.indexOf('\t', first + 1);
  const at = Number(row.slice(0, first));
  const kind = row.slice(first + 1, second) as HistoryEntry['kind'];
  const json = row.slice(second + 1);
  const data = json ? (JSON.parse(json) as Partial<HistoryEntry>) : {};
  return { ...data, at: iso(at), kind };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

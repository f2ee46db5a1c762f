import type { Catalog, ToolCall } from '../catalog/catalog.js';
import { boundDepth } from '../catalog/depth.js';
import { isoDate } from '../catalog/extract.js';
import { accountOf } from '../stripe/objects.js';
import type { HistoryEntry, StoredEvent } from './buffer.js';

/** The public shape of one event in a list (docs/MCP.md, `list_pending_events`), shared by MCP and the CLI. */
export interface EventSummary {
  id: string;
  type: string;
  /** Unix seconds; null when the stored value is not a date (a non-finite or absurd number). */
  created: number | null;
  livemode: boolean;
  object_id: string | null;
  /** The connected account (acct_…) for a Connect event; null for the platform's own. */
  account: string | null;
  status: StoredEvent['status'];
  /** How it ended (buffer.ts EVENT_OUTCOMES); null unless acked. */
  outcome: StoredEvent['outcome'];
  attempts: number;
  tool_call: ToolCall | null;
}

export function summarize(event: StoredEvent, catalog: Catalog): EventSummary {
  return {
    id: event.id,
    type: event.type,
    created: createdOrNull(event.created),
    livemode: event.livemode,
    object_id: event.objectId,
    account: accountOf(event.payload),
    status: event.status,
    outcome: event.outcome,
    attempts: event.attempts,
    tool_call: catalog.toolCall(event.type, event.payload),
  };
}

/** One event in full: as received, with its tool call, state and history. */
export interface EventDetail {
  event: unknown;
  tool_call: ToolCall | null;
  status: StoredEvent['status'];
  /** How it ended (buffer.ts EVENT_OUTCOMES); null unless acked. */
  outcome: StoredEvent['outcome'];
  attempts: number;
  received_at: string;
  retry_at: string | null;
  last_error: string | null;
  history: HistoryEntry[];
}

/**
 * An event stored before the webhook validated envelopes (or written by another path) may carry a
 * `created` SQLite keeps as a REAL infinity: a summary shows null rather than a number no schema
 * or Date accepts.
 */
export function createdOrNull(created: number): number | null {
  return isoDate(created) === null ? null : created;
}

/** `created` as ISO-8601 for people, "unknown" when it is not a date. */
export function createdText(created: number | null): string {
  return isoDate(created) ?? 'unknown';
}

export function detail(event: StoredEvent, history: HistoryEntry[], catalog: Catalog): EventDetail {
  const parsed = JSON.parse(event.payload) as unknown;
  return {
    // Bounded in depth: JSON.parse reads any depth, but JSON.stringify overflows near 5 000 levels.
    event: boundDepth(parsed),
    // The parsed event, not the payload: one JSON.parse of a possibly large body, not two.
    tool_call: catalog.toolCall(event.type, parsed),
    status: event.status,
    outcome: event.outcome,
    attempts: event.attempts,
    received_at: new Date(event.receivedAt).toISOString(),
    retry_at: event.retryAt === null ? null : new Date(event.retryAt).toISOString(),
    last_error: event.lastError,
    history,
  };
}

import type { Catalog, ToolCall } from '../catalog/catalog.js';
import type { HistoryEntry, StoredEvent } from './buffer.js';

/** The public shape of one event in a list (DESIGN.md §3), shared by MCP and the CLI. */
export interface EventSummary {
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  object_id: string | null;
  status: StoredEvent['status'];
  attempts: number;
  tool_call: ToolCall | null;
}

export function summarize(event: StoredEvent, catalog: Catalog): EventSummary {
  return {
    id: event.id,
    type: event.type,
    created: event.created,
    livemode: event.livemode,
    object_id: event.objectId,
    status: event.status,
    attempts: event.attempts,
    tool_call: catalog.toolCall(event.type, event.payload),
  };
}

/** One event in full: as received, with its tool call, state and history. */
export interface EventDetail {
  event: unknown;
  tool_call: ToolCall | null;
  status: StoredEvent['status'];
  attempts: number;
  received_at: string;
  retry_at: string | null;
  last_error: string | null;
  history: HistoryEntry[];
}

export function detail(event: StoredEvent, history: HistoryEntry[], catalog: Catalog): EventDetail {
  const parsed = JSON.parse(event.payload) as unknown;
  return {
    event: parsed,
    // The parsed event, not the payload: one JSON.parse of a possibly large body, not two.
    tool_call: catalog.toolCall(event.type, parsed),
    status: event.status,
    attempts: event.attempts,
    received_at: new Date(event.receivedAt).toISOString(),
    retry_at: event.retryAt === null ? null : new Date(event.retryAt).toISOString(),
    last_error: event.lastError,
    history,
  };
}

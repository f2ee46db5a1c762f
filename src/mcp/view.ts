import type { HistoryEntry, StoredEvent } from '../buffer/buffer.js';
import { detail, summarize, type EventDetail, type EventSummary } from '../buffer/summary.js';
import type { Catalog, ToolCall } from '../catalog/catalog.js';
import type { Enrich } from '../catalog/enrich.js';
import { eventForModel, toolCallForModel } from '../catalog/render.js';
import { fenceNotice, newNonce, type RedactKind } from '../catalog/untrusted.js';

/**
 * Everything the MCP surface shows reaches a model, so customer-written strings are fenced (or
 * redacted) here, once, for tools, resources and prompts alike. One nonce per response.
 */
export interface ModelView {
  nonce: string;
  redact: readonly RedactKind[];
  /** Say this wherever the fenced values are shown. */
  notice: string;
}

export function newView(redact: readonly RedactKind[]): ModelView {
  const nonce = newNonce();
  return { nonce, redact, notice: fenceNotice(nonce) };
}

export function fencedCall(
  catalog: Catalog,
  type: string,
  call: ToolCall,
  view: ModelView,
): ToolCall {
  return toolCallForModel(catalog, type, call, { nonce: view.nonce, redact: view.redact }).value;
}

/** A summary (docs/ARCHITECTURE.md "Public names") whose tool call has its customer-written facts fenced. */
export function summaryForModel(
  event: StoredEvent,
  catalog: Catalog,
  view: ModelView,
): EventSummary {
  const summary = summarize(event, catalog);
  if (summary.tool_call) {
    summary.tool_call = fencedCall(catalog, event.type, summary.tool_call, view);
  }
  return summary;
}

export interface EventDetailView extends EventDetail {
  id: string;
  type: string;
}

/**
 * One event in full, as get_event and the event resource show it: the event as received, fenced,
 * and its tool call with the facts `enrich` (--enrich) adds, as the agent loop would dispatch it.
 */
export async function detailForModel(
  event: StoredEvent,
  history: HistoryEntry[],
  catalog: Catalog,
  view: ModelView,
  enrich?: Enrich,
): Promise<EventDetailView> {
  const full = detail(event, history, catalog);
  if (full.tool_call && enrich) {
    full.tool_call = { ...full.tool_call, input: await enrich(event.type, full.tool_call.input) };
  }
  return {
    id: event.id,
    type: event.type,
    ...full,
    event: eventForModel(full.event, { nonce: view.nonce, redact: view.redact }).value,
    tool_call: full.tool_call && fencedCall(catalog, event.type, full.tool_call, view),
    // An agent's recorded decision may quote customer text back: fence it like the facts.
    history: full.history.map((entry) =>
      entry.tool_call
        ? { ...entry, tool_call: fencedCall(catalog, event.type, entry.tool_call, view) }
        : entry,
    ),
  };
}

/** One line per event for the human-readable text content. */
export function summaryLine(summary: EventSummary): string {
  const tool = summary.tool_call ? ` → ${summary.tool_call.name}` : '';
  const attempts = summary.attempts > 0 ? ` (attempts ${summary.attempts})` : '';
  return `${summary.id}  ${summary.type}  ${summary.status}${attempts}${tool}`;
}

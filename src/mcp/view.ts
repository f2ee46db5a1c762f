import type { HistoryEntry, StoredEvent } from '../buffer/buffer.js';
import { detail, summarize, type EventDetail, type EventSummary } from '../buffer/summary.js';
import type { Catalog, ToolCall, ToolDefinition } from '../catalog/catalog.js';
import { MAX_DEPTH, TOO_DEEP } from '../catalog/depth.js';
import type { Enrich } from '../catalog/enrich.js';
import { classifyField, underCustomerContainer } from '../catalog/classify.js';
import { eventForModel, toolCallForModel } from '../catalog/render.js';
import { commonFacts } from '../catalog/tool.js';
import {
  cleanText,
  closeTag,
  fenceModelText,
  fenceNotice,
  newNonce,
  openTag,
  redactedMarker,
  type RedactKind,
  type UntrustedKind,
} from '../catalog/untrusted.js';
import { callAmount } from '../money.js';

/**
 * Everything the MCP surface shows reaches a model, so customer-written strings are fenced (or
 * redacted) here, once, for tools, resources and prompts alike. One nonce per response. So are
 * the strings a model or a dispatch sink wrote (a decision's fields, history notes, the last
 * error): an agent's rationale can quote the customer or carry instructions for the next model.
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

/** A key that can stay readable: what a schema or an integration would choose as a name. */
export const PLAIN_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Whether `key` of a tool call's input is one of the facts the catalog extracts (no model wrote
 * it). Everything else in a call is the model's decision (`action`, `rationale`,
 * `customer_message`, …). A type no longer in the catalog keeps only the common facts readable.
 */
function isFact(def: ToolDefinition | undefined, key: string): boolean {
  return Object.hasOwn(def ? def.facts.shape : commonFacts, key);
}

/**
 * An `action` that is one of the tool's own actions is the catalog's word, not free text: shown
 * as it is so clients can read it. Anything else in its place is fenced like the rest.
 */
export function plainAction(def: ToolDefinition | undefined, value: unknown): string | null {
  return typeof value === 'string' && def?.actions.includes(value) ? value : null;
}

/** A model-written value: every string in it cleaned and fenced, keys too unless plain. */
export function fenceModelJson(value: unknown, nonce: string, depth = 0): unknown {
  if (typeof value === 'string') return fenceModelText(value, nonce);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  if (Array.isArray(value)) return value.map((v) => fenceModelJson(v, nonce, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      PLAIN_KEY.test(k) ? k : fenceModelText(k, nonce),
      fenceModelJson(v, nonce, depth + 1),
    ]),
  );
}

/** A tool call's input split into the catalog's facts and what a model decided. */
export function splitCall(
  def: ToolDefinition | undefined,
  call: ToolCall,
): { facts: ToolCall; decided: [string, unknown][] } {
  const facts: [string, unknown][] = [];
  const decided: [string, unknown][] = [];
  for (const entry of Object.entries(call.input)) {
    (isFact(def, entry[0]) ? facts : decided).push(entry);
  }
  // fromEntries defines keys, so a `__proto__` key stays a plain key.
  return { facts: { name: call.name, input: Object.fromEntries(facts) }, decided };
}

/**
 * A tool call for a model: customer-written facts fenced (or redacted) as the catalog marks them,
 * and every field a model decided (a recorded decision's `rationale`, `customer_message`, …)
 * fenced as model-written text. A call extracted from an event has facts only.
 */
export function fencedCall(
  catalog: Catalog,
  type: string,
  call: ToolCall,
  view: ModelView,
): ToolCall {
  const def = catalog.lookup(type);
  const { facts, decided } = splitCall(def, call);
  const shown = toolCallForModel(catalog, type, facts, {
    nonce: view.nonce,
    redact: view.redact,
  }).value.input;
  const written = new Map(decided);
  return {
    name: call.name,
    // The call's own key order, facts and decision fields as they were.
    input: Object.fromEntries(
      Object.keys(call.input).map((key) => {
        if (!written.has(key)) return [key, shown[key]];
        const value = written.get(key);
        if (key === 'action' && plainAction(def, value) !== null) return [key, value];
        return [
          PLAIN_KEY.test(key) ? key : fenceModelText(key, view.nonce),
          fenceModelJson(value, view.nonce),
        ];
      }),
    ),
  };
}

/** A history entry for a model: its notes and recorded calls are model-, sink- or person-written. */
export function historyForModel(
  entry: HistoryEntry,
  catalog: Catalog,
  type: string,
  view: ModelView,
): HistoryEntry {
  const shown: HistoryEntry = { ...entry };
  if (entry.tool_call) shown.tool_call = fencedCall(catalog, type, entry.tool_call, view);
  // Every note is fenced, whoever wrote it: a model's reason, a handler's error, a nack reason an
  // MCP client (a model) sent. One rule leaves no note to forget.
  if (entry.note !== undefined) shown.note = fenceModelText(entry.note, view.nonce);
  return shown;
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

/**
 * A tool call's facts split for a model the way the agent loop shows them (src/catalog/prompt.ts):
 * the facts a model can read as they are (ids, amounts, enums, dates) stay in `tool_call.input`;
 * every fact holding customer-written text (as the catalog marks it, or as the event's own field
 * names say: metadata, descriptions, names, addresses …) moves, cleaned or redacted, into one JSON
 * object inside one fence. One fence per event instead of one per value: the tags cost 67
 * characters each, more than most values they wrapped (an order id such as "1042"). The nonce is
 * the response's, unguessable, so no value inside can close the fence.
 */
export interface LeanCall {
  tool_call: ToolCall | null;
  /** `<untrusted-data-…>{"fact":"value",…}</untrusted-data-…>`, or null when no fact is customer-written. */
  untrusted_facts: string | null;
}

/**
 * A key under a customer-filled container (metadata, custom fields) that reads as an identifier:
 * the bound render.ts (fenceJson) uses, so a fact is judged customer-written exactly when the
 * per-value fencing would have fenced something in it.
 */
const CUSTOMER_PLAIN_KEY = /^[A-Za-z0-9_.:-]{1,40}$/;

/** What a value holds once cleaned for the fence, and whether any of it is customer-written. */
interface Sorted {
  value: unknown;
  customer: boolean;
}

/**
 * `value` with every customer-written string cleaned (or redacted) and keys under a container a
 * customer fills cleaned unless plain, down to MAX_DEPTH (deeper: TOO_DEEP); `customer` says
 * whether anything in it was customer-written, so the fact goes inside the fence.
 */
function sortValue(
  value: unknown,
  path: string[],
  classify: (path: readonly string[]) => UntrustedKind | null,
  redact: readonly RedactKind[],
): Sorted {
  if (typeof value === 'string') {
    const kind = classify(path);
    if (!kind) return { value, customer: false };
    const shown =
      kind !== 'text' && redact.includes(kind) ? redactedMarker(kind) : cleanText(value);
    return { value: shown, customer: true };
  }
  if (value === null || typeof value !== 'object') return { value, customer: false };
  if (path.length >= MAX_DEPTH) return { value: TOO_DEEP, customer: false };
  let customer = false;
  if (Array.isArray(value)) {
    const items = value.map((v, i) => {
      const sorted = sortValue(v, [...path, String(i)], classify, redact);
      customer ||= sorted.customer;
      return sorted.value;
    });
    return { value: items, customer };
  }
  const customerKeys = underCustomerContainer(path);
  const entries = Object.entries(value).map(([k, v]) => {
    const sorted = sortValue(v, [...path, k], classify, redact);
    const plainKey = !customerKeys || CUSTOMER_PLAIN_KEY.test(k);
    customer ||= sorted.customer || !plainKey;
    return [plainKey ? k : cleanText(k, 100), sorted.value] as const;
  });
  // fromEntries defines keys, so a `__proto__` key stays a plain key.
  return { value: Object.fromEntries(entries), customer };
}

/** A tool call of facts (summaries, get_event) as LeanCall: readable facts, one fenced block. */
export function leanCall(
  catalog: Catalog,
  type: string,
  call: ToolCall | null,
  view: ModelView,
): LeanCall {
  if (!call) return { tool_call: null, untrusted_facts: null };
  const marks = catalog.lookup(type)?.untrusted ?? {};
  const classify = (path: readonly string[]): UntrustedKind | null => {
    const top = path[0];
    if (top === undefined) return null;
    // Own properties only: a fact key is never looked up through Object.prototype.
    const mark = Object.hasOwn(marks, top) ? marks[top] : undefined;
    return mark ?? classifyField(path);
  };
  const readable: [string, unknown][] = [];
  const written: [string, unknown][] = [];
  for (const [key, value] of Object.entries(call.input)) {
    const sorted = sortValue(value, [key], classify, view.redact);
    (sorted.customer ? written : readable).push([key, sorted.value]);
  }
  return {
    tool_call: { name: call.name, input: Object.fromEntries(readable) },
    untrusted_facts:
      written.length === 0
        ? null
        : `${openTag(view.nonce)}${JSON.stringify(Object.fromEntries(written))}${closeTag(view.nonce)}`,
  };
}

/**
 * One event in a list for a model (list_pending_events, list_events, the pending resource): the
 * summary with its tool call split by leanCall, and, for a held event, why it waits (fenced: the
 * model or the config wrote it).
 */
export interface LeanSummary extends EventSummary, LeanCall {
  waiting_reason?: string | null;
}

export function leanSummary(
  event: StoredEvent,
  catalog: Catalog,
  view: ModelView,
  waitingReason?: string | null,
): LeanSummary {
  const summary = summarize(event, catalog);
  const lean: LeanSummary = {
    ...summary,
    ...leanCall(catalog, event.type, summary.tool_call, view),
  };
  if (waitingReason !== undefined) {
    lean.waiting_reason = waitingReason === null ? null : fenceModelText(waitingReason, view.nonce);
  }
  return lean;
}

export interface EventDetailView extends Omit<EventDetail, 'event' | 'tool_call'>, LeanCall {
  id: string;
  type: string;
  /** The event as received, fenced value by value; left out unless asked for (see detailForModel). */
  event?: unknown;
}

/**
 * One event in full, as get_event and the event resource show it: its tool call with the facts
 * `enrich` (--enrich) adds, as the agent loop would dispatch it (split by leanCall: one fence), its
 * state and history, and the event as received when `withEvent` (the resource always; get_event
 * when asked, or when no tool call carries its facts). The facts are said once: the event holds
 * every one of them again, so showing both by default doubled the cost of every get_event.
 */
export async function detailForModel(
  event: StoredEvent,
  history: HistoryEntry[],
  catalog: Catalog,
  view: ModelView,
  enrich?: Enrich,
  withEvent: boolean | 'when-unmapped' = true,
): Promise<EventDetailView> {
  const full = detail(event, history, catalog);
  if (full.tool_call && enrich) {
    full.tool_call = { ...full.tool_call, input: await enrich(event.type, full.tool_call.input) };
  }
  const { event: received, tool_call, ...state } = full;
  const shown: EventDetailView = {
    id: event.id,
    type: event.type,
    ...leanCall(catalog, event.type, tool_call, view),
    ...state,
    // A dispatch sink's error can carry the handler's response body or exception message.
    last_error: full.last_error === null ? null : fenceModelText(full.last_error, view.nonce),
    history: full.history.map((entry) => historyForModel(entry, catalog, event.type, view)),
  };
  if (withEvent === true || (withEvent === 'when-unmapped' && tool_call === null)) {
    shown.event = eventForModel(received, { nonce: view.nonce, redact: view.redact }).value;
  }
  return shown;
}

/**
 * A tool call's amount for the text a person or model reads: `$4,120.00` (src/money.ts), or '' when
 * the call has none. The structured result keeps the integer; this is only for the text line.
 */
export function amountText(call: ToolCall | null | undefined): string {
  const shown = callAmount(call?.input);
  return shown === null ? '' : `  ${shown}`;
}

/**
 * One line per event for the human-readable text content: id, type, status, tool, the amount as
 * people read it (src/money.ts) and, for a held event, why it waits (already fenced).
 */
export function summaryLine(summary: EventSummary & { waiting_reason?: string | null }): string {
  const tool = summary.tool_call ? ` → ${summary.tool_call.name}` : '';
  const attempts = summary.attempts > 0 ? ` (attempts ${summary.attempts})` : '';
  const waits = summary.waiting_reason ? `  waits: ${summary.waiting_reason}` : '';
  return `${summary.id}  ${summary.type}  ${statusText(summary)}${attempts}${tool}${amountText(summary.tool_call)}${waits}`;
}

/** The status with how a finished event ended (`acked: approved`): two acks read differently. */
export function statusText(event: Pick<EventSummary, 'status' | 'outcome'>): string {
  return event.outcome === null ? event.status : `${event.status}: ${event.outcome}`;
}

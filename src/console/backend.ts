import { INSTANCE_FRESH_MS } from '../buffer/ledger.js';
import type {
  ChangeListener,
  EventBuffer,
  EventOutcome,
  EventStatus,
  HistoryEntry,
  QueueCounts,
  StoredEvent,
} from '../buffer/buffer.js';
import type { Catalog, ToolCall } from '../catalog/catalog.js';
import type { ApprovalResult } from '../operations/approvals.js';
import type { QueueOperations } from '../operations/queue.js';
import { callAmount } from '../money.js';
import { decisionFields, type DecisionField } from '../catalog/decision-fields.js';
import { dashboardUrl } from '../stripe/dashboard.js';
import { lastArrivals, listNewest } from './newest.js';
import { searchEvents, type SearchResult } from './search.js';

/**
 * Every call the console makes to the queue, and nothing else does. Each change (ack, replay,
 * approve, reject) goes through the operations layer (src/operations/) that MCP and the CLI call,
 * so the refusals are the queue's own typed errors (BeingHandledError, NotAwaitingApprovalError,
 * LeaseLostError, EventNotFoundError …) in the same words; the console shows their messages. Reads
 * that only the console needs (newest first, the last hour's insights) use the store's port.
 */
export interface ConsoleBackend {
  counts(): Promise<QueueCounts>;
  /** Newest first; `through` is a previous page's `older`. */
  page(query: {
    statuses?: readonly EventStatus[];
    types?: readonly string[];
    outcomes?: readonly EventOutcome[];
    limit: number;
    through?: number | null;
  }): Promise<{ events: StoredEvent[]; older: number | null }>;
  event(id: string): Promise<EventView | null>;
  /**
   * Events by event id, object id, an id the object points to (customer, charge …) or a customer's
   * email, newest first: the id at any age, the rest among the newest arrivals (search.ts).
   */
  search(query: string): Promise<SearchResult>;
  /** A person marks the event done (wins over a worker's claim). */
  ack(id: string, by: string, note?: string): Promise<StoredEvent>;
  /** Back to pending: dead or acked (or pending) events only. */
  replay(id: string, by: string, note?: string): Promise<StoredEvent>;
  /** Dispatches the held call through the configured sink. */
  approve(id: string, by: string): Promise<ApprovalResult>;
  /** A person's decision where the model asked a person (operations decide). */
  decide(
    id: string,
    by: string,
    action: string,
    fields: Record<string, unknown>,
  ): Promise<ApprovalResult>;
  /** Acked without a dispatch: done by hand, the note says what. */
  markHandled(id: string, by: string, note: string): Promise<StoredEvent>;
  reject(id: string, by: string, reason: string): Promise<ApprovalResult>;
  /** The event types the catalog maps (for the filter). */
  types(): string[];
  /** The tool an event type maps to, or null. */
  toolOf(type: string): string | null;
  /** The event's amount in its currency (`$4,120.00`), from its tool call's facts; null if none. */
  amountOf(event: StoredEvent): string | null;
  /** What the decisions and approvals over the last hour looked like (bounded work). */
  insights(): Promise<Insights>;
  agent(): Promise<AgentState>;
  watch(listener: ChangeListener): () => void;
}

export interface EventView {
  event: StoredEvent;
  /** The catalog's tool call with the facts it extracts; null for an unmapped type. */
  toolCall: ToolCall | null;
  history: HistoryEntry[];
  /** The object's page in the Stripe Dashboard (test or live), or null when none is known. */
  dashboardUrl: string | null;
  /** The fields of the event's tool's decision (what a person fills), or null when unmapped. */
  decisionFields: DecisionField[] | null;
}

/** The agent loop as this process runs it. */
export interface AgentState {
  /** Whether this process runs the Claude loop (`agent`, `serve --agent`). */
  running: boolean;
  /**
   * The agent loops' store-wide pause (pause_agent / `pause`, the daily budget), whichever
   * process runs the loop; null while they run.
   */
  paused: { reason: string; since: string | null; note: string | null; by: string | null } | null;
  /** Every loop on the store heard from lately, with its own state (a breaker is per process). */
  loops: { host: string; pid: number; paused: string | null; since: string }[];
}

export interface Insights {
  /** The window's start and end (ms) and its one-minute bins, oldest first. */
  from: number;
  to: number;
  bins: { start: number; received: number; decided: number }[];
  /** Decisions per tool and action (or outcome: no_action, ask_a_person, rejected …). */
  mix: Record<string, Record<string, number>>;
  /** Held → approved/rejected, in ms, for the calls a person answered in the window. */
  approvalWaits: number[];
  dispatchFailures: { id: string; at: string; tool: string; note: string }[];
  /** How many events were read and whether the bound cut the window short. */
  scanned: number;
  capped: boolean;
}

export interface ConsoleBackendDeps {
  buffer: EventBuffer;
  catalog: Catalog;
  /** The operations every door uses (approve dispatches through the configured sink). */
  operations: QueueOperations;
  /** Whether this process runs the agent loop. */
  agentRunning: () => boolean;
}

const WINDOW_MS = 60 * 60 * 1000;
const BIN_MS = 60 * 1000;
/** The bounds of the insights: events read, and histories read among them. */
const INSIGHT_EVENTS = 500;
const INSIGHT_HISTORIES = 200;
/** Insights are recomputed at most this often, however many consoles refresh. */
const INSIGHT_TTL_MS = 2000;

export function createConsoleBackend(deps: ConsoleBackendDeps): ConsoleBackend {
  const { buffer, catalog, operations } = deps;
  let cached: { at: number; value: Promise<Insights> } | null = null;

  const computeInsights = async (): Promise<Insights> => {
    const to = Date.now();
    const from = to - WINDOW_MS;
    const bins = Array.from({ length: WINDOW_MS / BIN_MS }, (_, i) => ({
      start: from + i * BIN_MS,
      received: 0,
      decided: 0,
    }));
    const binOf = (ms: number) => bins[Math.floor((ms - from) / BIN_MS)];
    const latest = await lastArrivals((q) => buffer.list(q), INSIGHT_EVENTS);
    const recent = latest.filter((e) => e.receivedAt >= from);
    for (const e of recent) {
      const bin = binOf(e.receivedAt);
      if (bin) bin.received += 1;
    }
    const mix: Insights['mix'] = {};
    const approvalWaits: number[] = [];
    const dispatchFailures: Insights['dispatchFailures'] = [];
    // Decisions are read from the histories of the newest events received in the window.
    const read = recent.slice(0, INSIGHT_HISTORIES);
    const histories = await Promise.all(read.map((e) => buffer.history(e.id).catch(() => [])));
    read.forEach((event, i) => {
      let heldAt: number | null = null;
      const tool = catalog.lookup(event.type)?.tool ?? event.type;
      for (const h of histories[i]!) {
        const at = Date.parse(h.at);
        if (h.kind === 'held') heldAt = at;
        if (h.kind === 'decision' && at >= from) {
          const bin = binOf(at);
          if (bin) bin.decided += 1;
          const name = h.tool_call?.name ?? tool;
          const action =
            h.outcome === 'decided' && typeof h.tool_call?.input.action === 'string'
              ? h.tool_call.input.action
              : (h.outcome ?? 'decided');
          mix[name] ??= {};
          mix[name][action] = (mix[name][action] ?? 0) + 1;
        }
        if (heldAt !== null && h.by !== undefined && (h.kind === 'resumed' || h.kind === 'acked')) {
          if (at >= from) approvalWaits.push(at - heldAt);
          heldAt = null;
        }
        if (h.kind === 'dispatch' && h.outcome === 'failed' && at >= from) {
          dispatchFailures.push({
            id: event.id,
            at: h.at,
            tool: h.tool_call?.name ?? tool,
            note: h.note ?? '',
          });
        }
      }
    });
    dispatchFailures.sort((a, b) => b.at.localeCompare(a.at));
    return {
      from,
      to,
      bins,
      mix,
      approvalWaits,
      dispatchFailures: dispatchFailures.slice(0, 20),
      scanned: read.length,
      // The sample (the last INSIGHT_EVENTS arrivals) lies wholly inside the hour, or not every
      // history in it was read: the figures are a lower bound.
      capped:
        (latest.length >= INSIGHT_EVENTS && recent.length === latest.length) ||
        recent.length > INSIGHT_HISTORIES,
    };
  };

  return {
    async counts() {
      return (await buffer.stats()).counts;
    },
    page(query) {
      return listNewest((q) => buffer.list(q), query);
    },
    search(query) {
      return searchEvents({ get: (id) => buffer.get(id), list: (q) => buffer.list(q) }, query);
    },
    async event(id) {
      const event = await buffer.get(id);
      if (!event) return null;
      const history = await buffer.history(id);
      let toolCall: ToolCall | null = null;
      try {
        toolCall = catalog.toolCall(event.type, event.payload);
      } catch {
        toolCall = null;
      }
      const def = catalog.lookup(event.type);
      return {
        event,
        toolCall,
        history,
        dashboardUrl: dashboardUrl({
          id: event.objectId,
          object: objectType(event.payload),
          livemode: event.livemode,
        }),
        decisionFields: def ? decisionFields(def) : null,
      };
    },
    ack(id, by, note) {
      return operations.ack(id, { by, note });
    },
    async replay(id, by, note) {
      return (await operations.replay(id, { by, note: note ?? 'replayed from the console' })).event;
    },
    approve(id, by) {
      return operations.approve(id, { by });
    },
    decide(id, by, action, fields) {
      return operations.decide(id, { by, action, fields });
    },
    markHandled(id, by, note) {
      return operations.markHandled(id, { by, note });
    },
    reject(id, by, reason) {
      return operations.reject(id, { by, reason });
    },
    types() {
      return catalog.types();
    },
    toolOf(type) {
      return catalog.lookup(type)?.tool ?? null;
    },
    amountOf(event) {
      // One extraction per listed row (at most a page of 50): the facts hold the amount and its
      // currency as the catalog reads them, for every type alike. A payload the catalog cannot
      // read shows no amount rather than failing the page.
      try {
        return callAmount(catalog.toolCall(event.type, event.payload)?.input);
      } catch {
        return null;
      }
    },
    insights() {
      const now = Date.now();
      if (!cached || now - cached.at > INSIGHT_TTL_MS) {
        const value = computeInsights();
        cached = { at: now, value };
        value.catch(() => {
          if (cached?.value === value) cached = null;
        });
      }
      return cached.value;
    },
    async agent() {
      const [pause, instances] = await Promise.all([
        buffer.agentPause().catch(() => null),
        buffer.ledger.instances(INSTANCE_FRESH_MS).catch(() => []),
      ]);
      return {
        loops: instances
          .sort((a, b) => a.started - b.started)
          .map((i) => ({
            host: i.host,
            pid: i.pid,
            paused: i.state === 'paused' ? `${i.reason}${i.note ? `: ${i.note}` : ''}` : null,
            since: new Date(i.since).toISOString(),
          })),
        running: deps.agentRunning(),
        paused: pause?.paused
          ? {
              reason: pause.reason ?? 'manual',
              since: pause.since === null ? null : new Date(pause.since).toISOString(),
              note: pause.note,
              by: pause.by,
            }
          : null,
      };
    },
    watch(listener) {
      return buffer.watch(listener);
    },
  };
}

/** The `object` field of the event's object (`dispute`, `invoice` …), or null when unreadable. */
function objectType(payload: string): string | null {
  try {
    const object = (JSON.parse(payload) as { data?: { object?: { object?: unknown } } }).data
      ?.object?.object;
    return typeof object === 'string' ? object : null;
  } catch {
    return null;
  }
}

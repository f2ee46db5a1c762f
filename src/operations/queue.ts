import {
  NOT_PAUSED,
  type AgentPause,
  type EventOutcome,
  type EventStatus,
  type HistoryEntry,
  type QueuePolicy,
  type QueueStats,
  type StoredEvent,
  type EventBuffer,
} from '../buffer/buffer.js';
import { INSTANCE_FRESH_MS, type AgentInstance } from '../buffer/ledger.js';
import { createCatalog, type Catalog } from '../catalog/catalog.js';
import { EventNotFoundError } from '../errors.js';
import { recordSink, type Sink } from '../dispatch/dispatch.js';
import type { Recheck } from './fresh.js';
import {
  approveAction,
  listApprovals,
  rejectAction,
  type ApprovalResult,
  type PendingApproval,
} from './approvals.js';
import { decideByPerson, markHandled, type PersonDecisionRequest } from './person-decision.js';
import {
  BackfillUnavailableError,
  type BackfillProgress,
  type BackfillRequest,
  type BackfillRunner,
} from './backfill.js';

/**
 * The queue operations people call, once, for every door: MCP tools, the `events` commands, and
 * the console. Each change names who asks (`by`: `mcp:<session>`, `cli:<user>`, `console:<…>`),
 * which the store records in the event's history. Results are plain data; refusals are the store's
 * typed errors (EventNotFoundError, BeingHandledError, NotAwaitingApprovalError, …), so every door
 * shows the same words. Doors format; they do not decide what is allowed — the state machine
 * (buffer/transitions.ts) does.
 */
export interface QueueOperations {
  list(query: ListRequest): Promise<ListResult>;
  /** Throws EventNotFoundError. */
  get(id: string): Promise<{ event: StoredEvent; history: HistoryEntry[] }>;
  /** A person's ack: wins over a worker's claim (the worker's late outcome is refused). */
  ack(id: string, request: { by: string; note?: string }): Promise<StoredEvent>;
  /** A person's nack: refused while a worker holds the event (BeingHandledError). */
  nack(
    id: string,
    request: { by: string; reason: string; retryInMs?: number },
  ): Promise<StoredEvent>;
  /** Back to pending, attempts reset; refused for claimed and awaiting_approval events. */
  replay(
    id: string,
    request: { by: string; note?: string },
  ): Promise<{ event: StoredEvent; previousStatus: EventStatus }>;
  approvals(limit?: number): Promise<PendingApproval[]>;
  approve(id: string, request: { by: string }): Promise<ApprovalResult>;
  reject(id: string, request: { by: string; reason: string }): Promise<ApprovalResult>;
  /**
   * A person's decision where the model asked a person: one of the tool's actions and its fields,
   * checked by the tool's decision schema (InvalidDecisionError names each bad field), dispatched
   * like an approved call (person-decision.ts).
   */
  decide(id: string, request: PersonDecisionRequest): Promise<ApprovalResult>;
  /** Acked without a dispatch: a person did it by hand, and the note says what. */
  markHandled(id: string, request: { by: string; note: string }): Promise<StoredEvent>;
  /** Throws BackfillUnavailableError without STRIPE_SECRET_KEY. */
  backfill(request: BackfillRequest): Promise<BackfillProgress>;
  /** Whether backfill can run here (it needs STRIPE_SECRET_KEY). */
  readonly canBackfill: boolean;
  status(): Promise<QueueStatus>;
  /**
   * Pauses the agent loops on this store (every instance): they finish what they hold and claim
   * nothing new; events wait pending. Kept in the store until resumed.
   */
  pauseAgent(request: { by: string; reason?: string }): Promise<AgentPause>;
  /** Lifts the store-wide pause: a person's or the budget's (set again while the budget is spent). */
  resumeAgent(request: { by: string }): Promise<AgentPause>;
}

export interface ListRequest {
  /** Default: every status. */
  statuses?: readonly EventStatus[];
  types?: readonly string[];
  /** Only finished events that ended so (buffer.ts EVENT_OUTCOMES); default: any. */
  outcomes?: readonly EventOutcome[];
  /** Bounded by the store's page size; page on with `nextCursor`. */
  limit: number;
  cursor?: string | null;
}

export interface ListResult {
  events: StoredEvent[];
  nextCursor: string | null;
}

export interface QueueStatus extends QueueStats {
  /** The policy the store keeps and every process on it follows. */
  policy: QueuePolicy;
  /** Whether the agent loops are paused store-wide, and why (manual, budget). */
  agent: AgentPause;
  /** The agent loops on the store heard from lately, each with its own state (the breaker). */
  agents: AgentInstance[];
  /**
   * Whether this process re-reads an event's object from Stripe before acting on it (it has
   * STRIPE_SECRET_KEY); false: decisions and approvals use the event's snapshot alone.
   */
  factsRechecked: boolean;
}

export interface QueueOperationsOptions {
  store: EventBuffer;
  /** Where an approved call is dispatched (the config's `dispatch`); default: recorded only. */
  sink?: Sink;
  /** Absent without STRIPE_SECRET_KEY. */
  backfill?: BackfillRunner;
  /** Re-reads an approved call's object before it is carried out (with `catalog`). */
  recheck?: Recheck;
  /** The catalog a person's decision is checked by (the server's); default: the built-in one. */
  catalog?: Catalog;
}

/** The most events one list call returns; larger asks page on. */
export const MAX_PAGE = 500;

export function createQueueOperations(options: QueueOperationsOptions): QueueOperations {
  const { store } = options;
  const sink = options.sink ?? recordSink;
  const catalog = options.catalog ?? createCatalog();
  // A call a person carries out (approved, or their own decision) is checked against the object
  // as it is now, when this process can read Stripe (fresh.ts).
  const fresh = options.recheck ? { recheck: options.recheck, catalog } : undefined;

  return {
    canBackfill: options.backfill !== undefined,

    list({ statuses, types, outcomes, limit, cursor }) {
      const wanted = types && types.length > 0 ? [...new Set(types)] : undefined;
      return store.list({
        statuses,
        types: wanted,
        // Empty means "any", like types: a door's empty filter never lists nothing.
        outcomes: outcomes && outcomes.length > 0 ? [...new Set(outcomes)] : undefined,
        limit: Math.max(1, Math.min(MAX_PAGE, limit)),
        cursor: cursor ?? null,
      });
    },

    async get(id) {
      const event = await store.get(id);
      if (!event) throw new EventNotFoundError(id);
      return { event, history: await store.history(id) };
    },

    ack(id, { by, note }) {
      return store.ack(id, { by, note });
    },

    nack(id, { by, reason, retryInMs }) {
      return store.nack(id, { by, reason, retryInMs });
    },

    async replay(id, { by, note }) {
      const before = await store.get(id);
      if (!before) throw new EventNotFoundError(id);
      // The store refuses a claimed or held event (BeingHandledError) in the same atomic step
      // as the change, so a worker that claims it meanwhile is never pulled out from under.
      const event = await store.replay(id, { by, note });
      return { event, previousStatus: before.status };
    },

    approvals(limit) {
      return listApprovals(store, limit);
    },

    approve(id, { by }) {
      return approveAction(store, sink, id, by, { fresh });
    },

    reject(id, { by, reason }) {
      return rejectAction(store, id, reason, by);
    },

    decide(id, request) {
      return decideByPerson(store, sink, catalog, id, request, { fresh });
    },

    markHandled(id, request) {
      return markHandled(store, id, request);
    },

    backfill(request) {
      if (!options.backfill) return Promise.reject(new BackfillUnavailableError());
      return options.backfill(request);
    },

    async status() {
      const [stats, policy, agent, agents] = await Promise.all([
        store.stats(),
        store.policy(),
        store.agentPause(),
        store.ledger.instances(INSTANCE_FRESH_MS).catch(() => []),
      ]);
      agents.sort((a, b) => a.started - b.started);
      return { ...stats, policy, agent, agents, factsRechecked: options.recheck?.enabled ?? false };
    },

    async pauseAgent({ by, reason }) {
      const pause: AgentPause = {
        paused: true,
        reason: 'manual',
        by,
        note: reason ?? null,
        since: Date.now(),
        until: null,
      };
      await store.setAgentPause(pause);
      return pause;
    },

    async resumeAgent() {
      await store.setAgentPause({ ...NOT_PAUSED });
      return { ...NOT_PAUSED };
    },
  };
}

import type { Happening } from './happenings.js';
import type { AgentLedger } from './ledger.js';
import type { PeopleStore } from './people.js';
import type { SubscriptionStore } from './subscriptions.js';
import { DEFAULT_POLICY, type Command, type QueuePolicy } from './transitions.js';

export type { Command, QueuePolicy };

/**
 * The buffer port: the one interface every store adapter (memory, SQLite, Redis) implements and
 * every consumer (ingress, MCP surface, agent loop, CLI) depends on. It is async and lease-based so
 * that an out-of-process store can implement it with the same guarantees.
 */
export const EVENT_STATUSES = ['pending', 'claimed', 'acked', 'dead', 'awaiting_approval'] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/**
 * How a finished (`acked`) event ended, stored with the state change that ended it (same commit),
 * so a payments team can tell an approved call from a rejected one. Null while the event is not
 * finished, for dead events, and after a replay. The table is in docs/ARCHITECTURE.md.
 * - `dispatched`: the agent's decided call went to the handler (any sink kind), no person involved;
 * - `approved`: a person approved the held call and it was dispatched (also when the loop
 *   dispatched an interrupted approval again);
 * - `rejected`: a person rejected the held call; `expired`: its approval ran out (the expiry sweep);
 * - `decided`: a person chose the action for an "ask a person" event and it was dispatched;
 * - `handled`: a person acked it by hand, nothing dispatched (also a held call acked unapproved);
 * - `superseded`: the object changed before anyone acted (issue #21);
 * - `no_action`: the agent finished it without a call (the model decided none was needed, or its
 *   type left the catalog);
 * - `dry_run`: the agent decided a call in dry-run mode and did not dispatch it.
 */
export const EVENT_OUTCOMES = [
  'dispatched',
  'approved',
  'rejected',
  'expired',
  'decided',
  'handled',
  'superseded',
  'no_action',
  'dry_run',
] as const;
export type EventOutcome = (typeof EVENT_OUTCOMES)[number];

export function isEventOutcome(value: string): value is EventOutcome {
  return (EVENT_OUTCOMES as readonly string[]).includes(value);
}

/** Seven days: how long an id is remembered for dedup and how long finished events are kept. */
export const DEDUP_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;
export const DEFAULT_MAX_ATTEMPTS = DEFAULT_POLICY.maxAttempts;

/** A verified event as the ingress hands it over. `payload` is the body exactly as received. */
export interface IncomingEvent {
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  objectId: string | null;
  payload: string;
}

export interface StoredEvent extends IncomingEvent {
  status: EventStatus;
  attempts: number;
  receivedAt: number;
  updatedAt: number;
  /** When a nacked event may be claimed again (ms since epoch); null when it may be now. */
  retryAt: number | null;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  lastError: string | null;
  /** How the event ended (EVENT_OUTCOMES); null unless it is acked. */
  outcome: EventOutcome | null;
}

export type HistoryKind =
  | 'received'
  | 'claimed'
  | 'released'
  | 'lease_expired'
  | 'acked'
  | 'nacked'
  | 'dead'
  | 'replayed'
  | 'held'
  | 'resumed'
  | 'decision'
  | 'dispatch'
  | 'note';

export interface HistoryEntry {
  at: string;
  kind: HistoryKind;
  model?: string;
  tool_call?: { name: string; input: Record<string, unknown> };
  outcome?: string;
  note?: string;
  /** Model tokens spent on a decision. */
  usage?: { input_tokens: number; output_tokens: number };
  latency_ms?: number;
  /** The person who made the change (MCP session, CLI user, console), when one did. */
  by?: string;
}

/** A history entry to record; the store stamps the time. */
export type HistoryInput = Omit<HistoryEntry, 'at'>;

export type AppendResult = { status: 'queued' | 'duplicate'; id: string };

export interface ListQuery {
  /** Default: every status. */
  statuses?: readonly EventStatus[];
  types?: readonly string[];
  /** Only finished events that ended so (default: any, unfinished ones included). */
  outcomes?: readonly EventOutcome[];
  limit: number;
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string | null;
}

export interface ListPage {
  events: StoredEvent[];
  nextCursor: string | null;
  /**
   * The position after the page's last event, even on the last page (null or absent when the page
   * is empty): a reader that follows every arrival (MCP Events' cursors) resumes exactly after it.
   * Every store sets it on a page with events.
   */
  lastCursor?: string | null;
}

export type QueueCounts = Record<EventStatus, number>;

export interface QueueStats {
  counts: QueueCounts;
  /** Pending events per type. */
  pendingByType: Record<string, number>;
  /** receivedAt of the oldest pending event, or null when nothing is pending. */
  oldestPendingReceivedAt: number | null;
}

export interface ClaimOptions {
  owner: string;
  leaseMs: number;
  limit?: number;
  types?: readonly string[];
}

/** A nack: by the worker holding the claim (`token`), or by a person (`by`) on an unclaimed event. */
export interface NackOptions {
  reason: string;
  retryInMs?: number;
  token?: string;
  by?: string;
  /** Entries recorded in the same commit as the state change (e.g. the failed dispatch). */
  record?: readonly HistoryInput[];
}

/** An ack: by the worker holding the claim (`token`), or by a person (`by`), who wins over a claim. */
export interface AckOptions {
  token?: string;
  by?: string;
  note?: string;
  /** Entries recorded in the same commit (the decision, the dispatch): one fsync, not three. */
  record?: readonly HistoryInput[];
  /**
   * How the event ended, stored in the same commit. Default: `handled` for a person's ack,
   * `dispatched` for a worker's (every path in src/ says which).
   */
  outcome?: EventOutcome;
}

/** A reject's options: `expired` records an approval that ran out instead of a person's reject. */
export interface RejectOptions {
  outcome?: Extract<EventOutcome, 'rejected' | 'expired'>;
}

/** What changed in the buffer; `external` means another process changed the store. */
export interface BufferChange {
  kind:
    | 'queued'
    | 'claimed'
    | 'released'
    | 'held'
    | 'acked'
    | 'nacked'
    | 'dead'
    | 'replayed'
    /** The agent pause changed (agentPause()). */
    | 'agent'
    | 'external';
  id?: string;
  type?: string;
  /**
   * Set on a change another instance made (Redis tells its kind and id too): work that only the
   * process making the change should do, such as notifying people, skips it.
   */
  remote?: true;
}

/** The agent loops' pause, as stored. `reason`: `manual`, `budget` or `breaker`. */
export interface AgentPause {
  paused: boolean;
  reason: string | null;
  /** Who paused: a person (`mcp:…`, `cli:…`) or a loop (`agent:host:pid`). */
  by: string | null;
  /** Free text: why, in words. */
  note: string | null;
  /** When it was set (ms). */
  since: number | null;
  /** When it lifts by itself (ms), e.g. the next UTC day for a budget; null when it does not. */
  until: number | null;
}

export const NOT_PAUSED: AgentPause = {
  paused: false,
  reason: null,
  by: null,
  note: null,
  since: null,
  until: null,
};

export type ChangeListener = (change: BufferChange) => void;

export interface BufferHealth {
  ok: boolean;
  kind: string;
  detail?: string;
}

export interface EventBuffer {
  readonly kind: string;
  /**
   * The agent's guardrails counted in the store (ledger.ts): the day's model spend, per-tool
   * dispatch slots, the loops running on it. Every process on the store shares it.
   */
  readonly ledger: AgentLedger;
  /** MCP Events webhook subscriptions and their delivery leases (subscriptions.ts). */
  readonly subscriptions: SubscriptionStore;
  /**
   * The people who sign in under their own name and role (people.ts): shared by every process on
   * the store, so a person added anywhere is known everywhere. Token hashes only.
   */
  readonly people: PeopleStore;
  /**
   * Stores the event unless its id is already known. Resolves only once the event is durable.
   * Rejects with BufferFullError at the pending limit and StoreUnavailableError when the store fails.
   */
  append(event: IncomingEvent): Promise<AppendResult>;
  get(id: string): Promise<StoredEvent | null>;
  history(id: string): Promise<HistoryEntry[]>;
  list(query: ListQuery): Promise<ListPage>;
  stats(): Promise<QueueStats>;
  /**
   * The `created` time (Unix seconds) of the newest event ever queued here, or null when none
   * was. Kept as events arrive (pruning does not lower it), so it costs the same on a full store:
   * an automatic backfill resumes from it.
   */
  newestCreated(): Promise<number | null>;
  /**
   * The position after the newest event ever queued (a list cursor): "from now on" for a reader
   * that follows arrivals (MCP Events). Pruning does not lower it.
   */
  headCursor(): Promise<string>;
  /**
   * Leases up to `limit` (default 1) due pending events, oldest first, to `owner`. Each returned
   * event's `leaseOwner` is its claim token (`<owner>~<nonce>`, new for every claim): every later
   * change the worker makes carries it, and is refused (LeaseLostError) once the claim is lost.
   */
  claim(options: ClaimOptions): Promise<StoredEvent[]>;
  /**
   * Applies one command to one event by the rules in transitions.ts, atomically (the check and
   * the write cannot be separated by another process's change), and resolves once it is durable.
   * Rejects with EventNotFoundError, or the rules' typed refusal with nothing changed.
   */
  apply(id: string, command: Command): Promise<StoredEvent>;
  /** `apply` renew: throws LeaseLostError when `token` no longer holds the claim. */
  renew(id: string, token: string, leaseMs: number): Promise<StoredEvent>;
  /** Throws LeaseLostError unless `token` holds the claim now (a read: the pre-dispatch check). */
  assertHeld(id: string, token: string): Promise<void>;
  release(
    id: string,
    token: string,
    options?: { retryInMs?: number; note?: string },
  ): Promise<StoredEvent>;
  /** Parks the event `token` holds as `awaiting_approval` (no lease: it waits for a person). */
  hold(
    id: string,
    token: string,
    note?: string,
    record?: readonly HistoryInput[],
  ): Promise<StoredEvent>;
  ack(id: string, options?: AckOptions): Promise<StoredEvent>;
  nack(id: string, options: NackOptions): Promise<StoredEvent>;
  /** A held call approved by `by`: claimed under a new token (returned as `leaseOwner`). */
  approve(id: string, by: string, leaseMs: number): Promise<StoredEvent>;
  reject(id: string, by: string, reason: string, options?: RejectOptions): Promise<StoredEvent>;
  replay(id: string, options?: { by?: string; note?: string }): Promise<StoredEvent>;
  addHistory(id: string, entry: HistoryInput): Promise<void>;
  /** The queue's policy as stored (every process that opens the store follows it). */
  policy(): Promise<QueuePolicy>;
  /** Stores the given parts of the policy (serve/agent flags); returns the whole policy. */
  setPolicy(policy: Partial<QueuePolicy>): Promise<QueuePolicy>;
  /**
   * Whether the agent loops on this store are paused, and why: kept in the store, so a pause
   * asked from any door (MCP, CLI) reaches every loop, and every process can report it.
   */
  agentPause(): Promise<AgentPause>;
  /** Sets (or, with `paused: false`, clears) the pause; announced as an `agent` change. */
  setAgentPause(pause: AgentPause): Promise<void>;
  /**
   * The queue's happenings (happenings.ts) after log position `after`, in order, at most `limit`
   * (capped at MAX_HAPPENINGS_READ): holds, events gone dead and pauses, each written in the
   * commit of its change. Pruned with the events.
   */
  happenings(after: number, limit: number): Promise<Happening[]>;
  /** The position after the newest happening ever logged (0: none); pruning does not lower it. */
  happeningsHead(): Promise<number>;
  /** Returns expired leases to pending (counting the attempt). Returns how many. */
  recoverExpiredLeases(): Promise<number>;
  /** Deletes acked and dead events last changed before `before` (ms). Returns how many. */
  prune(before: number): Promise<number>;
  health(): Promise<BufferHealth>;
  /**
   * Calls `listener` after each committed change, including changes made by other processes on
   * the same store: with their kind and id where the store can tell (Redis), else as `external`
   * without an id (SQLite's data_version). Returns the unsubscribe function.
   */
  watch(listener: ChangeListener): () => void;
  close(): Promise<void>;
}

export interface BufferOptions {
  /** append rejects new events once this many are pending. */
  maxPending?: number;
  /** When given, stored as the queue's policy on open (else the stored policy, or the default). */
  maxAttempts?: number;
  retryBaseMs?: number;
  /** Injectable clock (ms since epoch) so tests can expire leases without sleeping. */
  now?: () => number;
}

export function emptyCounts(): QueueCounts {
  return { pending: 0, claimed: 0, acked: 0, dead: 0, awaiting_approval: 0 };
}

export function isEventStatus(value: string): value is EventStatus {
  return (EVENT_STATUSES as readonly string[]).includes(value);
}

import { BufferFullError, EventNotFoundError, StoreUnavailableError } from '../errors.js';
import {
  emptyCounts,
  NOT_PAUSED,
  type AgentPause,
  type AppendResult,
  type BufferHealth,
  type ChangeListener,
  type BufferOptions,
  type ClaimOptions,
  type EventBuffer,
  type HistoryEntry,
  type IncomingEvent,
  type ListPage,
  type ListQuery,
  type QueueStats,
  type StoredEvent,
} from './buffer.js';
import { ChangeFeed } from './changes.js';
import {
  happeningOf,
  isPauseHappening,
  pauseText,
  MAX_HAPPENINGS_READ,
  type Happening,
  type HappeningKind,
} from './happenings.js';
import { MemoryLedger, type AgentLedger } from './ledger.js';
import { MemoryPeople, type PeopleStore } from './people.js';
import { MemorySubscriptions, type SubscriptionStore } from './subscriptions.js';
import { claimToken, CommandMethods, policyFrom } from './commands.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { createdBefore, isActive } from './object-order.js';
import {
  claimed,
  expired,
  touches,
  transition,
  type Command,
  type QueuePolicy,
  type Transition,
} from './transitions.js';

interface Row {
  seq: number;
  event: StoredEvent;
  history: HistoryEntry[];
}

/** Keeps everything in process memory: for tests and as the executable reading of the port. */
export class MemoryBuffer extends CommandMethods implements EventBuffer {
  readonly kind = 'memory';
  readonly ledger: AgentLedger;
  readonly people: PeopleStore = new MemoryPeople();
  readonly subscriptions: SubscriptionStore;
  private readonly rows = new Map<string, Row>();
  private seq = 0;
  private newest: number | null = null;
  private closed = false;
  private readonly feed = new ChangeFeed();
  private readonly now: () => number;
  private readonly maxPending: number;
  private currentPolicy: QueuePolicy;
  private pause: AgentPause = { ...NOT_PAUSED };
  /** The happenings log (happenings.ts) and its sequence. */
  private readonly log: Happening[] = [];
  private logSeq = 0;

  constructor(options: BufferOptions = {}) {
    super();
    this.now = options.now ?? Date.now;
    this.ledger = new MemoryLedger(() => this.now());
    this.subscriptions = new MemorySubscriptions(() => this.now());
    this.maxPending = options.maxPending ?? Number.POSITIVE_INFINITY;
    this.currentPolicy = policyFrom({
      maxAttempts: options.maxAttempts,
      retryBaseMs: options.retryBaseMs,
    });
  }

  async append(incoming: IncomingEvent): Promise<AppendResult> {
    this.assertOpen();
    if (this.rows.has(incoming.id)) return { status: 'duplicate', id: incoming.id };
    if (this.countStatus('pending') >= this.maxPending) throw new BufferFullError(this.maxPending);
    const now = this.now();
    const event: StoredEvent = {
      ...incoming,
      status: 'pending',
      attempts: 0,
      receivedAt: now,
      updatedAt: now,
      retryAt: null,
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: null,
      outcome: null,
    };
    this.rows.set(incoming.id, {
      seq: ++this.seq,
      event,
      history: [{ at: iso(now), kind: 'received' }],
    });
    if (this.newest === null || incoming.created > this.newest) this.newest = incoming.created;
    this.feed.emit({ kind: 'queued', id: incoming.id, type: incoming.type });
    return { status: 'queued', id: incoming.id };
  }

  async newestCreated(): Promise<number | null> {
    this.assertOpen();
    return this.newest;
  }

  async headCursor(): Promise<string> {
    this.assertOpen();
    return encodeCursor(this.seq);
  }

  async get(id: string): Promise<StoredEvent | null> {
    this.assertOpen();
    const row = this.rows.get(id);
    return row ? { ...row.event } : null;
  }

  async history(id: string): Promise<HistoryEntry[]> {
    return [...this.row(id).history];
  }

  async list(query: ListQuery): Promise<ListPage> {
    this.assertOpen();
    const after = decodeCursor(query.cursor);
    const page: Row[] = [];
    let more = false;
    for (const row of this.rows.values()) {
      if (row.seq <= after) continue;
      if (query.statuses && !query.statuses.includes(row.event.status)) continue;
      if (query.types && !query.types.includes(row.event.type)) continue;
      if (query.outcomes && !query.outcomes.includes(row.event.outcome!)) continue;
      if (page.length === query.limit) {
        more = true;
        break;
      }
      page.push(row);
    }
    const last = page.at(-1);
    return {
      events: page.map((r) => ({ ...r.event })),
      nextCursor: more && last ? encodeCursor(last.seq) : null,
      lastCursor: last ? encodeCursor(last.seq) : null,
    };
  }

  async stats(): Promise<QueueStats> {
    this.assertOpen();
    const counts = emptyCounts();
    const pendingByType: Record<string, number> = {};
    let oldest: number | null = null;
    for (const { event } of this.rows.values()) {
      counts[event.status] += 1;
      if (event.status === 'pending') {
        pendingByType[event.type] = (pendingByType[event.type] ?? 0) + 1;
        if (oldest === null) oldest = event.receivedAt;
      }
    }
    return { counts, pendingByType, oldestPendingReceivedAt: oldest };
  }

  async claim(options: ClaimOptions): Promise<StoredEvent[]> {
    await this.recoverExpiredLeases();
    const now = this.now();
    const limit = options.limit ?? 1;
    const token = claimToken(options.owner);
    const out: StoredEvent[] = [];
    for (const row of this.rows.values()) {
      if (out.length >= limit) break;
      const e = row.event;
      if (e.status !== 'pending' || (e.retryAt !== null && e.retryAt > now)) continue;
      if (options.types && !options.types.includes(e.type)) continue;
      if (this.olderActive(e)) continue;
      this.commit(row, claimed(e, token, options.leaseMs, now), now);
      out.push({ ...e });
    }
    return out;
  }

  async apply(id: string, command: Command): Promise<StoredEvent> {
    const row = this.row(id);
    const now = this.now();
    this.commit(row, transition(row.event, command, this.currentPolicy, now), now);
    return { ...row.event };
  }

  async policy(): Promise<QueuePolicy> {
    this.assertOpen();
    return { ...this.currentPolicy };
  }

  async agentPause(): Promise<AgentPause> {
    this.assertOpen();
    return { ...this.pause };
  }

  async setAgentPause(pause: AgentPause): Promise<void> {
    this.assertOpen();
    const previous = pauseText(this.pause);
    this.pause = pause.paused ? { ...pause } : { ...NOT_PAUSED };
    if (isPauseHappening(previous, pauseText(this.pause))) {
      this.happen('paused', null, { ...this.pause }, this.now());
    }
    this.feed.emit({ kind: 'agent' });
  }

  async happenings(after: number, limit: number): Promise<Happening[]> {
    this.assertOpen();
    const max = Math.max(0, Math.min(limit, MAX_HAPPENINGS_READ));
    return this.log
      .filter((h) => h.seq > after)
      .slice(0, max)
      .map((h) => ({ ...h }));
  }

  async happeningsHead(): Promise<number> {
    this.assertOpen();
    return this.logSeq;
  }

  private happen(
    kind: HappeningKind,
    eventId: string | null,
    pause: AgentPause | null,
    at: number,
  ): void {
    this.log.push({ seq: ++this.logSeq, kind, at, eventId, pause });
  }

  async setPolicy(policy: Partial<QueuePolicy>): Promise<QueuePolicy> {
    this.assertOpen();
    this.currentPolicy = policyFrom({ ...this.currentPolicy, ...policy });
    return { ...this.currentPolicy };
  }

  async recoverExpiredLeases(): Promise<number> {
    this.assertOpen();
    const now = this.now();
    let n = 0;
    for (const row of this.rows.values()) {
      const t = expired(row.event, this.currentPolicy, now);
      if (!t) continue;
      this.commit(row, t, now);
      n += 1;
    }
    return n;
  }

  async prune(before: number): Promise<number> {
    this.assertOpen();
    let n = 0;
    for (const [id, row] of this.rows) {
      const e = row.event;
      if ((e.status === 'acked' || e.status === 'dead') && e.updatedAt < before) {
        this.rows.delete(id);
        n += 1;
      }
    }
    // Happenings go with the events: older than the same bound.
    while (this.log.length > 0 && this.log[0]!.at < before) this.log.shift();
    return n;
  }

  async health(): Promise<BufferHealth> {
    return this.closed
      ? { ok: false, kind: this.kind, detail: 'closed' }
      : { ok: true, kind: this.kind };
  }

  watch(listener: ChangeListener): () => void {
    return this.feed.add(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Writes a transition's state and history, then announces its change. */
  private commit(row: Row, t: Transition, now: number): void {
    if (t.noop) return;
    const at = iso(now);
    for (const entry of t.entries) row.history.push({ ...entry, at });
    // A renewed lease or a note is not a change of state: updatedAt (what prune ages) stays.
    const touched = touches(row.event, t.state);
    Object.assign(row.event, t.state, touched ? { updatedAt: now } : {});
    const happening = happeningOf(t.change);
    if (happening) this.happen(happening, row.event.id, null, now);
    if (t.change) this.feed.emit({ kind: t.change, id: row.event.id, type: row.event.type });
  }

  /** Whether an older event about the same object is still active (object-order.ts). */
  private olderActive(e: StoredEvent): boolean {
    if (e.objectId === null) return false;
    for (const row of this.rows.values()) {
      const o = row.event;
      if (o.objectId === e.objectId && o.id !== e.id && isActive(o.status) && createdBefore(o, e)) {
        return true;
      }
    }
    return false;
  }

  private countStatus(status: StoredEvent['status']): number {
    let n = 0;
    for (const row of this.rows.values()) if (row.event.status === status) n += 1;
    return n;
  }

  private row(id: string): Row {
    this.assertOpen();
    const row = this.rows.get(id);
    if (!row) throw new EventNotFoundError(id);
    return row;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreUnavailableError('the memory buffer is closed');
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

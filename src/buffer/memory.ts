import { BufferFullError, EventNotFoundError, StoreUnavailableError } from '../errors.js';
import {
  DEFAULT_MAX_ATTEMPTS,
  emptyCounts,
  type AppendResult,
  type BufferHealth,
  type ChangeListener,
  type BufferOptions,
  type ClaimOptions,
  type EventBuffer,
  type HistoryEntry,
  type HistoryInput,
  type IncomingEvent,
  type ListPage,
  type ListQuery,
  type NackOptions,
  type QueueStats,
  type StoredEvent,
} from './buffer.js';
import { CHANGE_OF, ChangeFeed } from './changes.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import {
  afterFailure,
  assertAwaitingApproval,
  assertHeldBy,
  assertNackable,
  LEASE_EXPIRY_RETRY_MS,
} from './transitions.js';

interface Row {
  seq: number;
  event: StoredEvent;
  history: HistoryEntry[];
}

/** Keeps everything in process memory: for tests and as the executable reading of the port. */
export class MemoryBuffer implements EventBuffer {
  readonly kind = 'memory';
  private readonly rows = new Map<string, Row>();
  private seq = 0;
  private newest: number | null = null;
  private closed = false;
  private readonly feed = new ChangeFeed();
  private readonly now: () => number;
  private readonly maxPending: number;
  private readonly maxAttempts: number;

  constructor(options: BufferOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxPending = options.maxPending ?? Number.POSITIVE_INFINITY;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
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
    const claimed: StoredEvent[] = [];
    for (const row of this.rows.values()) {
      if (claimed.length >= limit) break;
      const e = row.event;
      if (e.status !== 'pending' || (e.retryAt !== null && e.retryAt > now)) continue;
      if (options.types && !options.types.includes(e.type)) continue;
      Object.assign(e, {
        status: 'claimed',
        leaseOwner: options.owner,
        leaseExpiresAt: now + options.leaseMs,
        updatedAt: now,
      });
      this.record(row, { at: iso(now), kind: 'claimed', note: options.owner });
      claimed.push({ ...e });
    }
    return claimed;
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const e = this.row(id).event;
    const now = this.now();
    if (e.status !== 'claimed' || e.leaseOwner !== owner || (e.leaseExpiresAt ?? 0) <= now) {
      return false;
    }
    e.leaseExpiresAt = now + leaseMs;
    return true;
  }

  async release(id: string, owner: string): Promise<void> {
    const row = this.row(id);
    const e = row.event;
    if (e.status !== 'claimed' || e.leaseOwner !== owner) return;
    const now = this.now();
    Object.assign(e, { status: 'pending', leaseOwner: null, leaseExpiresAt: null, updatedAt: now });
    this.record(row, { at: iso(now), kind: 'released', note: owner });
  }

  async hold(
    id: string,
    owner: string,
    note?: string,
    record: readonly HistoryInput[] = [],
  ): Promise<StoredEvent> {
    const row = this.row(id);
    const e = row.event;
    assertHeldBy(id, e.status, e.leaseOwner, owner);
    const now = this.now();
    for (const entry of record) this.record(row, { at: iso(now), ...entry });
    Object.assign(e, {
      status: 'awaiting_approval',
      leaseOwner: null,
      leaseExpiresAt: null,
      updatedAt: now,
    });
    this.record(row, withNote({ at: iso(now), kind: 'held' }, note));
    return { ...e };
  }

  async resume(id: string, owner: string, leaseMs: number): Promise<StoredEvent> {
    const row = this.row(id);
    const e = row.event;
    assertAwaitingApproval(id, e.status);
    const now = this.now();
    Object.assign(e, {
      status: 'claimed',
      leaseOwner: owner,
      leaseExpiresAt: now + leaseMs,
      updatedAt: now,
    });
    this.record(row, { at: iso(now), kind: 'resumed', note: owner });
    return { ...e };
  }

  async ack(id: string, note?: string, record: readonly HistoryInput[] = []): Promise<StoredEvent> {
    const row = this.row(id);
    const e = row.event;
    if (e.status === 'acked') return { ...e };
    const now = this.now();
    for (const entry of record) this.record(row, { at: iso(now), ...entry });
    Object.assign(e, {
      status: 'acked',
      leaseOwner: null,
      leaseExpiresAt: null,
      retryAt: null,
      updatedAt: now,
    });
    this.record(row, withNote({ at: iso(now), kind: 'acked' }, note));
    return { ...e };
  }

  async nack(id: string, options: NackOptions): Promise<StoredEvent> {
    const row = this.row(id);
    const e = row.event;
    assertNackable(id, e.status);
    const now = this.now();
    for (const entry of options.record ?? []) this.record(row, { at: iso(now), ...entry });
    const next = afterFailure(e.attempts, this.maxAttempts, now, options.retryInMs ?? 0);
    Object.assign(e, {
      ...next,
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: options.reason,
      updatedAt: now,
    });
    this.record(row, {
      at: iso(now),
      kind: next.status === 'dead' ? 'dead' : 'nacked',
      note: options.reason,
    });
    return { ...e };
  }

  async replay(id: string, note?: string): Promise<StoredEvent> {
    const row = this.row(id);
    const now = this.now();
    Object.assign(row.event, {
      status: 'pending',
      attempts: 0,
      retryAt: null,
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: null,
      updatedAt: now,
    });
    this.record(row, withNote({ at: iso(now), kind: 'replayed' }, note));
    return { ...row.event };
  }

  async addHistory(id: string, entry: HistoryInput): Promise<void> {
    this.row(id).history.push({ at: iso(this.now()), ...entry });
  }

  async recoverExpiredLeases(): Promise<number> {
    this.assertOpen();
    const now = this.now();
    let n = 0;
    for (const row of this.rows.values()) {
      const e = row.event;
      if (e.status !== 'claimed' || (e.leaseExpiresAt ?? 0) > now) continue;
      const next = afterFailure(e.attempts, this.maxAttempts, now, LEASE_EXPIRY_RETRY_MS);
      Object.assign(e, {
        ...next,
        leaseOwner: null,
        leaseExpiresAt: null,
        lastError: 'lease expired',
        updatedAt: now,
      });
      this.record(row, { at: iso(now), kind: next.status === 'dead' ? 'dead' : 'lease_expired' });
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

  private record(row: Row, entry: HistoryEntry): void {
    row.history.push(entry);
    const change = CHANGE_OF[entry.kind];
    if (change) this.feed.emit({ kind: change, id: row.event.id });
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

function withNote(entry: HistoryEntry, note: string | undefined): HistoryEntry {
  return note === undefined ? entry : { ...entry, note };
}

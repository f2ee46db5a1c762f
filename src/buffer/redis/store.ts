import crypto from 'node:crypto';
import type { Redis } from 'ioredis';
import { BufferFullError, EventNotFoundError, StoreUnavailableError } from '../../errors.js';
import {
  DEDUP_WINDOW_MS,
  EVENT_STATUSES,
  emptyCounts,
  type AgentPause,
  isEventStatus,
  type AppendResult,
  type BufferHealth,
  type BufferOptions,
  type ChangeListener,
  type ClaimOptions,
  type EventBuffer,
  type EventStatus,
  type HistoryEntry,
  type IncomingEvent,
  type ListPage,
  type ListQuery,
  type QueueStats,
  type StoredEvent,
} from '../buffer.js';
import { ChangeFeed } from '../changes.js';
import { happeningFrom, MAX_HAPPENINGS_READ, pauseText, type Happening } from '../happenings.js';
import type { HasParkedStore, ParkedNotification, ParkedStore } from '../parked.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { RecentIds } from '../recent-ids.js';
import type { AgentLedger } from '../ledger.js';
import type { PeopleStore } from '../people.js';
import {
  DEFAULT_POLICY,
  LEASE_EXPIRY_RETRY_MS,
  touches,
  transition,
  type Command,
  type Lease,
  type QueuePolicy,
} from '../transitions.js';
import {
  claimToken,
  CommandMethods,
  entryRow,
  pauseFrom,
  policyFrom,
  stateColumns,
} from '../commands.js';
import {
  closedError,
  RedisConnection,
  storeError,
  type RedisConnectionOptions,
} from './connection.js';
import { LEDGER_SCRIPTS, RedisLedger, type LedgerScriptName } from './ledger.js';
import { PEOPLE_SCRIPTS, RedisPeople, type PeopleScriptName } from './people.js';
import { RedisSubscriptions } from './subscriptions.js';
import type { SubscriptionStore } from '../subscriptions.js';
import { iso, nullableNumber, pairs, parseHistory, toEvent } from './rows.js';
import { REDIS_SCHEMA_VERSION, SCRIPTS, type ScriptName } from './scripts.js';
import { redactRedisUrl } from './url.js';
import { RedisChanges } from './watch.js';

export { redactRedisUrl };
export { DEFAULT_COMMAND_TIMEOUT_MS } from './connection.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_REDIS_PREFIX = 'stripe-events:';

/** The connection's options (url, timeouts, onConnectionChange) are in connection.ts. */
export interface RedisBufferOptions extends BufferOptions, RedisConnectionOptions {
  /** Every key (and the change channel) starts with this, so deployments can share one Redis. */
  prefix?: string;
  /** Size of the in-memory dedup fast path. */
  recentIdsMax?: number;
}

/** How many times a state change re-reads and re-applies the rules after losing a race. */
const CHANGE_ROUNDS = 20;
/** Acked and dead events are deleted this many at a time, each batch its own short script. */
const PRUNE_BATCH = 1000;

/**
 * The scale-out store: several `serve` instances share one Redis. Every state change is one Lua
 * script (atomic, see redis/scripts.ts); dedup is `SET NX` on the event id with the 7-day window
 * as expiry, with the in-memory RecentIds LRU in front. `append` resolves once Redis answered the
 * script, i.e. once the write is in Redis's memory and handed to its AOF as configured
 * (docs/SCALING.md says what appendfsync everysec and always promise).
 *
 * While Redis is unreachable every call fails at once with StoreUnavailableError (no offline
 * queue), `health()` reports ok:false, and the client keeps reconnecting in the background; when
 * Redis is back, work resumes without a restart (redis/connection.ts).
 */
export class RedisBuffer extends CommandMethods implements EventBuffer, HasParkedStore {
  readonly kind = 'redis';
  readonly prefix: string;
  /** Tags this instance's change notifications so it does not announce its own changes twice. */
  readonly instanceId = crypto.randomUUID();
  /** The guardrails' counts (redis/ledger.ts), each check-and-count one script. */
  readonly ledger: AgentLedger;
  /** The people who sign in under their own name (redis/people.ts). */
  readonly people: PeopleStore;
  /** MCP Events webhook subscriptions (redis/subscriptions.ts). */
  readonly subscriptions: SubscriptionStore;
  /** The connection every command goes through (call(), redis/connection.ts). */
  private readonly conn: RedisConnection;
  private readonly client: Redis;
  private readonly now: () => number;
  private readonly maxPending: number;
  /** The policy when the store has none stored (DEFAULT_POLICY). */
  private readonly defaultPolicy = DEFAULT_POLICY;
  private readonly recent: RecentIds;
  private readonly feed = new ChangeFeed();
  /** This instance's changes and, while watched, other instances' (redis/watch.ts). */
  private readonly changes: RedisChanges;

  private constructor(options: RedisBufferOptions) {
    super();
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.now = options.now ?? Date.now;
    this.maxPending = options.maxPending ?? Number.POSITIVE_INFINITY;
    this.recent = new RecentIds(options.recentIdsMax);
    this.conn = new RedisConnection(options, () => this.changes.reconnect());
    this.client = this.conn.client;
    this.changes = new RedisChanges(this.client, this.key('changes'), this.instanceId, this.feed);
    for (const [name, lua] of Object.entries({
      ...SCRIPTS,
      ...LEDGER_SCRIPTS,
      ...PEOPLE_SCRIPTS,
    })) {
      this.client.defineCommand(name, { numberOfKeys: 0, lua });
    }
    this.ledger = new RedisLedger({
      run: <T>(name: LedgerScriptName, args: string[]) => this.script<T>(name, args),
      hgetall: (key) => this.call(() => this.client.hgetall(key)),
      hdel: (key, field) => this.call(() => this.client.hdel(key, field)),
      zcount: (key, min) => this.call(() => this.client.zcount(key, `(${min}`, '+inf')),
      key: (name) => this.key(name),
      now: () => this.now(),
    });
    this.people = new RedisPeople({
      run: <T>(name: PeopleScriptName, args: string[]) => this.script<T>(name, args),
      hget: (key, field) => this.call(() => this.client.hget(key, field)),
      hgetall: (key) => this.call(() => this.client.hgetall(key)),
      hlen: (key) => this.call(() => this.client.hlen(key)),
      key: (name) => this.key(name),
    });
    this.subscriptions = new RedisSubscriptions({
      client: this.client,
      call: (fn) => this.call(fn),
      key: (name) => this.key(name),
    });
  }

  /** Connects, checks the key layout version, and resolves with a ready buffer. */
  static async open(options: RedisBufferOptions): Promise<RedisBuffer> {
    const buffer = new RedisBuffer(options);
    try {
      await buffer.conn.waitReady(options.connectTimeoutMs ?? 10_000);
      const version = await buffer.script<string>('sem_schema', [String(REDIS_SCHEMA_VERSION)]);
      if (Number(version) !== REDIS_SCHEMA_VERSION) {
        throw new StoreUnavailableError(
          `the keys under ${JSON.stringify(buffer.prefix)} in Redis at ${buffer.conn.safeUrl} use layout ${version}, which this stripe-events-mcp does not know (it writes ${REDIS_SCHEMA_VERSION}); upgrade it or use another --redis-prefix`,
        );
      }
      // Flags given to this process (serve/agent) become the queue's policy for every process.
      await buffer.setPolicy({
        ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
        ...(options.retryBaseMs !== undefined ? { retryBaseMs: options.retryBaseMs } : {}),
      });
    } catch (error) {
      buffer.conn.markClosed();
      buffer.client.disconnect();
      throw error;
    }
    return buffer;
  }

  async append(event: IncomingEvent): Promise<AppendResult> {
    if (this.conn.closed) throw closedError();
    if (this.recent.has(event.id)) return { status: 'duplicate', id: event.id };
    const [outcome, changes] = await this.script<[string, string]>('sem_append', [
      Number.isFinite(this.maxPending) ? String(this.maxPending) : '-1',
      String(DEDUP_WINDOW_MS),
      event.id,
      event.type,
      String(event.created),
      event.livemode ? '1' : '0',
      event.objectId ?? '',
      event.objectId === null ? '0' : '1',
      event.payload,
    ]);
    if (outcome === 'full') throw new BufferFullError(this.maxPending);
    this.recent.remember(event.id);
    this.changes.announce(changes);
    return { status: outcome === 'queued' ? 'queued' : 'duplicate', id: event.id };
  }

  /**
   * Thin notifications parked for want of a key, in the hash `<prefix>thin:needs_key` (snapshot
   * event → the notification as JSON): whichever instance received one, any instance's backfill
   * finds it. Written like the events (the AOF settings in docs/SCALING.md apply).
   */
  parkedNotifications(): ParkedStore {
    const key = this.key('thin:needs_key');
    return {
      add: async (entry: ParkedNotification) => {
        // NX: the first record of a snapshot event stays (Stripe re-sends the notification).
        await this.call(() => this.client.hsetnx(key, entry.snapshot_event, JSON.stringify(entry)));
      },
      list: async () => {
        const all = await this.call(() => this.client.hvals(key));
        const entries: ParkedNotification[] = [];
        for (const text of all) {
          try {
            entries.push(JSON.parse(text) as ParkedNotification);
          } catch {
            // Not ours: skipped, never fatal to a backfill.
          }
        }
        return entries.sort((a, b) => a.received_at.localeCompare(b.received_at));
      },
      remove: async (snapshotEvents: readonly string[]) => {
        if (snapshotEvents.length === 0) return;
        await this.call(() => this.client.hdel(key, ...snapshotEvents));
      },
    };
  }

  /** `seq` is the counter every append INCRs: the newest seq ever used. */
  async headCursor(): Promise<string> {
    const key = this.key('seq');
    const value = await this.call(() => this.client.get(key));
    return encodeCursor(value === null ? 0 : Number(value));
  }

  async newestCreated(): Promise<number | null> {
    const key = this.key('newest_created');
    const value = await this.call(() => this.client.get(key));
    if (value !== null) return Number(value);
    // Events queued by a version that did not keep the key: found once from the events.
    let newest: number | null = null;
    let cursor: string | null = null;
    do {
      const page = await this.list({ limit: 500, cursor });
      for (const event of page.events) {
        if (newest === null || event.created > newest) newest = event.created;
      }
      cursor = page.nextCursor;
    } while (cursor);
    if (newest === null) return null;
    // Raised, not set: an append racing this scan may have set it already.
    return Number(await this.script<string>('sem_raise_newest', [String(newest)]));
  }

  /** The pre-dispatch check reads the lease only: the payload stays on the server. */
  protected override async leaseOf(id: string): Promise<Lease | null> {
    const [status, owner, expires] = await this.call(() =>
      this.client.hmget(this.key('ev:', id), 'status', 'lease_owner', 'lease_expires_at'),
    );
    if (status === null || status === undefined) return null;
    return {
      status: (isEventStatus(status) ? status : 'pending') as EventStatus,
      leaseOwner: owner ?? null,
      leaseExpiresAt: nullableNumber(expires ?? undefined),
    };
  }

  async get(id: string): Promise<StoredEvent | null> {
    const flat = await this.call(() => this.client.hgetall(this.key('ev:', id)));
    return Object.keys(flat).length === 0 ? null : toEvent(flat);
  }

  async history(id: string): Promise<HistoryEntry[]> {
    const results = await this.call(() =>
      this.client
        .multi()
        .hget(this.key('ev:', id), 'received_at')
        .lrange(this.key('h:', id), 0, -1)
        .exec(),
    );
    const [received, rows] = (results ?? []).map(([error, value]) => {
      if (error) throw storeError(error, this.conn.safeUrl);
      return value;
    }) as [string | null, string[]];
    if (received === null || received === undefined) throw new EventNotFoundError(id);
    // Like the SQLite store, "received" is not a row: the event's received_at says it.
    const entries: HistoryEntry[] = [{ at: iso(Number(received)), kind: 'received' }];
    for (const row of rows) entries.push(parseHistory(row));
    return entries;
  }

  async list(query: ListQuery): Promise<ListPage> {
    const after = decodeCursor(query.cursor);
    const statuses = query.statuses ?? EVENT_STATUSES;
    const types = [...new Set(query.types ?? [])];
    const outcomes = query.outcomes ? [...new Set(query.outcomes)] : null;
    if (outcomes && outcomes.length === 0) return { events: [], nextCursor: null };
    const [more, lastSeq, ...flats] = await this.script<[number, string, ...string[][]]>(
      'sem_list',
      [
        String(after),
        String(query.limit),
        String(statuses.length),
        ...statuses,
        String(types.length),
        ...types,
        String(outcomes?.length ?? 0),
        ...(outcomes ?? []),
      ],
    );
    return {
      events: flats.map((flat) => toEvent(pairs(flat))),
      nextCursor: more === 1 && lastSeq !== '' ? encodeCursor(Number(lastSeq)) : null,
      lastCursor: lastSeq !== '' && flats.length > 0 ? encodeCursor(Number(lastSeq)) : null,
    };
  }

  async stats(): Promise<QueueStats> {
    const out = await this.script<(number | string)[]>('sem_stats', []);
    const counts = emptyCounts();
    EVENT_STATUSES.forEach((status, i) => (counts[status] = Number(out[i])));
    const oldest = out[5];
    const pendingByType: Record<string, number> = {};
    for (let i = 6; i + 1 < out.length; i += 2) {
      const n = Number(out[i + 1]);
      if (n > 0) pendingByType[String(out[i])] = n;
    }
    return {
      counts,
      pendingByType,
      oldestPendingReceivedAt: oldest === '' || oldest === undefined ? null : Number(oldest),
    };
  }

  async claim(options: ClaimOptions): Promise<StoredEvent[]> {
    const types = [...new Set(options.types ?? [])];
    if (options.types && types.length === 0) return [];
    const [changes, ...flats] = await this.script<[string, ...string[][]]>('sem_claim', [
      String(this.defaultPolicy.maxAttempts),
      String(LEASE_EXPIRY_RETRY_MS),
      claimToken(options.owner),
      String(options.leaseMs),
      String(options.limit ?? 1),
      String(types.length),
      ...types,
    ]);
    this.changes.announce(changes);
    return flats.map((flat) => toEvent(pairs(flat)));
  }

  /**
   * Reads the event and the policy, applies the rules (transitions.ts), and writes the result with
   * `sem_change` if the event is still at the revision read; else reads again (the rules may then
   * refuse).
   */
  async apply(id: string, command: Command): Promise<StoredEvent> {
    for (let round = 0; round < CHANGE_ROUNDS; round++) {
      const results = await this.call(() =>
        this.client.multi().hgetall(this.key('ev:', id)).hgetall(this.key('policy')).exec(),
      );
      const [flat, stored] = (results ?? []).map(([error, value]) => {
        if (error) throw storeError(error, this.conn.safeUrl);
        return value;
      }) as [Record<string, string>, Record<string, string>];
      if (!flat || Object.keys(flat).length === 0) throw new EventNotFoundError(id);
      const event = toEvent(flat);
      const now = this.now();
      const t = transition(event, command, this.policyOf(stored), now);
      if (t.noop) return event;
      const updatedAt = touches(event, t.state) ? now : event.updatedAt;
      const reply = await this.script<[string, string?, string[]?]>('sem_change', [
        id,
        flat.rev ?? '0',
        JSON.stringify(stateColumns(t.state, updatedAt)),
        t.change ?? '',
        JSON.stringify(t.entries.map(entryRow).map(({ kind, data }) => [kind, data ?? ''])),
      ]);
      if (reply[0] === 'notfound') throw new EventNotFoundError(id);
      if (reply[0] === 'conflict') continue;
      this.changes.announce(reply[1] ?? '');
      return toEvent(pairs(reply[2] ?? []));
    }
    throw new StoreUnavailableError(
      `event ${id} kept changing under this instance (${CHANGE_ROUNDS} tries); try again`,
    );
  }

  async policy(): Promise<QueuePolicy> {
    return this.policyOf(await this.call(() => this.client.hgetall(this.key('policy'))));
  }

  async setPolicy(policy: Partial<QueuePolicy>): Promise<QueuePolicy> {
    const valid = policyFrom(policy);
    const fields: string[] = [];
    if (policy.maxAttempts !== undefined) fields.push('max_attempts', String(valid.maxAttempts));
    if (policy.retryBaseMs !== undefined) fields.push('retry_base_ms', String(valid.retryBaseMs));
    if (fields.length > 0) await this.call(() => this.client.hset(this.key('policy'), ...fields));
    return this.policy();
  }

  async agentPause(): Promise<AgentPause> {
    return pauseFrom(await this.call(() => this.client.get(this.key('agent_pause'))));
  }

  async setAgentPause(pause: AgentPause): Promise<void> {
    // Set, logged as a happening and announced together (one script): other instances' loops and
    // MCP sessions hear of it at once.
    await this.script<string>('sem_pause', [pauseText(pause)]);
    this.feed.emit({ kind: 'agent' });
  }

  async happenings(after: number, limit: number): Promise<Happening[]> {
    const max = Math.max(0, Math.min(limit, MAX_HAPPENINGS_READ));
    if (max === 0) return [];
    const members = await this.script<string[]>('sem_happenings', [
      String(Math.trunc(after)),
      String(max),
    ]);
    return members.map((member) => {
      const v = JSON.parse(member) as Record<string, string | number>;
      return happeningFrom({
        seq: Number(v.seq),
        kind: String(v.kind),
        at: Number(v.at),
        event_id: v.event_id ? String(v.event_id) : null,
        pause: v.pause ? String(v.pause) : null,
      });
    });
  }

  async happeningsHead(): Promise<number> {
    const key = this.key('hseq');
    const value = await this.call(() => this.client.get(key));
    return value === null ? 0 : Number(value);
  }

  private policyOf(stored: Record<string, string> | null): QueuePolicy {
    const num = (v: string | undefined) => (v === undefined ? null : Number(v));
    return policyFrom({
      maxAttempts: num(stored?.max_attempts) ?? this.defaultPolicy.maxAttempts,
      retryBaseMs: num(stored?.retry_base_ms) ?? this.defaultPolicy.retryBaseMs,
    });
  }

  async recoverExpiredLeases(): Promise<number> {
    const [n, changes] = await this.script<[number, string]>('sem_recover', [
      String(this.defaultPolicy.maxAttempts),
      String(LEASE_EXPIRY_RETRY_MS),
    ]);
    this.changes.announce(changes);
    return n;
  }

  async prune(before: number): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.script<number>('sem_prune', [
        String(Math.trunc(before)),
        String(PRUNE_BATCH),
      ]);
      total += n;
      if (n < PRUNE_BATCH) return total;
    }
  }

  async health(): Promise<BufferHealth> {
    if (this.conn.closed) return { ok: false, kind: this.kind, detail: 'closed' };
    if (!this.conn.usable()) return { ok: false, kind: this.kind, detail: this.conn.unreachable() };
    try {
      // Through call(): the same deadline as every command, so /healthz answers while Redis is
      // frozen, and a ping that times out drops the connection like any other command.
      await this.call(() => this.client.ping());
      return { ok: true, kind: this.kind };
    } catch (error) {
      return { ok: false, kind: this.kind, detail: (error as Error).message };
    }
  }

  /**
   * Reports this instance's changes as they commit and other instances' changes (published on
   * `<prefix>changes` by the same script that made them) as they arrive, with the same kinds, ids
   * and types. Pub/sub is at-most-once: after the subscriber reconnects, one `external` change
   * says that something may have been missed, so watchers re-read what they show.
   */
  watch(listener: ChangeListener): () => void {
    if (!this.changes.started && !this.conn.closed) this.changes.start();
    return this.feed.add(listener, () => this.changes.stop());
  }

  async close(): Promise<void> {
    if (this.conn.closed) return;
    this.conn.markClosed();
    this.changes.stop();
    await this.conn.quit();
  }

  private script<T>(
    name: ScriptName | LedgerScriptName | PeopleScriptName,
    args: string[],
  ): Promise<T> {
    const command = (this.client as unknown as Record<string, (...a: string[]) => Promise<T>>)[
      name
    ]!;
    return this.call(() =>
      command.call(this.client, this.prefix, String(this.now()), this.instanceId, ...args),
    );
  }

  /** Every command goes through the connection's call() (its deadline, its fail-fast). */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    return this.conn.call(fn);
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join('');
  }
}

/** Opens the Redis store (connects first; rejects with StoreUnavailableError if it cannot). */
export function openRedisBuffer(options: RedisBufferOptions): Promise<RedisBuffer> {
  return RedisBuffer.open(options);
}

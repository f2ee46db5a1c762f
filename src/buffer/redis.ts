import crypto from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import {
  AppError,
  BufferFullError,
  EventNotFoundError,
  InvalidTransitionError,
  StoreUnavailableError,
} from '../errors.js';
import {
  DEDUP_WINDOW_MS,
  DEFAULT_MAX_ATTEMPTS,
  EVENT_STATUSES,
  emptyCounts,
  NOT_PAUSED,
  type AgentPause,
  isEventStatus,
  type AppendResult,
  type BufferChange,
  type BufferHealth,
  type BufferOptions,
  type ChangeListener,
  type ClaimOptions,
  type EventBuffer,
  type EventStatus,
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
import type { HasParkedStore, ParkedNotification, ParkedStore } from './parked.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { RecentIds } from './recent-ids.js';
import { REDIS_SCHEMA_VERSION, SCRIPTS, type ScriptName } from './redis-scripts.js';
import { LEDGER_SCRIPTS, RedisLedger, type LedgerScriptName } from './redis-ledger.js';
import type { AgentLedger } from './ledger.js';
import { parseRedisTarget, redactRedisUrl } from './redis-url.js';
import {
  DEFAULT_POLICY,
  LEASE_EXPIRY_RETRY_MS,
  touches,
  transition,
  type Command,
  type Lease,
  type QueuePolicy,
} from './transitions.js';
import {
  claimToken,
  CommandMethods,
  entryRow,
  pauseFrom,
  policyFrom,
  stateColumns,
} from './commands.js';

export { redactRedisUrl };

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_REDIS_PREFIX = 'stripe-events:';

export interface RedisBufferOptions extends BufferOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. */
  url: string;
  /** Every key (and the change channel) starts with this, so deployments can share one Redis. */
  prefix?: string;
  /** Size of the in-memory dedup fast path. */
  recentIdsMax?: number;
  /** A command without an answer after this long fails (StoreUnavailableError). Default 5 s. */
  commandTimeoutMs?: number;
  /** How long opening waits for a first connection before giving up. Default 10 s. */
  connectTimeoutMs?: number;
  /** Told when the connection to Redis is lost and when it is back (for logs). */
  onConnectionChange?: (state: 'lost' | 'restored', detail: string) => void;
}

/** How many times a state change re-reads and re-applies the rules after losing a race. */
const CHANGE_ROUNDS = 20;
/** What every command gets unless the options say otherwise (README, docs/SCALING.md). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
/** Acked and dead events are deleted this many at a time, each batch its own short script. */
const PRUNE_BATCH = 1000;
/** Between reconnection attempts: quick at first, then once a second, forever. */
const retryStrategy = (attempt: number): number => Math.min(attempt * 100, 1000);

/**
 * The scale-out store: several `serve` instances share one Redis. Every state change is one Lua
 * script (atomic, see redis-scripts.ts); dedup is `SET NX` on the event id with the 7-day window
 * as expiry, with the in-memory RecentIds LRU in front. `append` resolves once Redis answered the
 * script, i.e. once the write is in Redis's memory and handed to its AOF as configured
 * (docs/SCALING.md says what appendfsync everysec and always promise).
 *
 * While Redis is unreachable every call fails at once with StoreUnavailableError (no offline
 * queue), `health()` reports ok:false, and the client keeps reconnecting in the background; when
 * Redis is back, work resumes without a restart.
 */
export class RedisBuffer extends CommandMethods implements EventBuffer, HasParkedStore {
  readonly kind = 'redis';
  readonly prefix: string;
  /** Tags this instance's change notifications so it does not announce its own changes twice. */
  readonly instanceId = crypto.randomUUID();
  /** The guardrails' counts (redis-ledger.ts), each check-and-count one script. */
  readonly ledger: AgentLedger;
  private readonly client: Redis;
  private readonly safeUrl: string;
  private readonly options: RedisBufferOptions;
  private readonly now: () => number;
  private readonly maxPending: number;
  /** The policy when the store has none stored (DEFAULT_POLICY). */
  private readonly defaultPolicy = DEFAULT_POLICY;
  private readonly recent: RecentIds;
  private readonly feed = new ChangeFeed();
  private subscriber: Redis | undefined;
  private closed = false;
  private lastError: string | undefined;
  private connected = false;
  private readonly commandTimeoutMs: number;
  /** Counts connections that became ready: a timeout only drops the connection it happened on. */
  private generation = 0;
  /** Why we dropped the connection ourselves, for the "lost" log line. */
  private dropReason: string | undefined;

  private constructor(options: RedisBufferOptions) {
    super();
    this.options = options;
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.safeUrl = redactRedisUrl(options.url);
    this.now = options.now ?? Date.now;
    this.maxPending = options.maxPending ?? Number.POSITIVE_INFINITY;
    this.recent = new RecentIds(options.recentIdsMax);
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const target = parseRedisTarget(options.url);
    if (!target) throw new StoreUnavailableError(`REDIS_URL ${this.safeUrl} is not a Redis URL`);
    this.client =
      target.kind === 'url'
        ? new Redis(target.url, this.clientOptions())
        : new Redis({
            ...this.clientOptions(),
            sentinels: target.sentinels,
            name: target.name,
            username: target.username,
            password: target.password,
            db: target.db,
            // Moves to the new primary when a Sentinel announces +switch-master, not only when
            // the old one drops the connection (it may accept writes for seconds after).
            failoverDetector: true,
          });
    for (const [name, lua] of Object.entries({ ...SCRIPTS, ...LEDGER_SCRIPTS })) {
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
    this.client.on('error', (error: Error) => {
      this.lastError = error.message;
    });
    this.client.on('ready', () => {
      if (!this.connected && this.lastError !== undefined) {
        options.onConnectionChange?.('restored', `reconnected to Redis at ${this.safeUrl}`);
      }
      this.connected = true;
      this.generation += 1;
      this.lastError = undefined;
      this.dropReason = undefined;
    });
    this.client.on('close', () => {
      if (this.connected && !this.closed) {
        this.lastError ??= 'connection closed';
        options.onConnectionChange?.(
          'lost',
          this.dropReason
            ? `Redis at ${this.safeUrl} ${this.dropReason}: dropped the connection; reconnecting`
            : `lost the connection to Redis at ${this.safeUrl}; reconnecting`,
        );
      }
      this.connected = false;
    });
  }

  /** Connects, checks the key layout version, and resolves with a ready buffer. */
  static async open(options: RedisBufferOptions): Promise<RedisBuffer> {
    const buffer = new RedisBuffer(options);
    try {
      await buffer.waitReady(options.connectTimeoutMs ?? 10_000);
      const version = await buffer.script<string>('sem_schema', [String(REDIS_SCHEMA_VERSION)]);
      if (Number(version) !== REDIS_SCHEMA_VERSION) {
        throw new StoreUnavailableError(
          `the keys under ${JSON.stringify(buffer.prefix)} in Redis at ${buffer.safeUrl} use layout ${version}, which this stripe-events-mcp does not know (it writes ${REDIS_SCHEMA_VERSION}); upgrade it or use another --redis-prefix`,
        );
      }
      // Flags given to this process (serve/agent) become the queue's policy for every process.
      await buffer.setPolicy({
        ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
        ...(options.retryBaseMs !== undefined ? { retryBaseMs: options.retryBaseMs } : {}),
      });
    } catch (error) {
      buffer.closed = true;
      buffer.client.disconnect();
      throw error;
    }
    return buffer;
  }

  private clientOptions(): RedisOptions {
    return {
      // Fail fast instead of queueing while disconnected: the webhook answers 503 + Retry-After
      // and Stripe delivers again later. Commands in flight when the connection drops fail too.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // ioredis starts this clock only when a command is written, and auto-pipelining writes a
      // batch only after the previous batch answered: call() keeps its own deadline from the
      // moment it is called. This one still ends commands ioredis wrote and Redis never answered.
      commandTimeout: this.commandTimeoutMs,
      connectTimeout: 2_000,
      // TCP keepalive probes after 30 s idle (ioredis's default leaves the OS's two hours): the
      // watch connection only listens, so a peer or NAT that dropped it silently would otherwise
      // go unnoticed, and no change announced, for hours. The subscriber inherits this.
      keepAlive: 30_000,
      retryStrategy,
      // After a failover a client may still talk to the demoted primary: reconnect.
      reconnectOnError: (error) => error.message.startsWith('READONLY'),
      // Concurrent webhook deliveries share one write to the socket.
      enableAutoPipelining: true,
      connectionName: 'stripe-events-mcp',
    };
  }

  private waitReady(timeoutMs: number): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new StoreUnavailableError(
            `cannot reach Redis at ${this.safeUrl} (${this.lastError ?? 'no answer'}) within ${timeoutMs / 1000} s. Fix: start Redis or set REDIS_URL to where it runs.`,
          ),
        );
      }, timeoutMs);
      const onReady = () => {
        cleanup();
        resolve();
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
      };
      this.client.on('ready', onReady);
    });
  }

  async append(event: IncomingEvent): Promise<AppendResult> {
    if (this.closed) throw closedError();
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
    this.announce(changes);
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
      if (error) throw storeError(error, this.safeUrl);
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
    const [more, lastSeq, ...flats] = await this.script<[number, string, ...string[][]]>(
      'sem_list',
      [
        String(after),
        String(query.limit),
        String(statuses.length),
        ...statuses,
        String(types.length),
        ...types,
      ],
    );
    return {
      events: flats.map((flat) => toEvent(pairs(flat))),
      nextCursor: more === 1 && lastSeq !== '' ? encodeCursor(Number(lastSeq)) : null,
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
    this.announce(changes);
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
        if (error) throw storeError(error, this.safeUrl);
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
      this.announce(reply[1] ?? '');
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
    const text = JSON.stringify(pause.paused ? pause : NOT_PAUSED);
    const message = JSON.stringify({ from: this.instanceId, changes: [{ kind: 'agent' }] });
    // Set and announced together: other instances' loops and MCP sessions hear of it at once.
    await this.call(() =>
      this.client
        .multi()
        .set(this.key('agent_pause'), text)
        .publish(this.key('changes'), message)
        .exec(),
    );
    this.feed.emit({ kind: 'agent' });
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
    this.announce(changes);
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
    if (this.closed) return { ok: false, kind: this.kind, detail: 'closed' };
    if (!this.usable()) return { ok: false, kind: this.kind, detail: this.unreachable() };
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
    if (!this.subscriber && !this.closed) this.startSubscriber();
    return this.feed.add(listener, () => this.stopSubscriber());
  }

  private startSubscriber(): void {
    // Its own connection (a subscribed connection can do nothing else), and an offline queue so
    // the SUBSCRIBE waits for the connection; ioredis subscribes again after each reconnect.
    const subscriber = this.client.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      enableAutoPipelining: false,
      connectionName: 'stripe-events-mcp:watch',
    });
    this.subscriber = subscriber;
    let readyBefore = false;
    subscriber.on('error', () => {
      // Reconnection is automatic; health() reports the main connection.
    });
    subscriber.on('ready', () => {
      if (readyBefore && this.subscriber === subscriber) this.feed.emit({ kind: 'external' });
      readyBefore = true;
    });
    subscriber.on('message', (_channel: string, message: string) => this.onMessage(message));
    subscriber.subscribe(this.key('changes')).catch(() => {
      // Retried by autoResubscribe on the next connection.
    });
  }

  private stopSubscriber(): void {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    subscriber?.disconnect();
  }

  private onMessage(message: string): void {
    let parsed: { from?: unknown; changes?: unknown };
    try {
      parsed = JSON.parse(message) as { from?: unknown; changes?: unknown };
    } catch {
      return;
    }
    // Our own changes were announced when they committed.
    if (parsed.from === this.instanceId || !Array.isArray(parsed.changes)) return;
    for (const change of parsed.changes as BufferChange[]) this.feed.emit(toChange(change));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopSubscriber();
    if (this.client.status === 'ready') {
      // QUIT goes after every command already sent, so their answers still arrive.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.client.quit().catch(() => undefined),
        new Promise((resolve) => (timer = setTimeout(resolve, 5_000))),
      ]);
      clearTimeout(timer);
    }
    this.client.disconnect();
  }

  /** Emits this instance's own committed changes (the message the script also published). */
  private announce(message: string): void {
    if (message === '' || this.feed.size === 0) return;
    try {
      const parsed = JSON.parse(message) as { changes: BufferChange[] };
      for (const change of parsed.changes) this.feed.emit(toChange(change));
    } catch {
      // Never: the script encoded it.
    }
  }

  private script<T>(name: ScriptName | LedgerScriptName, args: string[]): Promise<T> {
    const command = (this.client as unknown as Record<string, (...a: string[]) => Promise<T>>)[
      name
    ]!;
    return this.call(() =>
      command.call(this.client, this.prefix, String(this.now()), this.instanceId, ...args),
    );
  }

  /**
   * Every command goes through here: it fails at once while the connection is not ready, and
   * within commandTimeoutMs of being called otherwise, whatever ioredis does with it (a command
   * queued behind an unanswered auto-pipelined batch would otherwise wait for that batch's
   * timeout before its own clock starts: 10 s instead of 5). A timeout means this connection is
   * presumed dead (a frozen or partitioned Redis keeps the TCP connection open): it is dropped,
   * so the commands stuck on it fail, and the calls that follow fail at once until a new
   * connection is ready, instead of each waiting out its own timeout.
   */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw closedError();
    if (!this.usable()) throw new StoreUnavailableError(this.unreachable());
    const generation = this.generation;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CommandTimeout()), this.commandTimeoutMs);
    });
    try {
      return await Promise.race([fn(), deadline]);
    } catch (error) {
      if (error instanceof CommandTimeout || isIoredisTimeout(error)) {
        const why = `did not answer within ${this.commandTimeoutMs / 1000} s`;
        this.dropConnection(generation, why);
        throw new StoreUnavailableError(`Redis at ${this.safeUrl} ${why}; reconnecting`, {
          cause: error,
        });
      }
      throw storeError(error, this.safeUrl);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ready, and not being dropped after a timeout (its socket may take a moment to close). */
  private usable(): boolean {
    return this.client.status === 'ready' && this.dropReason === undefined;
  }

  /** Drops the connection a timed-out command was sent on (once), so ioredis reconnects. */
  private dropConnection(generation: number, why: string): void {
    if (this.closed || generation !== this.generation || this.client.status !== 'ready') return;
    if (this.dropReason !== undefined) return;
    this.dropReason = why;
    this.lastError = `no answer within ${this.commandTimeoutMs / 1000} s`;
    // disconnect(true) ends the socket (destroyed after disconnectTimeout when the other side
    // never answers the FIN); from then on the stream is not writable and calls fail at once.
    this.client.disconnect(true);
    // The change subscription rode the same Redis: start it over too. Once it is back, its
    // reconnection tells watchers that changes may have been missed (an `external` change).
    this.subscriber?.disconnect(true);
  }

  private unreachable(): string {
    const why = this.lastError ?? this.client.status;
    return `Redis at ${this.safeUrl} is unreachable (${why}); reconnecting`;
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join('');
  }
}

/** Opens the Redis store (connects first; rejects with StoreUnavailableError if it cannot). */
export function openRedisBuffer(options: RedisBufferOptions): Promise<RedisBuffer> {
  return RedisBuffer.open(options);
}

function toChange(change: BufferChange): BufferChange {
  const out: BufferChange = { kind: change.kind };
  if (typeof change.id === 'string') out.id = change.id;
  if (typeof change.type === 'string') out.type = change.type;
  return out;
}

function pairs(flat: readonly string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!;
  return record;
}

function nullableNumber(value: string | undefined): number | null {
  return value === undefined ? null : Number(value);
}

function toEvent(h: Record<string, string>): StoredEvent {
  const status = h.status ?? '';
  return {
    id: h.id ?? '',
    type: h.type ?? '',
    created: Number(h.created),
    livemode: h.livemode === '1',
    objectId: h.object_id ?? null,
    payload: h.payload ?? '',
    status: (isEventStatus(status) ? status : 'pending') as EventStatus,
    attempts: Number(h.attempts ?? 0),
    receivedAt: Number(h.received_at),
    updatedAt: Number(h.updated_at),
    retryAt: nullableNumber(h.retry_at),
    leaseOwner: h.lease_owner ?? null,
    leaseExpiresAt: nullableNumber(h.lease_expires_at),
    lastError: h.last_error ?? null,
  };
}

/** "<at>\t<kind>\t<JSON of the other fields>" → the entry, like the SQLite store builds it. */
function parseHistory(row: string): HistoryEntry {
  const first = row.indexOf('\t');
  const second = row.indexOf('\t', first + 1);
  const at = Number(row.slice(0, first));
  const kind = row.slice(first + 1, second) as HistoryEntry['kind'];
  const json = row.slice(second + 1);
  const data = json ? (JSON.parse(json) as Partial<HistoryEntry>) : {};
  return { ...data, at: iso(at), kind };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** call()'s own deadline passed. */
class CommandTimeout extends Error {
  constructor() {
    super('Command timed out');
  }
}

/** ioredis's commandTimeout rejected the command (its message, the only mark it has). */
function isIoredisTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}

function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('the event store is closed');
}

function storeError(error: unknown, safeUrl: string): AppError {
  if (error instanceof AppError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new StoreUnavailableError(`Redis at ${safeUrl} failed: ${detail}`, { cause: error });
}

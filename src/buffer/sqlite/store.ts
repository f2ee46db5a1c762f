import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  AppError,
  BufferFullError,
  EventNotFoundError,
  StoreUnavailableError,
} from '../../errors.js';
import {
  emptyCounts,
  type AgentPause,
  isEventStatus,
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
} from '../buffer.js';
import { ChangeFeed } from '../changes.js';
import { happeningOf, isPauseHappening, pauseText, type Happening } from '../happenings.js';
import { SqliteHappenings } from './happenings.js';
import { claimToken, CommandMethods, entryRow, stateColumns } from '../commands.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { RecentIds } from '../recent-ids.js';
import { oldestDayKept, type AgentLedger } from '../ledger.js';
import type { PeopleStore } from '../people.js';
import {
  claimed,
  expired,
  touches,
  transition,
  type Command,
  type QueuePolicy,
  type Lease,
  type Transition,
} from '../transitions.js';
import { ExternalCommits } from './feed.js';
import { SqliteLedger } from './ledger.js';
import { SqlitePeople } from './people.js';
import { SqliteSubscriptions } from './subscriptions.js';
import type { SubscriptionStore } from '../subscriptions.js';
import {
  toEvent,
  toHistory,
  toLease,
  type EventRow,
  type HistoryRow,
  type LeaseRow,
} from './rows.js';
import { migrate } from './schema.js';
import { SeqReads } from './seqs.js';
import { SqliteSettings } from './settings.js';
import { SqliteWriter } from './writer.js';

/**
 * How appends are committed, on the writer thread (see sqlite/writer.ts), `synchronous=FULL`:
 * `group` batches the appends that arrive while one commit runs into the next transaction (one
 * fsync for many events); `each` commits every append on its own. Both fsync before resolving.
 */
export type CommitMode = 'group' | 'each';
export const COMMIT_MODES: readonly CommitMode[] = ['group', 'each'];

export interface SqliteBufferOptions extends BufferOptions {
  /** The database file; its directory must exist. */
  file: string;
  commitMode?: CommitMode;
  /** Size of the in-memory dedup fast path. */
  recentIdsMax?: number;
  readonly?: boolean;
}

export const DATABASE_FILE = 'events.db';

/** How many times a state change re-reads and re-applies the rules after losing a race. */
const CHANGE_ROUNDS = 20;

/** The embedded, durable default: one SQLite file in WAL mode with `synchronous=FULL`. */
export class SqliteBuffer extends CommandMethods implements EventBuffer {
  readonly kind = 'sqlite';
  /** The guardrails' counts (sqlite/ledger.ts), written on the writer thread. */
  readonly ledger: AgentLedger;
  /** The people who sign in under their own name (sqlite/people.ts), on the main connection. */
  readonly people: PeopleStore;
  /** MCP Events webhook subscriptions (sqlite/subscriptions.ts). */
  readonly subscriptions: SubscriptionStore;
  readonly file: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly maxPending: number;
  private readonly commitMode: CommitMode;
  /** Seqs this process is claiming right now: its other claims skip them (no herd on one row). */
  private readonly claiming = new Set<number>();
  /** The policy, the agent pause and the newest `created`, shared by every process. */
  private readonly settings: SqliteSettings;
  private readonly recent: RecentIds;
  private writerThread: SqliteWriter | undefined;
  private closed = false;
  private readonly feed = new ChangeFeed();
  /** Other processes' commits, polled while the store is watched. */
  private readonly external: ExternalCommits;
  private readonly stmt;
  /** The due events a claim picks and the rows of list pages, in arrival order. */
  private readonly seqs: SeqReads;
  /** The happenings log (sqlite/happenings.ts). */
  private readonly happeningsLog: SqliteHappenings;

  constructor(options: SqliteBufferOptions) {
    super();
    this.file = options.file;
    this.now = options.now ?? Date.now;
    this.maxPending = options.maxPending ?? Number.POSITIVE_INFINITY;
    this.commitMode = options.commitMode ?? 'group';
    this.recent = new RecentIds(options.recentIdsMax);
    try {
      // Payloads hold customers' names, emails and messages: a new store is created readable by
      // this user only (SQLite gives its -wal and -shm files the same mode).
      if (!options.readonly && !fs.existsSync(options.file)) {
        fs.closeSync(fs.openSync(options.file, 'a', 0o600));
      }
      this.db = new Database(options.file, {
        readonly: options.readonly ?? false,
        fileMustExist: options.readonly ?? false,
      });
      this.db.pragma('busy_timeout = 5000');
      this.settings = new SqliteSettings(this.db);
      if (!options.readonly) {
        this.db.pragma('journal_mode = WAL');
        // FULL: a commit is on disk (fsync of the WAL) before append resolves and the 200 goes out.
        this.db.pragma('synchronous = FULL');
        migrate(this.db, options.file);
        this.settings.writePolicy({
          maxAttempts: options.maxAttempts,
          retryBaseMs: options.retryBaseMs,
        });
      }
    } catch (error) {
      throw asStoreError(error, `cannot open the event store at ${options.file}`);
    }
    const db = this.db;
    this.ledger = new SqliteLedger(db, () => this.writer(), this.now, oldestDayKept);
    this.people = new SqlitePeople(db, (fn) => this.run(fn));
    this.subscriptions = new SqliteSubscriptions(db, this.now);
    this.stmt = {
      get: db.prepare('SELECT * FROM events WHERE id = ?'),
      lease: db.prepare('SELECT status, lease_owner, lease_expires_at FROM events WHERE id = ?'),
      counts: db.prepare('SELECT status, type, n FROM counts WHERE n > 0'),
      oldestPending: db
        .prepare("SELECT received_at FROM events WHERE status = 'pending' ORDER BY seq LIMIT 1")
        .pluck(),
      history: db.prepare('SELECT at, kind, data FROM history WHERE event_id = ? ORDER BY n'),
      expired: db.prepare(
        "SELECT * FROM events WHERE status = 'claimed' AND lease_expires_at <= ?",
      ),
      pruneEvents: db.prepare(
        `DELETE FROM events WHERE seq IN (SELECT seq FROM events
           WHERE status IN ('acked', 'dead') AND updated_at < ? LIMIT 1000) RETURNING id`,
      ),
      pruneHistory: db.prepare('DELETE FROM history WHERE event_id = ?'),
    };
    this.seqs = new SeqReads(db, this.claiming);
    this.happeningsLog = new SqliteHappenings(db);
    this.external = new ExternalCommits(
      db,
      () => this.closed,
      () => this.feed.emit({ kind: 'external' }),
    );
  }

  append(event: IncomingEvent): Promise<AppendResult> {
    if (this.closed) return Promise.reject(closedError());
    if (this.recent.has(event.id)) return Promise.resolve({ status: 'duplicate', id: event.id });
    return this.writer()
      .append(event, this.now())
      .then(
        (outcome) => {
          if (outcome === 'full') throw new BufferFullError(this.maxPending);
          this.recent.remember(event.id);
          if (outcome === 'queued')
            this.feed.emit({ kind: 'queued', id: event.id, type: event.type });
          return { status: outcome, id: event.id };
        },
        (error: unknown) => {
          throw asStoreError(error, 'could not commit the event to the store');
        },
      );
  }

  /** Started on the first append: the CLI's read-mostly commands never pay for a thread. */
  private writer(): SqliteWriter {
    this.writerThread ??= new SqliteWriter({
      file: this.file,
      maxPending: this.maxPending,
      batch: this.commitMode === 'group',
      onCommit: () => this.external.absorbWriterCommit(),
    });
    return this.writerThread;
  }

  async newestCreated(): Promise<number | null> {
    return this.run(() => this.settings.newestCreated()) ?? null;
  }

  /** AUTOINCREMENT keeps the highest seq ever used in sqlite_sequence, even after a prune. */
  async headCursor(): Promise<string> {
    const seq = this.run(
      () =>
        this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck().get() as
          number | undefined,
    );
    return encodeCursor(seq ?? 0);
  }

  /** The pre-dispatch check reads the lease only: the row's payload is not needed. */
  protected override async leaseOf(id: string): Promise<Lease | null> {
    const row = this.run(() => this.stmt.lease.get(id)) as LeaseRow | undefined;
    return row ? toLease(row) : null;
  }

  async get(id: string): Promise<StoredEvent | null> {
    const row = this.run(() => this.stmt.get.get(id) as EventRow | undefined);
    return row ? toEvent(row) : null;
  }

  async history(id: string): Promise<HistoryEntry[]> {
    const event = await this.get(id);
    if (!event) throw new EventNotFoundError(id);
    const rows = this.run(() => this.stmt.history.all(id) as HistoryRow[]);
    return toHistory(event.receivedAt, rows);
  }

  async list(query: ListQuery): Promise<ListPage> {
    const after = decodeCursor(query.cursor);
    const statuses = query.statuses?.length ? [...new Set(query.statuses)] : null;
    const types = query.types?.length ? [...new Set(query.types)] : null;
    const outcomes = query.outcomes ? [...new Set(query.outcomes)] : null;
    if (outcomes && outcomes.length === 0) return { events: [], nextCursor: null };
    const n = query.limit + 1;
    const rows = this.run(() => this.seqs.page(statuses, types, after, n, outcomes));
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page.at(-1);
    return {
      events: page.map(toEvent),
      nextCursor: more && last ? encodeCursor(last.seq) : null,
      lastCursor: last ? encodeCursor(last.seq) : null,
    };
  }

  async stats(): Promise<QueueStats> {
    return this.run(() => {
      const counts = emptyCounts();
      const pendingByType: Record<string, number> = {};
      for (const r of this.stmt.counts.all() as { status: string; type: string; n: number }[]) {
        if (!isEventStatus(r.status)) continue;
        counts[r.status] += r.n;
        if (r.status === 'pending') pendingByType[r.type] = r.n;
      }
      const oldest = (this.stmt.oldestPending.get() as number | undefined) ?? null;
      return { counts, pendingByType, oldestPendingReceivedAt: oldest };
    });
  }

  /**
   * Picks due events on this thread (oldest first, skipping those this process is claiming
   * already) and applies the claim rule to each; the writer thread commits the claims together
   * with whatever else it is writing, each only if its row did not change meanwhile. A row another
   * process changed first is skipped, and another round looks further.
   */
  async claim(options: ClaimOptions): Promise<StoredEvent[]> {
    await this.recoverExpiredLeases();
    const limit = options.limit ?? 1;
    const types = options.types ? [...new Set(options.types)] : null;
    if (types && types.length === 0) return [];
    const token = claimToken(options.owner);
    const out: StoredEvent[] = [];
    for (let round = 0; round < CHANGE_ROUNDS && out.length < limit; round++) {
      const now = this.now();
      const want = limit - out.length;
      const picked = this.run(() => this.seqs.pickDue(types, now, want));
      if (picked.length === 0) break;
      for (const row of picked) this.claiming.add(row.seq);
      let conflicts = 0;
      try {
        const results = await Promise.all(
          picked.map((row) =>
            this.write(row, claimed(toEvent(row), token, options.leaseMs, now), now, false),
          ),
        );
        for (const result of results) {
          if (result) out.push(result);
          else conflicts += 1;
        }
      } finally {
        for (const row of picked) this.claiming.delete(row.seq);
      }
      if (conflicts === 0) break;
    }
    return out;
  }

  /**
   * One command to one event: read the row, apply the rules, and have the writer commit the
   * result if the row is still as read; else read again and re-apply (the rules may now refuse).
   */
  async apply(id: string, command: Command): Promise<StoredEvent> {
    for (let round = 0; round < CHANGE_ROUNDS; round++) {
      const row = this.run(() => this.stmt.get.get(id) as EventRow | undefined);
      if (!row) throw new EventNotFoundError(id);
      const now = this.now();
      const event = toEvent(row);
      const t = transition(event, command, this.readPolicy(), now);
      if (t.noop) return event;
      const written = await this.write(row, t, now, command.op !== 'renew');
      if (written) return written;
    }
    throw new StoreUnavailableError(
      `event ${id} kept changing under this process (${CHANGE_ROUNDS} tries); try again`,
    );
  }

  /** Expired leases back to pending (or dead), each by the expiry rule. */
  async recoverExpiredLeases(): Promise<number> {
    const now = this.now();
    const rows = this.run(() => this.stmt.expired.all(now) as EventRow[]);
    if (rows.length === 0) return 0;
    const policy = this.readPolicy();
    const results = await Promise.all(
      rows.map((row) => {
        const t = expired(toEvent(row), policy, now);
        return t ? this.write(row, t, now) : Promise.resolve(null);
      }),
    );
    return results.filter(Boolean).length;
  }

  async policy(): Promise<QueuePolicy> {
    return this.readPolicy();
  }

  async agentPause(): Promise<AgentPause> {
    return this.run(() => this.settings.agentPause());
  }

  async setAgentPause(pause: AgentPause): Promise<void> {
    // The pause and its happening (happenings.ts) in one transaction.
    this.tx(() => {
      const previous = pauseText(this.settings.agentPause());
      const text = this.settings.setAgentPause(pause);
      if (isPauseHappening(previous, text)) this.happeningsLog.insertPause(this.now(), text);
    });
    this.feed.emit({ kind: 'agent' });
  }

  async happenings(after: number, limit: number): Promise<Happening[]> {
    return this.run(() => this.happeningsLog.after(after, limit));
  }

  async happeningsHead(): Promise<number> {
    return this.run(() => this.happeningsLog.head());
  }

  async setPolicy(policy: Partial<QueuePolicy>): Promise<QueuePolicy> {
    this.run(() => this.settings.writePolicy(policy));
    return this.readPolicy();
  }

  private readPolicy(): QueuePolicy {
    return this.run(() => this.settings.policy());
  }

  /**
   * Has the writer commit `t` if the row is still at the revision read; the committed event, or
   * null when another change got there first.
   */
  private async write(
    row: EventRow,
    t: Transition,
    now: number,
    durable = true,
  ): Promise<StoredEvent | null> {
    if (this.closed) throw closedError();
    const before = toEvent(row);
    const updatedAt = touches(before, t.state) ? now : before.updatedAt;
    let outcome;
    try {
      outcome = await this.writer().change({
        id: row.id,
        rev: row.rev,
        ...stateColumns(t.state, updatedAt),
        durable,
        history: t.entries.map((entry) => ({ at: now, ...entryRow(entry) })),
        happening: happeningOf(t.change) ?? undefined,
      });
    } catch (error) {
      throw asStoreError(error, 'could not commit the change to the store');
    }
    if (outcome === 'missing') throw new EventNotFoundError(row.id);
    if (outcome === 'conflict') return null;
    if (t.change) this.feed.emit({ kind: t.change, id: row.id, type: row.type });
    return { ...before, ...t.state, updatedAt };
  }

  async prune(before: number): Promise<number> {
    let total = 0;
    // Small batches: each is its own short transaction, so ingest never waits behind a prune.
    for (;;) {
      const n = this.tx(() => {
        const ids = this.stmt.pruneEvents.all(before) as { id: string }[];
        for (const { id } of ids) this.stmt.pruneHistory.run(id);
        return ids.length;
      });
      total += n;
      if (n < 1000) {
        // Happenings go with the events: older than the same bound.
        this.tx(() => this.happeningsLog.prune(before));
        return total;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async health(): Promise<BufferHealth> {
    if (this.closed) return { ok: false, kind: this.kind, detail: 'closed' };
    try {
      this.db.prepare('SELECT 1').get();
      return { ok: true, kind: this.kind };
    } catch (error) {
      return { ok: false, kind: this.kind, detail: (error as Error).message };
    }
  }

  watch(listener: ChangeListener): () => void {
    // Other processes' commits too (sqlite/feed.ts): polled while anyone watches.
    if (!this.closed) this.external.start();
    return this.feed.add(listener, () => this.external.stop());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.external.stop();
    this.closed = true;
    // Whatever the writer was sent is committed before it stops, not dropped.
    await this.writerThread?.close();
    this.db.close();
  }

  /** Runs `fn` in an IMMEDIATE transaction (the write lock up front: no upgrade deadlocks). */
  private tx<T>(fn: () => T): T {
    return this.run(() => this.db.transaction(fn).immediate());
  }

  private run<T>(fn: () => T): T {
    if (this.closed) throw closedError();
    try {
      return fn();
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw asStoreError(error, 'the event store failed');
    }
  }
}

/** Opens (creating if needed) the store in `dataDir`. */
export function openSqliteBuffer(
  dataDir: string,
  options: Omit<SqliteBufferOptions, 'file'> = {},
): SqliteBuffer {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return new SqliteBuffer({ ...options, file: path.join(dataDir, DATABASE_FILE) });
}

function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('the event store is closed');
}

function asStoreError(error: unknown, message: string): AppError {
  if (error instanceof AppError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new StoreUnavailableError(`${message}: ${detail}`, { cause: error });
}

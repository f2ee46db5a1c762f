import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AppError, BufferFullError, EventNotFoundError, StoreUnavailableError } from '../errors.js';
import {
  DEFAULT_MAX_ATTEMPTS,
  EVENT_STATUSES,
  emptyCounts,
  NOT_PAUSED,
  type AgentPause,
  isEventStatus,
  type AppendResult,
  type BufferChange,
  type BufferHealth,
  type ChangeListener,
  type BufferOptions,
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
import { ChangeFeed } from './changes.js';
import {
  claimToken,
  CommandMethods,
  entryRow,
  pauseFrom,
  policyFrom,
  stateColumns,
} from './commands.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { RecentIds } from './recent-ids.js';
import { SqliteWriter } from './sqlite-writer.js';
import { LEDGER_SCHEMA, SqliteLedger } from './sqlite-ledger.js';
import { oldestDayKept, type AgentLedger } from './ledger.js';
import {
  claimed,
  expired,
  touches,
  transition,
  type Command,
  type QueuePolicy,
  type Lease,
  type Transition,
} from './transitions.js';

/**
 * How appends are committed, on the writer thread (see sqlite-writer.ts), `synchronous=FULL`:
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

const SCHEMA_VERSION = 6;

/** How often a watched store checks for other processes' commits (SQLite's data_version). */
const EXTERNAL_POLL_MS = 100;

// Counts live in their own table, kept by triggers, so `stats()` and the pending limit stay O(1)
// with a million stored events and stay right when another process (the CLI) changes a row.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  created INTEGER NOT NULL,
  livemode INTEGER NOT NULL,
  object_id TEXT,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  received_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  retry_at INTEGER,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  last_error TEXT,
  rev INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_status_seq ON events(status, seq);
CREATE INDEX IF NOT EXISTS events_status_type_seq ON events(status, type, seq);
CREATE TABLE IF NOT EXISTS history (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  data TEXT
);
CREATE INDEX IF NOT EXISTS history_event ON history(event_id, n);
CREATE TABLE IF NOT EXISTS counts (
  status TEXT NOT NULL,
  type TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (status, type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS events_count_insert AFTER INSERT ON events BEGIN
  INSERT INTO counts(status, type, n) VALUES (NEW.status, NEW.type, 1)
    ON CONFLICT(status, type) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS events_count_delete AFTER DELETE ON events BEGIN
  UPDATE counts SET n = n - 1 WHERE status = OLD.status AND type = OLD.type;
END;
CREATE TRIGGER IF NOT EXISTS events_count_update AFTER UPDATE OF status ON events
  WHEN OLD.status <> NEW.status BEGIN
  UPDATE counts SET n = n - 1 WHERE status = OLD.status AND type = OLD.type;
  INSERT INTO counts(status, type, n) VALUES (NEW.status, NEW.type, 1)
    ON CONFLICT(status, type) DO UPDATE SET n = n + 1;
END;
`;

/**
 * Seqs in arrival order for one status and one type (`due`: pending and due now), read from the
 * (status, type, seq) index. Exported for the test that holds their query plans.
 */
export const TYPED_SQL = {
  list: 'SELECT seq FROM events WHERE status = ? AND type = ? AND seq > ? ORDER BY seq LIMIT ?',
  due: `SELECT seq FROM events WHERE status = 'pending' AND type = ?
    AND (retry_at IS NULL OR retry_at <= ?) ORDER BY seq LIMIT ?`,
};

/** The `n` smallest of several runs of distinct seqs (arrival order across the runs). */
function smallest(runs: number[][], n: number): number[] {
  return runs
    .flat()
    .sort((a, b) => a - b)
    .slice(0, n);
}

interface EventRow {
  seq: number;
  id: string;
  type: string;
  created: number;
  livemode: number;
  object_id: string | null;
  payload: string;
  status: string;
  attempts: number;
  received_at: number;
  updated_at: number;
  retry_at: number | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  last_error: string | null;
  /** Bumped by every state change: what a compare-and-set write checks (sqlite-writer.ts). */
  rev: number;
}

/** How many times a state change re-reads and re-applies the rules after losing a race. */
const CHANGE_ROUNDS = 20;

/** The embedded, durable default: one SQLite file in WAL mode with `synchronous=FULL`. */
export class SqliteBuffer extends CommandMethods implements EventBuffer {
  readonly kind = 'sqlite';
  /** The guardrails' counts (sqlite-ledger.ts), written on the writer thread. */
  readonly ledger: AgentLedger;
  readonly file: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly maxPending: number;
  private readonly commitMode: CommitMode;
  /** Seqs this process is claiming right now: its other claims skip them (no herd on one row). */
  private readonly claiming = new Set<number>();
  /** Read on every state change (the policy may change from another process): prepared once. */
  private policyStmt: Database.Statement | undefined;
  private pauseStmt: Database.Statement | undefined;
  private readonly recent: RecentIds;
  private writerThread: SqliteWriter | undefined;
  private closed = false;
  private readonly feed = new ChangeFeed();
  private pollTimer: NodeJS.Timeout | undefined;
  private dataVersion = 0;
  private readonly stmt;
  /** Seqs in arrival order for one status and one type, from the (status, type, seq) index. */
  private readonly typedSeqs;
  private readonly listStatements = new Map<string, Database.Statement>();
  private pickDueTx:
    ((types: readonly string[] | null, now: number, want: number) => EventRow[]) | undefined;

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
      if (!options.readonly) {
        this.db.pragma('journal_mode = WAL');
        // FULL: a commit is on disk (fsync of the WAL) before append resolves and the 200 goes out.
        this.db.pragma('synchronous = FULL');
        this.migrate();
        this.writePolicy({ maxAttempts: options.maxAttempts, retryBaseMs: options.retryBaseMs });
      }
    } catch (error) {
      throw asStoreError(error, `cannot open the event store at ${options.file}`);
    }
    const db = this.db;
    this.ledger = new SqliteLedger(db, () => this.writer(), this.now, oldestDayKept);
    this.stmt = {
      get: db.prepare('SELECT * FROM events WHERE id = ?'),
      lease: db.prepare('SELECT status, lease_owner, lease_expires_at FROM events WHERE id = ?'),
      counts: db.prepare('SELECT status, type, n FROM counts WHERE n > 0'),
      pendingTypes: db
        .prepare("SELECT type FROM counts WHERE status = 'pending' AND n > 0")
        .pluck(),
      oldestPending: db
        .prepare("SELECT received_at FROM events WHERE status = 'pending' ORDER BY seq LIMIT 1")
        .pluck(),
      history: db.prepare('SELECT at, kind, data FROM history WHERE event_id = ? ORDER BY n'),
      addHistory: db.prepare('INSERT INTO history (event_id, at, kind, data) VALUES (?, ?, ?, ?)'),
      dueSeqs: db
        .prepare(
          `SELECT seq FROM events WHERE status = 'pending' AND (retry_at IS NULL OR retry_at <= ?)
           ORDER BY seq LIMIT ?`,
        )
        .pluck(),
      expired: db.prepare(
        "SELECT * FROM events WHERE status = 'claimed' AND lease_expires_at <= ?",
      ),
      dueExists: db
        .prepare(
          `SELECT 1 FROM events WHERE status = 'pending' AND (retry_at IS NULL OR retry_at <= ?)
           LIMIT 1`,
        )
        .pluck(),
      pruneEvents: db.prepare(
        `DELETE FROM events WHERE seq IN (SELECT seq FROM events
           WHERE status IN ('acked', 'dead') AND updated_at < ? LIMIT 1000) RETURNING id`,
      ),
      pruneHistory: db.prepare('DELETE FROM history WHERE event_id = ?'),
    };
    this.typedSeqs = {
      list: db.prepare<[string, string, number, number], number>(TYPED_SQL.list).pluck(),
      due: db.prepare<[string, number, number], number>(TYPED_SQL.due).pluck(),
      row: db.prepare('SELECT * FROM events WHERE seq = ?'),
    };
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
      onCommit: () => this.absorbWriterCommit(),
    });
    return this.writerThread;
  }

  async newestCreated(): Promise<number | null> {
    // Prepared when asked: a read-only open of a store from before schema 3 has no meta table.
    const value = this.run(() => {
      const exists = this.db
        .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'")
        .pluck()
        .get();
      if (!exists) return undefined;
      return this.db
        .prepare("SELECT value FROM meta WHERE key = 'newest_created'")
        .pluck()
        .get() as number | undefined;
    });
    return value ?? null;
  }

  /** The pre-dispatch check reads the lease only: the row's payload is not needed. */
  protected override async leaseOf(id: string): Promise<Lease | null> {
    const row = this.run(() => this.stmt.lease.get(id)) as
      { status: string; lease_owner: string | null; lease_expires_at: number | null } | undefined;
    if (!row) return null;
    return {
      status: row.status as EventStatus,
      leaseOwner: row.lease_owner,
      leaseExpiresAt: row.lease_expires_at,
    };
  }

  async get(id: string): Promise<StoredEvent | null> {
    const row = this.run(() => this.stmt.get.get(id) as EventRow | undefined);
    return row ? toEvent(row) : null;
  }

  async history(id: string): Promise<HistoryEntry[]> {
    const event = await this.get(id);
    if (!event) throw new EventNotFoundError(id);
    const rows = this.run(
      () => this.stmt.history.all(id) as { at: number; kind: string; data: string | null }[],
    );
    // "received" is not stored as a row: the event's own received_at says it, saving a write
    // on the hot path.
    const entries: HistoryEntry[] = [{ at: iso(event.receivedAt), kind: 'received' }];
    for (const r of rows) {
      const data = r.data ? (JSON.parse(r.data) as Partial<HistoryEntry>) : {};
      entries.push({ ...data, at: iso(r.at), kind: r.kind as HistoryEntry['kind'] });
    }
    return entries;
  }

  async list(query: ListQuery): Promise<ListPage> {
    const after = decodeCursor(query.cursor);
    const statuses = query.statuses?.length ? [...new Set(query.statuses)] : null;
    const types = query.types?.length ? [...new Set(query.types)] : null;
    const n = query.limit + 1;
    const rows = this.run(() =>
      types
        ? this.typedList(statuses ?? EVENT_STATUSES, types, after, n)
        : (this.untypedList(statuses?.length ?? 0).all(
            after,
            ...(statuses ?? []),
            n,
          ) as EventRow[]),
    );
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page.at(-1);
    return {
      events: page.map(toEvent),
      nextCursor: more && last ? encodeCursor(last.seq) : null,
    };
  }

  private untypedList(statusCount: number): Database.Statement {
    const key = `list:${statusCount}`;
    let stmt = this.listStatements.get(key);
    if (!stmt) {
      const where = ['seq > ?'];
      if (statusCount) where.push(`status IN (${Array(statusCount).fill('?').join(',')})`);
      const sql = `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`;
      stmt = this.db.prepare(sql);
      this.listStatements.set(key, stmt);
    }
    return stmt;
  }

  /**
   * A type-filtered page: the first `n` seqs of each (status, type) pair from the (status, type,
   * seq) index, merged. It reads the events of those types only; filtering the (status, seq)
   * index by type walked every event of the status before reaching a rare type's.
   */
  private typedList(
    statuses: readonly string[],
    types: readonly string[],
    after: number,
    n: number,
  ): EventRow[] {
    // One read transaction: the seqs and the rows come from the same snapshot.
    return this.db.transaction(() => {
      const runs = statuses.flatMap((status) =>
        types.map((type) => this.typedSeqs.list.all(status, type, after, n)),
      );
      return this.rowsBySeq(smallest(runs, n));
    })();
  }

  private rowsBySeq(seqs: number[]): EventRow[] {
    return seqs.map((seq) => this.typedSeqs.row.get(seq) as EventRow);
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
      const picked = this.run(() => this.pickDue(types, now, want));
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
   * The `want` oldest due events of `types` (all types: null) this process is not claiming
   * already. Seqs first, rows only for those picked: a row carries its payload, and reading the
   * rows of every candidate cost a loop of 16 workers a quarter of a millisecond of its main thread
   * per claim (bench/agent.mjs). One read transaction: the seqs and rows are of one snapshot, and
   * the claim's compare-and-set refuses any that changed since.
   */
  private pickDue(types: readonly string[] | null, now: number, want: number): EventRow[] {
    this.pickDueTx ??= this.db.transaction(
      (asked: readonly string[] | null, at: number, n: number): EventRow[] => {
        const seqs = this.dueSeqs(asked, at, n + this.claiming.size)
          .filter((seq) => !this.claiming.has(seq))
          .slice(0, n);
        return this.rowsBySeq(seqs);
      },
    );
    return this.pickDueTx(types, now, want);
  }

  /**
   * Seqs of the `n` oldest due events of `types`, in arrival order. A loop asks for every type it
   * knows, which is most often every type that has pending events: then one scan in arrival order
   * does (a query per type cost half a millisecond per claim). Otherwise only the asked types that
   * have pending events are read. Called inside a read transaction.
   */
  private dueSeqs(types: readonly string[] | null, now: number, n: number): number[] {
    if (!types) return this.stmt.dueSeqs.all(now, n) as number[];
    const pending = this.stmt.pendingTypes.all() as string[];
    const asked = new Set(types);
    const wanted = pending.filter((type) => asked.has(type));
    if (wanted.length === 0) return [];
    if (wanted.length === pending.length) return this.stmt.dueSeqs.all(now, n) as number[];
    return smallest(
      wanted.map((type) => this.typedSeqs.due.all(type, now, n)),
      n,
    );
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
    return this.run(() => {
      // Prepared on the first ask, once the table exists (a read-only open of a store from before
      // schema 5 has none): every running loop asks once a second, and MCP hubs on each change.
      if (!this.pauseStmt) {
        const exists = this.db
          .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'settings'")
          .pluck()
          .get();
        if (!exists) return { ...NOT_PAUSED };
        this.pauseStmt = this.db
          .prepare("SELECT value FROM settings WHERE key = 'agent_pause'")
          .pluck();
      }
      return pauseFrom(this.pauseStmt.get() as string | undefined);
    });
  }

  async setAgentPause(pause: AgentPause): Promise<void> {
    this.run(() =>
      this.db
        .prepare(
          "INSERT INTO settings (key, value) VALUES ('agent_pause', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .run(JSON.stringify(pause.paused ? pause : NOT_PAUSED)),
    );
    this.feed.emit({ kind: 'agent' });
  }

  async setPolicy(policy: Partial<QueuePolicy>): Promise<QueuePolicy> {
    this.run(() => this.writePolicy(policy));
    return this.readPolicy();
  }

  private readPolicy(): QueuePolicy {
    return this.run(() => {
      this.policyStmt ??= this.db.prepare(
        "SELECT key, value FROM meta WHERE key IN ('max_attempts', 'retry_base_ms')",
      );
      const rows = this.policyStmt.all() as { key: string; value: number }[];
      const get = (key: string) => rows.find((r) => r.key === key)?.value ?? null;
      return policyFrom({ maxAttempts: get('max_attempts'), retryBaseMs: get('retry_base_ms') });
    });
  }

  /** Stores the given policy parts (at open, from serve/agent flags); others keep their value. */
  private writePolicy(policy: Partial<QueuePolicy>): void {
    const set = this.db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    );
    const valid = policyFrom(policy);
    if (policy.maxAttempts !== undefined) set.run('max_attempts', valid.maxAttempts);
    if (policy.retryBaseMs !== undefined) set.run('retry_base_ms', valid.retryBaseMs);
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
      if (n < 1000) return total;
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
    if (!this.pollTimer && !this.closed) {
      this.dataVersion = this.readDataVersion();
      // Another process (the CLI, a second MCP server) writing the same file bumps
      // data_version for this connection; our own commits do not, so no double announcements.
      this.pollTimer = setInterval(() => this.pollExternal(), EXTERNAL_POLL_MS);
      this.pollTimer.unref();
    }
    return this.feed.add(listener, () => this.stopPolling());
  }

  /**
   * The writer thread's commits look external to this connection, but they are announced with
   * their ids when the writer answers: take its data_version as seen. (Another process's commit
   * landing in the same instant is announced with the next change.)
   */
  private absorbWriterCommit(): void {
    if (!this.pollTimer || this.closed) return;
    try {
      this.dataVersion = this.readDataVersion();
    } catch {
      // The poll will notice on its own.
    }
  }

  private readDataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  private pollExternal(): void {
    if (this.closed) return;
    try {
      const version = this.readDataVersion();
      if (version !== this.dataVersion) {
        this.dataVersion = version;
        this.feed.emit({ kind: 'external' });
      }
    } catch {
      // The store failed; health() reports it, the next poll tries again.
    }
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.stopPolling();
    this.closed = true;
    // Whatever the writer was sent is committed before it stops, not dropped.
    await this.writerThread?.close();
    this.db.close();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StoreUnavailableError(
        `the store at ${this.file} was written by a newer stripe-events-mcp (schema ${version}); upgrade this one`,
      );
    }
    if (version < SCHEMA_VERSION) {
      this.db.exec(SCHEMA);
      // Schema 6: the guardrails' ledger (sqlite-ledger.ts): spend per day, dispatch slots per
      // tool, the agent loops on the store.
      this.db.exec(LEDGER_SCHEMA);
      // Schema 5: every state change bumps `rev`, and is written only if the row is still at the
      // revision its rules were applied to (compare-and-set on the writer thread).
      const columns = this.db
        .prepare('SELECT name FROM pragma_table_info(?)')
        .pluck()
        .all('events');
      if (!columns.includes('rev')) {
        this.db.exec('ALTER TABLE events ADD COLUMN rev INTEGER NOT NULL DEFAULT 0');
      }
      // Schema 1 also indexed (status, updated_at) for prune; every append paid for it, and prune
      // (hourly, in batches) reads finished events in arrival order through (status, seq) instead.
      this.db.exec('DROP INDEX IF EXISTS events_status_updated');
      // Schema 3 keeps the newest `created` as events are appended; a store written before starts
      // from its events (one scan, once). Schema 4 adds the (status, type, seq) index (SCHEMA):
      // lists and claims filtered by type read only events of those types.
      this.db.exec(`INSERT OR IGNORE INTO meta (key, value)
        SELECT 'newest_created', max(created) FROM events HAVING max(created) IS NOT NULL`);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }
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

function toEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    type: row.type,
    created: row.created,
    livemode: row.livemode === 1,
    objectId: row.object_id,
    payload: row.payload,
    status: row.status as EventStatus,
    attempts: row.attempts,
    receivedAt: row.received_at,
    updatedAt: row.updated_at,
    retryAt: row.retry_at,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    lastError: row.last_error,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('the event store is closed');
}

function asStoreError(error: unknown, message: string): AppError {
  if (error instanceof AppError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new StoreUnavailableError(`${message}: ${detail}`, { cause: error });
}

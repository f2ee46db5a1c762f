import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { IncomingEvent } from '../buffer.js';
import { HAPPENING_INSERT_SQL } from './happenings.js';
import { LEDGER_WORKER_SOURCE, type LedgerOp } from './ledger.js';

/**
 * Every write runs on a worker thread with its own SQLite connection (`synchronous=FULL`): the
 * transaction, its fsync and the WAL checkpoints happen there, so the main thread keeps reading and
 * verifying requests — and the agent loop keeps deciding — while the disk works. Writes that arrive
 * while one commit runs form the next transaction (group commit); with `batch: false` each is its
 * own commit.
 *
 * Two kinds of write: appends (ingest), and state changes. A state change was computed on the main
 * thread by the rules in transitions.ts from the row as read at revision `rev`; here it is applied
 * only if the row is still at that revision (compare-and-set), so no other process's change can
 * slip between the check and the write. A `conflict` sends the main thread back to re-read and
 * re-apply the rules to the new state.
 */
export type AppendOutcome = 'queued' | 'duplicate' | 'full';
export type ChangeOutcome = 'ok' | 'conflict' | 'missing';

/** A state change to write if the row is still at `rev` (columns as in the events table). */
export interface StateWrite {
  id: string;
  rev: number;
  status: string;
  attempts: number;
  retry_at: number | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  last_error: string | null;
  outcome: string | null;
  updated_at: number;
  /** History rows written in the same transaction, in order. */
  history: { at: number; kind: string; data: string | null }[];
  /** A happening (happenings.ts) this change is, logged in the same transaction. */
  happening?: 'held' | 'dead';
  /**
   * False for a claim or a lease renewal: a batch of only such changes commits without an fsync
   * (synchronous=NORMAL). Safe because WAL commits stay in order: the next fsynced commit makes
   * them durable too, and only an OS crash or power cut (which ends every worker anyway) can lose
   * them — leaving the event pending, to be claimed again. Everything else is fsynced (FULL).
   */
  durable: boolean;
}

export const APPEND_SQL = {
  insert: `INSERT INTO events (id, type, created, livemode, object_id, payload, status, received_at, updated_at)
    VALUES (@id, @type, @created, @livemode, @objectId, @payload, 'pending', @now, @now)
    ON CONFLICT(id) DO NOTHING`,
  exists: 'SELECT 1 FROM events WHERE id = ?',
  pendingCount: "SELECT coalesce(sum(n), 0) FROM counts WHERE status = 'pending'",
  // Once per transaction, with the newest `created` among the events it queued.
  newest: `INSERT INTO meta (key, value) VALUES ('newest_created', ?)
    ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)`,
  change: `UPDATE events SET status = @status, attempts = @attempts, retry_at = @retry_at,
    lease_owner = @lease_owner, lease_expires_at = @lease_expires_at, last_error = @last_error,
    outcome = @outcome, updated_at = @updated_at, rev = rev + 1
    WHERE id = @id AND rev = @rev`,
  history: 'INSERT INTO history (event_id, at, kind, data) VALUES (?, ?, ?, ?)',
  happening: HAPPENING_INSERT_SQL,
};

// Plain JavaScript, run with `eval: true`: the same code whether the project runs from src/ (tests)
// or dist/, and nothing to resolve relative to the working directory (Claude Desktop uses `/`).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
// SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, so the requests
// of that batch waited for it (commits: 1 ms at p50, 11 ms at p99). This thread checkpoints after
// answering instead (see commit()): the WAL stays short and is reused from its start, and no answer
// waits for a checkpoint. A checkpoint on another thread cannot do this: under steady writes it
// never catches the WAL's end, so the WAL is never reset and only grows.
db.pragma('wal_autocheckpoint = 0');
const insert = db.prepare(workerData.sql.insert);
const exists = db.prepare(workerData.sql.exists).pluck();
const pendingCount = db.prepare(workerData.sql.pendingCount).pluck();
const newest = db.prepare(workerData.sql.newest);
const change = db.prepare(workerData.sql.change);
const history = db.prepare(workerData.sql.history);
const happening = db.prepare(workerData.sql.happening);
${LEDGER_WORKER_SOURCE}
// Compare-and-set: the state the main thread computed from revision rev, or a conflict.
function applyChange(w) {
  const info = change.run(w);
  if (info.changes === 0) return exists.get(w.id) ? 'conflict' : 'missing';
  for (const h of w.history) history.run(w.id, h.at, h.kind, h.data);
  if (w.happening) happening.run(w.happening, w.updated_at, w.id, null);
  return 'ok';
}
let synchronous = 'FULL';
function setSynchronous(mode) {
  if (mode === synchronous) return;
  db.pragma('synchronous = ' + mode);
  synchronous = mode;
}
const appendAll = db.transaction((items) => {
  let pending = pendingCount.get();
  let newestQueued = null;
  const outcomes = items.map((item) => {
    // The guardrails' ledger (sqlite/ledger.ts): its check-and-count is atomic in this transaction.
    if (item.ledger) return ledgerOp(db, item.ledger);
    if (item.change) {
      // A claim or a nack changes the pending count the limit is checked against.
      const outcome = applyChange(item.change);
      if (outcome === 'ok') pending = pendingCount.get();
      return outcome;
    }
    const { event, now } = item;
    if (pending >= workerData.maxPending) return exists.get(event.id) ? 'duplicate' : 'full';
    const info = insert.run({ ...event, livemode: event.livemode ? 1 : 0, now });
    if (info.changes === 0) return 'duplicate';
    pending += 1;
    if (newestQueued === null || event.created > newestQueued) newestQueued = event.created;
    return 'queued';
  });
  if (newestQueued !== null) newest.run(newestQueued);
  return outcomes;
});
// Claims, renewals and the ledger's counts need no fsync of their own (StateWrite.durable).
function isLight(m) {
  return m.ledger !== undefined || (m.change !== undefined && !m.change.durable);
}
let queue = [];
let scheduled = false;
// Appends between checkpoints (bench/ingest.mjs): after every commit, each mode fell to a quarter
// of its throughput (a database fsync per event); every 512, p99 rose 1.5x in group mode (each
// checkpoint a longer stall); 64 and 128 were alike in group mode, 128 better in each mode.
const CHECKPOINT_EVERY = 128;
let sinceCheckpoint = 0;
function commit(batch) {
  const ns = batch.map((m) => m.n);
  try {
    // A batch of claims and renewals only needs no fsync (StateWrite.durable); any append or
    // outcome in it makes the whole commit FULL.
    setSynchronous(batch.every(isLight) ? 'NORMAL' : 'FULL');
    // IMMEDIATE: take the write lock up front; a deferred upgrade can fail with SQLITE_BUSY at once.
    parentPort.postMessage({ ns, outcomes: appendAll.immediate(batch) });
  } catch (error) {
    parentPort.postMessage({ ns, error: String((error && error.message) || error) });
    return;
  }
  sinceCheckpoint += batch.length;
  if (sinceCheckpoint < CHECKPOINT_EVERY) return;
  sinceCheckpoint = 0;
  try {
    // PASSIVE: never waits for a reader; a reader that holds the WAL only delays its reset.
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or failed: the next checkpoint tries again; nothing committed depends on it.
  }
}
function flush() {
  scheduled = false;
  const batch = queue;
  queue = [];
  if (batch.length === 0) return;
  // Claims and renewals go first, in their own commit without an fsync, and are answered before
  // the fsync of the rest: a worker that has just handed over its ack claims its next event in
  // well under a millisecond instead of waiting out the disk. One that shares an event with an
  // append or outcome of this batch keeps its place (the compare-and-set would sort out any order,
  // but in order nobody has to try again).
  const heavyIds = new Set(batch.filter((m) => !isLight(m)).map((m) => (m.change || m.event).id));
  const light = batch.filter((m) => isLight(m) && (m.ledger || !heavyIds.has(m.change.id)));
  if (light.length === 0 || light.length === batch.length) return commit(batch);
  const first = new Set(light);
  commit(light);
  commit(batch.filter((m) => !first.has(m)));
}
parentPort.on('message', (message) => {
  if (message === 'close') {
    flush();
    db.close();
    parentPort.close();
    return;
  }
  // An array: the appends the main thread received in one turn of its event loop.
  if (!workerData.batch) {
    for (const item of message) commit([item]);
    return;
  }
  for (const item of message) queue.push(item);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
`;

type Outcome = AppendOutcome | ChangeOutcome | unknown;

interface Waiter {
  resolve: (outcome: Outcome) => void;
  reject: (error: Error) => void;
}

type Reply = { ns: number[]; outcomes: Outcome[] } | { ns: number[]; error: string };

type Item =
  | { n: number; now: number; event: IncomingEvent }
  | { n: number; change: StateWrite }
  | { n: number; ledger: LedgerOp };

export interface SqliteWriterOptions {
  file: string;
  maxPending: number;
  batch: boolean;
  /** Called after each commit the worker made (the main connection sees them as external). */
  onCommit?: () => void;
}

export class SqliteWriter {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiter>();
  private n = 0;
  /** Appends not yet posted: one message per event-loop turn, not one per request. */
  private outbox: Item[] = [];
  private postSoon = false;
  private failure: Error | null = null;
  private readonly exited: Promise<void>;

  constructor(private readonly options: SqliteWriterOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Everything this thread allocates lives for one batch; V8's default young generation (up
      // to 3 × 16 MB) let its heap grow outside the main heap's figures, ~25 MB over a soak
      // (bench/soak.mjs). A small one is scavenged more often at next to no cost (almost nothing
      // survives); the old generation keeps V8's default, so a burst of large bodies still fits.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
      workerData: {
        driver,
        file: options.file,
        sql: APPEND_SQL,
        maxPending: options.maxPending,
        batch: options.batch,
      },
    });
    // Waiting appends keep the process alive on their own; an idle writer must not.
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => this.receive(reply));
    this.worker.on('error', (error) => this.fail(error));
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', () => {
        this.fail(new Error('the store writer stopped'));
        resolve();
      });
    });
  }

  append(event: IncomingEvent, now: number): Promise<AppendOutcome> {
    return this.send((n) => ({ n, now, event })) as Promise<AppendOutcome>;
  }

  /** Writes a state change if its row is still at `change.rev`; committed with the next batch. */
  change(change: StateWrite): Promise<ChangeOutcome> {
    return this.send((n) => ({ n, change }), !change.durable) as Promise<ChangeOutcome>;
  }

  /** Runs a ledger check-and-count in the next transaction, answered with the claims. */
  ledger(op: LedgerOp): Promise<unknown> {
    return this.send((n) => ({ n, ledger: op }), true);
  }

  /**
   * Queues an item for the worker. Appends wait for the end of this event-loop turn, so the
   * requests read in one turn share a message and a commit; a claim or renewal goes as soon as
   * the current task's promise chain is done (a worker waits on it before it can ask the model).
   */
  private send(item: (n: number) => Item, soon = false): Promise<Outcome> {
    if (this.failure) return Promise.reject(this.failure);
    const n = ++this.n;
    return new Promise((resolve, reject) => {
      this.waiting.set(n, { resolve, reject });
      this.worker.ref();
      if (this.outbox.length === 0) setImmediate(() => this.post());
      this.outbox.push(item(n));
      if (soon && !this.postSoon) {
        this.postSoon = true;
        queueMicrotask(() => {
          this.postSoon = false;
          this.post();
        });
      }
    });
  }

  private post(): void {
    const items = this.outbox;
    this.outbox = [];
    if (items.length === 0) return;
    if (this.failure) for (const { n } of items) this.take(n)?.reject(this.failure);
    else this.worker.postMessage(items);
  }

  /** Commits what was sent, then stops the worker and its connection. */
  async close(): Promise<void> {
    // Referenced again, or the process could exit before the last commit and the close finish.
    this.worker.ref();
    if (this.outbox.length > 0) this.post();
    if (!this.failure) this.worker.postMessage('close');
    await this.exited;
  }

  private receive(reply: Reply): void {
    if ('error' in reply) {
      for (const n of reply.ns) this.take(n)?.reject(new Error(reply.error));
    } else {
      reply.ns.forEach((n, i) => this.take(n)?.resolve(reply.outcomes[i]!));
      this.options.onCommit?.();
    }
    if (this.waiting.size === 0) this.worker.unref();
  }

  private take(n: number): Waiter | undefined {
    const waiter = this.waiting.get(n);
    this.waiting.delete(n);
    return waiter;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}

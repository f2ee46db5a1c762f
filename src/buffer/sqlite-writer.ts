import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { IncomingEvent } from './buffer.js';

/**
 * Appends run on a worker thread with its own SQLite connection (`synchronous=FULL`): the
 * transaction, its fsync and the WAL checkpoints happen there, so the main thread keeps reading and
 * verifying requests while the disk works. Appends that arrive while one commit runs form the next
 * transaction (group commit); with `batch: false` each is its own commit.
 */
export type AppendOutcome = 'queued' | 'duplicate' | 'full';

export const APPEND_SQL = {
  insert: `INSERT INTO events (id, type, created, livemode, object_id, payload, status, received_at, updated_at)
    VALUES (@id, @type, @created, @livemode, @objectId, @payload, 'pending', @now, @now)
    ON CONFLICT(id) DO NOTHING`,
  exists: 'SELECT 1 FROM events WHERE id = ?',
  pendingCount: "SELECT coalesce(sum(n), 0) FROM counts WHERE status = 'pending'",
  // Once per transaction, with the newest `created` among the events it queued.
  newest: `INSERT INTO meta (key, value) VALUES ('newest_created', ?)
    ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)`,
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
const appendAll = db.transaction((items) => {
  let pending = pendingCount.get();
  let newestQueued = null;
  const outcomes = items.map(({ event, now }) => {
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
  if (batch.length > 0) commit(batch);
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

interface Waiter {
  resolve: (outcome: AppendOutcome) => void;
  reject: (error: Error) => void;
}

type Reply = { ns: number[]; outcomes: AppendOutcome[] } | { ns: number[]; error: string };

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
  private outbox: { n: number; now: number; event: IncomingEvent }[] = [];
  private failure: Error | null = null;
  private readonly exited: Promise<void>;

  constructor(private readonly options: SqliteWriterOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
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
    if (this.failure) return Promise.reject(this.failure);
    const n = ++this.n;
    return new Promise((resolve, reject) => {
      this.waiting.set(n, { resolve, reject });
      this.worker.ref();
      if (this.outbox.length === 0) setImmediate(() => this.post());
      this.outbox.push({ n, now, event });
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

import type Database from 'better-sqlite3';
import { EVENT_STATUSES } from '../buffer.js';
import { ORDER_SCAN } from '../object-order.js';
import type { EventRow } from './rows.js';

/**
 * Seqs in arrival order for one status and one type (`due`: pending and due now), read from the
 * (status, type, seq) index. Exported for the test that holds their query plans.
 */
export const TYPED_SQL = {
  list: 'SELECT seq FROM events WHERE status = ? AND type = ? AND seq > ? ORDER BY seq LIMIT ?',
  due: `SELECT seq FROM events WHERE status = 'pending' AND type = ?
    AND (retry_at IS NULL OR retry_at <= ?) ORDER BY seq LIMIT ?`,
};

/** The most events a typed page looks at in arrival order before it reads the indexes. */
const SCAN_WINDOW = 256;

/** The `n` smallest of several runs of distinct seqs (arrival order across the runs). */
function smallest(runs: number[][], n: number): number[] {
  return runs
    .flat()
    .sort((a, b) => a - b)
    .slice(0, n);
}

/**
 * Events in arrival order, read through the indexes: the due events a claim picks, and the rows
 * of a list page. Seqs first, rows only for those picked.
 */
export class SeqReads {
  private readonly stmt;
  /** Seqs in arrival order for one status and one type, from the (status, type, seq) index. */
  private readonly typedSeqs;
  private readonly listStatements = new Map<string, Database.Statement>();
  private readonly order;
  private pickDueTx:
    ((types: readonly string[] | null, now: number, want: number) => EventRow[]) | undefined;

  /**
   * `claiming`: the seqs this process is claiming right now (the store's own set): picks skip
   * them, so its claims do not herd on one row.
   */
  constructor(
    private readonly db: Database.Database,
    private readonly claiming: ReadonlySet<number>,
  ) {
    this.stmt = {
      pendingTypes: db
        .prepare("SELECT type FROM counts WHERE status = 'pending' AND n > 0")
        .pluck(),
      dueSeqs: db
        .prepare(
          `SELECT seq FROM events WHERE status = 'pending' AND (retry_at IS NULL OR retry_at <= ?)
           ORDER BY seq LIMIT ?`,
        )
        .pluck(),
    };
    // One object, one order (object-order.ts): an older active event about the same object holds
    // a candidate back. Read through the partial index of active events by (object_id, created, id).
    this.order = {
      key: db.prepare<[number], { object_id: string | null; created: number; id: string }>(
        'SELECT object_id, created, id FROM events WHERE seq = ?',
      ),
      older: db
        .prepare<[string, number, number, string], number>(
          `SELECT 1 FROM events WHERE object_id = ? AND status IN ('pending', 'claimed', 'awaiting_approval')
           AND (created < ? OR (created = ? AND id < ?)) LIMIT 1`,
        )
        .pluck(),
    };
    this.typedSeqs = {
      list: db.prepare<[string, string, number, number], number>(TYPED_SQL.list).pluck(),
      due: db.prepare<[string, number, number], number>(TYPED_SQL.due).pluck(),
      row: db.prepare('SELECT * FROM events WHERE seq = ?'),
      // The next events in arrival order whatever their type: `type` precedes the payload in the
      // row, so this reads no payload.
      next: db.prepare<[number, number], { seq: number; type: string }>(
        'SELECT seq, type FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
    };
  }

  /**
   * The rows of a list page: the first `n` events after seq `after` of `statuses` (all: null) and
   * `types` (all: null), in arrival order.
   */
  page(
    statuses: readonly string[] | null,
    types: readonly string[] | null,
    after: number,
    n: number,
    outcomes: readonly string[] | null = null,
  ): EventRow[] {
    if (outcomes) return this.outcomeList(outcomes, statuses, types, after, n);
    return types
      ? this.typedList(statuses ?? EVENT_STATUSES, types, after, n)
      : (this.untypedList(statuses?.length ?? 0).all(after, ...(statuses ?? []), n) as EventRow[]);
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
      // Any status and many types (MCP Events reading every catalog type after a cursor near the
      // head: 5 statuses × every type was one index seek each, per delivery): look at the next
      // few events first. Their matches are the page if there are `n` of them or the window
      // reached the end; otherwise (rare types) the index runs below find them.
      if (types.length > 1 && EVENT_STATUSES.every((st) => statuses.includes(st))) {
        const window = Math.min(SCAN_WINDOW, 4 * n + 16);
        const next = this.typedSeqs.next.all(after, window);
        const wanted = new Set(types);
        const seqs = next.filter((r) => wanted.has(r.type)).map((r) => r.seq);
        if (seqs.length >= n || next.length < window) return this.rowsBySeq(seqs.slice(0, n));
      }
      const runs = statuses.flatMap((status) =>
        types.map((type) => this.typedSeqs.list.all(status, type, after, n)),
      );
      return this.rowsBySeq(smallest(runs, n));
    })();
  }

  /**
   * An outcome-filtered page: the first `n` seqs of each outcome from the partial (outcome, seq)
   * index, merged; status and type are checked on those rows only. It reads only events that
   * ended so, never the unfinished ones (whose outcome is null and not in the index).
   */
  private outcomeList(
    outcomes: readonly string[],
    statuses: readonly string[] | null,
    types: readonly string[] | null,
    after: number,
    n: number,
  ): EventRow[] {
    const key = `outcome:${statuses?.length ?? 0}:${types?.length ?? 0}`;
    let stmt = this.listStatements.get(key);
    if (!stmt) {
      const where = ['outcome = ?', 'seq > ?'];
      if (statuses) where.push(`status IN (${Array(statuses.length).fill('?').join(',')})`);
      if (types) where.push(`type IN (${Array(types.length).fill('?').join(',')})`);
      const sql = `SELECT seq FROM events INDEXED BY events_outcome_seq
        WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`;
      stmt = this.db.prepare(sql).pluck();
      this.listStatements.set(key, stmt);
    }
    const query = stmt;
    return this.db.transaction(() => {
      const runs = outcomes.map(
        (outcome) =>
          query.all(outcome, after, ...(statuses ?? []), ...(types ?? []), n) as number[],
      );
      return this.rowsBySeq(smallest(runs, n));
    })();
  }

  private rowsBySeq(seqs: number[]): EventRow[] {
    return seqs.map((seq) => this.typedSeqs.row.get(seq) as EventRow);
  }

  /**
   * The `want` oldest due events of `types` (all types: null) this process is not claiming
   * already. Seqs first, rows only for those picked: a row carries its payload, and reading the
   * rows of every candidate cost a loop of 16 workers a quarter of a millisecond of its main thread
   * per claim (bench/agent.mjs). One read transaction: the seqs and rows are of one snapshot, and
   * the claim's compare-and-set refuses any that changed since.
   */
  pickDue(types: readonly string[] | null, now: number, want: number): EventRow[] {
    this.pickDueTx ??= this.db.transaction(
      (asked: readonly string[] | null, at: number, n: number): EventRow[] => {
        // A first look just past what this process is claiming; when candidates are held back
        // by older events about their objects, one look further, bounded (ORDER_SCAN).
        const first = n + this.claiming.size + 16;
        for (const window of [first, Math.max(first, ORDER_SCAN)]) {
          const due = this.dueSeqs(asked, at, window);
          const seqs = due
            .filter((seq) => !this.claiming.has(seq) && !this.heldBack(seq))
            .slice(0, n);
          if (seqs.length === n || due.length < window || window >= ORDER_SCAN) {
            return this.rowsBySeq(seqs);
          }
        }
        return [];
      },
    );
    return this.pickDueTx(types, now, want);
  }

  /** Whether an older event about the same object is still active (object-order.ts). */
  private heldBack(seq: number): boolean {
    const key = this.order.key.get(seq);
    if (!key || key.object_id === null) return false;
    return this.order.older.get(key.object_id, key.created, key.created, key.id) !== undefined;
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
}

import type Database from 'better-sqlite3';
import {
  emptySpend,
  type AgentInstance,
  type AgentLedger,
  type SlotGrant,
  type Spend,
  type SpendGrant,
  type SpendRequest,
  type SpendTotals,
} from '../ledger.js';

/**
 * The ledger of the SQLite store (see buffer/ledger.ts). Every check-and-count runs on the store's
 * writer thread (sqlite/writer.ts), inside its IMMEDIATE transaction, so two processes on one file
 * cannot both take the last slot or the last of the budget. Like claims, these writes commit
 * without an fsync of their own (WAL commits stay in order: the next fsynced commit covers them;
 * a killed process loses nothing, only an OS crash can drop the newest). Reads run on the main
 * connection.
 */

export const LEDGER_SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_day (
  day TEXT PRIMARY KEY,
  tokens INTEGER NOT NULL DEFAULT 0,
  usd REAL NOT NULL DEFAULT 0,
  reserved_tokens INTEGER NOT NULL DEFAULT 0,
  reserved_usd REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_reserved (
  day TEXT NOT NULL,
  key TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  usd REAL NOT NULL,
  PRIMARY KEY (day, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_slots (
  tool TEXT NOT NULL,
  key TEXT NOT NULL,
  at INTEGER NOT NULL,
  confirmed INTEGER NOT NULL,
  PRIMARY KEY (tool, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_slots_at ON ledger_slots(tool, at);
CREATE TABLE IF NOT EXISTS agent_instances (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  seen INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Schema 7: ledger.once() keys (key → until, ms); idempotent like every schema step. */
export const ONCE_SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_once (
  key TEXT PRIMARY KEY,
  until INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** A ledger write, as sent to the writer thread. */
export type LedgerOp =
  | { op: 'reserveSpend'; now: number; request: SpendRequest; oldestDay: string }
  | { op: 'settleSpend'; day: string; key: string; actual: Spend }
  | {
      op: 'reserveSlot';
      now: number;
      tool: string;
      key: string;
      perHour: number;
      holdMs: number;
    }
  | { op: 'confirmSlot'; now: number; tool: string; key: string }
  | { op: 'releaseSlot'; now: number; tool: string; key: string }
  | { op: 'reportInstance'; instance: AgentInstance; staleBefore: number }
  | { op: 'removeInstance'; id: string }
  | { op: 'once'; now: number; key: string; ttlMs: number };

/**
 * The writer thread's side, as JavaScript source evaluated in the worker (sqlite/writer.ts): a
 * function `ledgerOp(db, item)` run inside the batch's transaction. It restates the rules of
 * buffer/ledger.ts (spendAllowed, slotWait) for the store; test/buffer/ledger-contract.ts holds
 * every store to the same answers.
 */
export const LEDGER_WORKER_SOURCE = `
const HOUR_MS = 3600000;
let L = null;
function ledgerStatements(db) {
  if (L) return L;
  L = {
    day: db.prepare('SELECT tokens, usd, reserved_tokens, reserved_usd FROM ledger_day WHERE day = ?'),
    addDay: db.prepare(\`INSERT INTO ledger_day (day, tokens, usd, reserved_tokens, reserved_usd)
      VALUES (@day, @tokens, @usd, @rt, @ru) ON CONFLICT(day) DO UPDATE SET
      tokens = tokens + @tokens, usd = usd + @usd,
      reserved_tokens = reserved_tokens + @rt, reserved_usd = reserved_usd + @ru\`),
    dropDays: db.prepare('DELETE FROM ledger_day WHERE day < ?'),
    dropReserved: db.prepare('DELETE FROM ledger_reserved WHERE day < ?'),
    reserve: db.prepare('INSERT OR REPLACE INTO ledger_reserved (day, key, tokens, usd) VALUES (?, ?, ?, ?)'),
    reservation: db.prepare('SELECT tokens, usd FROM ledger_reserved WHERE day = ? AND key = ?'),
    unreserve: db.prepare('DELETE FROM ledger_reserved WHERE day = ? AND key = ?'),
    expireSlots: db.prepare('DELETE FROM ledger_slots WHERE tool = ? AND at <= ?'),
    slot: db.prepare('SELECT confirmed FROM ledger_slots WHERE tool = ? AND key = ?'),
    slotTimes: db.prepare('SELECT at FROM ledger_slots WHERE tool = ? ORDER BY at').pluck(),
    takeSlot: db.prepare('INSERT INTO ledger_slots (tool, key, at, confirmed) VALUES (?, ?, ?, 0)'),
    confirmSlot: db.prepare(\`INSERT INTO ledger_slots (tool, key, at, confirmed) VALUES (?, ?, ?, 1)
      ON CONFLICT(tool, key) DO UPDATE SET at = excluded.at, confirmed = 1\`),
    releaseSlot: db.prepare('DELETE FROM ledger_slots WHERE tool = ? AND key = ? AND confirmed = 0'),
    report: db.prepare(\`INSERT INTO agent_instances (id, data, seen) VALUES (?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET data = excluded.data, seen = excluded.seen\`),
    dropStale: db.prepare('DELETE FROM agent_instances WHERE seen < ?'),
    remove: db.prepare('DELETE FROM agent_instances WHERE id = ?'),
    dropOnce: db.prepare('DELETE FROM ledger_once WHERE until <= ?'),
    takeOnce: db.prepare('INSERT OR IGNORE INTO ledger_once (key, until) VALUES (?, ?)'),
  };
  return L;
}
function ledgerOp(db, m) {
  const s = ledgerStatements(db);
  switch (m.op) {
    case 'reserveSpend': {
      const r = m.request;
      s.dropDays.run(m.oldestDay);
      s.dropReserved.run(m.oldestDay);
      const row = s.day.get(r.day) || { tokens: 0, usd: 0, reserved_tokens: 0, reserved_usd: 0 };
      const totals = { day: r.day, tokens: row.tokens, usd: row.usd,
        reservedTokens: row.reserved_tokens, reservedUsd: row.reserved_usd };
      const over = (r.maxTokens !== null && totals.tokens + totals.reservedTokens >= r.maxTokens) ||
        (r.maxUsd !== null && totals.usd + totals.reservedUsd >= r.maxUsd);
      if (over) return { granted: false, totals };
      s.addDay.run({ day: r.day, tokens: 0, usd: 0, rt: r.tokens, ru: r.usd });
      s.reserve.run(r.day, r.key, r.tokens, r.usd);
      return { granted: true, totals };
    }
    case 'settleSpend': {
      const held = s.reservation.get(m.day, m.key) || { tokens: 0, usd: 0 };
      s.unreserve.run(m.day, m.key);
      s.addDay.run({ day: m.day, tokens: m.actual.tokens, usd: m.actual.usd,
        rt: -held.tokens, ru: -held.usd });
      return 'ok';
    }
    case 'reserveSlot': {
      s.expireSlots.run(m.tool, m.now - HOUR_MS);
      if (s.slot.get(m.tool, m.key)) return { granted: true };
      const times = s.slotTimes.all(m.tool);
      if (times.length >= m.perHour) {
        const freeing = times[times.length - m.perHour];
        return { granted: false, retryInMs: Math.max(1, freeing + HOUR_MS - m.now) };
      }
      s.takeSlot.run(m.tool, m.key, m.now + m.holdMs);
      return { granted: true };
    }
    case 'confirmSlot':
      s.confirmSlot.run(m.tool, m.key, m.now);
      return 'ok';
    case 'releaseSlot':
      s.releaseSlot.run(m.tool, m.key);
      return 'ok';
    case 'reportInstance':
      s.dropStale.run(m.staleBefore);
      s.report.run(m.instance.id, JSON.stringify(m.instance), m.instance.seen);
      return 'ok';
    case 'removeInstance':
      s.remove.run(m.id);
      return 'ok';
    case 'once':
      s.dropOnce.run(m.now);
      return s.takeOnce.run(m.key, m.now + m.ttlMs).changes === 1;
  }
  throw new Error('unknown ledger op ' + m.op);
}
`;

export interface LedgerWriter {
  ledger(op: LedgerOp): Promise<unknown>;
}

/** Instances not seen for a day are dropped from the table when another one reports. */
const INSTANCE_RECORD_KEPT_MS = 86_400_000;

export class SqliteLedger implements AgentLedger {
  private reads:
    | {
        day: Database.Statement;
        slots: Database.Statement;
        instances: Database.Statement;
      }
    | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly writer: () => LedgerWriter,
    private readonly now: () => number,
    private readonly oldestDay: (day: string) => string,
  ) {}

  /** Prepared on first use: a read-only open of a store from before schema 6 has no tables. */
  private statements() {
    this.reads ??= {
      day: this.db.prepare(
        'SELECT tokens, usd, reserved_tokens, reserved_usd FROM ledger_day WHERE day = ?',
      ),
      slots: this.db.prepare('SELECT count(*) FROM ledger_slots WHERE tool = ? AND at > ?').pluck(),
      instances: this.db.prepare('SELECT data FROM agent_instances WHERE seen >= ?').pluck(),
    };
    return this.reads;
  }

  async reserveSpend(request: SpendRequest): Promise<SpendGrant> {
    return (await this.writer().ledger({
      op: 'reserveSpend',
      now: this.now(),
      request,
      oldestDay: this.oldestDay(request.day),
    })) as SpendGrant;
  }

  async settleSpend(day: string, key: string, actual: Spend): Promise<void> {
    await this.writer().ledger({ op: 'settleSpend', day, key, actual });
  }

  async spend(day: string): Promise<SpendTotals> {
    const row = this.statements().day.get(day) as
      { tokens: number; usd: number; reserved_tokens: number; reserved_usd: number } | undefined;
    if (!row) return emptySpend(day);
    return {
      day,
      tokens: row.tokens,
      usd: row.usd,
      reservedTokens: row.reserved_tokens,
      reservedUsd: row.reserved_usd,
    };
  }

  async reserveSlot(
    tool: string,
    key: string,
    perHour: number,
    holdMs: number,
  ): Promise<SlotGrant> {
    return (await this.writer().ledger({
      op: 'reserveSlot',
      now: this.now(),
      tool,
      key,
      perHour,
      holdMs,
    })) as SlotGrant;
  }

  async confirmSlot(tool: string, key: string): Promise<void> {
    await this.writer().ledger({ op: 'confirmSlot', now: this.now(), tool, key });
  }

  async releaseSlot(tool: string, key: string): Promise<void> {
    await this.writer().ledger({ op: 'releaseSlot', now: this.now(), tool, key });
  }

  async slotsUsed(tool: string): Promise<number> {
    return this.statements().slots.get(tool, this.now() - 3_600_000) as number;
  }

  async reportInstance(instance: AgentInstance): Promise<void> {
    await this.writer().ledger({
      op: 'reportInstance',
      instance,
      staleBefore: this.now() - INSTANCE_RECORD_KEPT_MS,
    });
  }

  async removeInstance(id: string): Promise<void> {
    await this.writer().ledger({ op: 'removeInstance', id });
  }

  async instances(freshMs: number): Promise<AgentInstance[]> {
    const rows = this.statements().instances.all(this.now() - freshMs) as string[];
    return rows.map((text) => JSON.parse(text) as AgentInstance);
  }

  async once(key: string, ttlMs: number): Promise<boolean> {
    return (await this.writer().ledger({ op: 'once', now: this.now(), key, ttlMs })) === true;
  }
}

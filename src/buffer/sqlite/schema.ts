import type Database from 'better-sqlite3';
import { StoreUnavailableError } from '../../errors.js';
import { LEDGER_SCHEMA, ONCE_SCHEMA } from './ledger.js';
import { HAPPENINGS_SCHEMA } from './happenings.js';
import { PEOPLE_SCHEMA } from './people.js';
import { SUBSCRIPTIONS_SCHEMA } from './subscriptions.js';

const SCHEMA_VERSION = 8;

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
 * Brings the store opened on `db` (the file `file`, named in the error) to SCHEMA_VERSION;
 * refuses a store written by a newer version.
 */
export function migrate(db: Database.Database, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new StoreUnavailableError(
      `the store at ${file} was written by a newer stripe-events-mcp (schema ${version}); upgrade this one`,
    );
  }
  if (version < SCHEMA_VERSION) {
    db.exec(SCHEMA);
    // Schema 6: the guardrails' ledger (sqlite/ledger.ts): spend per day, dispatch slots per
    // tool, the agent loops on the store.
    db.exec(LEDGER_SCHEMA);
    // Schema 7: ledger.once() keys (sqlite/ledger.ts), e.g. the one "expires soon" notice.
    db.exec(ONCE_SCHEMA);
    // Schema 7: the people who sign in under their own name (sqlite/people.ts), their tokens'
    // hashes only. Idempotent (IF NOT EXISTS), like every step here.
    db.exec(PEOPLE_SCHEMA);
    // Schema 7: MCP Events webhook subscriptions (sqlite/subscriptions.ts), idempotent.
    db.exec(SUBSCRIPTIONS_SCHEMA);
    // Schema 8: the happenings log (sqlite/happenings.ts) MCP Events' queue types read, idempotent.
    db.exec(HAPPENINGS_SCHEMA);
    // Schema 5: every state change bumps `rev`, and is written only if the row is still at the
    // revision its rules were applied to (compare-and-set on the writer thread).
    const columns = db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('events');
    if (!columns.includes('rev')) {
      db.exec('ALTER TABLE events ADD COLUMN rev INTEGER NOT NULL DEFAULT 0');
    }
    // Schema 1 also indexed (status, updated_at) for prune; every append paid for it, and prune
    // (hourly, in batches) reads finished events in arrival order through (status, seq) instead.
    db.exec('DROP INDEX IF EXISTS events_status_updated');
    // Schema 7: how a finished event ended (`outcome`, buffer.ts EVENT_OUTCOMES), written with
    // the state change that ends it. Its index is partial: appends and claims (outcome null) never
    // touch it, and a list filtered by outcome reads only the events that ended so.
    if (!columns.includes('outcome')) db.exec('ALTER TABLE events ADD COLUMN outcome TEXT');
    db.exec(`CREATE INDEX IF NOT EXISTS events_outcome_seq ON events(outcome, seq)
      WHERE outcome IS NOT NULL`);
    // Schema 3 keeps the newest `created` as events are appended; a store written before starts
    // from its events (one scan, once). Schema 4 adds the (status, type, seq) index (SCHEMA):
    // lists and claims filtered by type read only events of those types.
    // Schema 7: one object, one order (object-order.ts): the active events of each object by
    // (created, id), so a claim finds an older one about the same object in one index probe.
    db.exec(`CREATE INDEX IF NOT EXISTS events_object_order ON events(object_id, created, id)
      WHERE status IN ('pending', 'claimed', 'awaiting_approval')`);
    db.exec(`INSERT OR IGNORE INTO meta (key, value)
      SELECT 'newest_created', max(created) FROM events HAVING max(created) IS NOT NULL`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }
}

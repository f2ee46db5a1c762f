import type Database from 'better-sqlite3';
import { happeningFrom, MAX_HAPPENINGS_READ, type Happening } from '../happenings.js';

/**
 * The happenings log in SQLite (happenings.ts): rows inserted by the writer thread in the same
 * transaction as the hold or death they record (writer.ts applyChange), and by the pause's own
 * transaction on the main connection. AUTOINCREMENT: a number is never reused after a prune.
 */
export const HAPPENINGS_SCHEMA = `
CREATE TABLE IF NOT EXISTS happenings (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  at INTEGER NOT NULL,
  event_id TEXT,
  pause TEXT
);
CREATE INDEX IF NOT EXISTS happenings_at ON happenings(at);
`;

export const HAPPENING_INSERT_SQL =
  'INSERT INTO happenings (kind, at, event_id, pause) VALUES (?, ?, ?, ?)';

export class SqliteHappenings {
  private afterStmt: Database.Statement | undefined;

  constructor(private readonly db: Database.Database) {}

  /** Whether the table exists (a read-only open of a store from before schema 8 has none). */
  private exists(): boolean {
    return (
      this.db
        .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'happenings'")
        .pluck()
        .get() !== undefined
    );
  }

  after(after: number, limit: number): Happening[] {
    // Prepared once the table exists (a read-only open of a store before schema 8 has none).
    if (!this.afterStmt) {
      if (!this.exists()) return [];
      this.afterStmt = this.db.prepare(
        'SELECT seq, kind, at, event_id, pause FROM happenings WHERE seq > ? ORDER BY seq LIMIT ?',
      );
    }
    const rows = this.afterStmt.all(
      after,
      Math.max(0, Math.min(limit, MAX_HAPPENINGS_READ)),
    ) as Parameters<typeof happeningFrom>[0][];
    return rows.map(happeningFrom);
  }

  head(): number {
    const seq = this.db
      .prepare("SELECT seq FROM sqlite_sequence WHERE name = 'happenings'")
      .pluck()
      .get() as number | undefined;
    return seq ?? 0;
  }

  insertPause(at: number, pauseText: string): void {
    this.db.prepare(HAPPENING_INSERT_SQL).run('paused', at, null, pauseText);
  }

  prune(before: number): number {
    if (!this.exists()) return 0;
    return this.db.prepare('DELETE FROM happenings WHERE at < ?').run(before).changes;
  }
}

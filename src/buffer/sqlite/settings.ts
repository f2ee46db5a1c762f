import type Database from 'better-sqlite3';
import { NOT_PAUSED, type AgentPause } from '../buffer.js';
import { pauseFrom, policyFrom } from '../commands.js';
import { pauseText } from '../happenings.js';
import type { QueuePolicy } from '../transitions.js';

/**
 * The store-wide settings every process shares, read and written on the main connection: the
 * queue's policy and the newest `created` (the meta table), the agent pause (the settings table).
 * The store runs these inside its error mapping.
 */
export class SqliteSettings {
  /** Read on every state change (the policy may change from another process): prepared once. */
  private policyStmt: Database.Statement | undefined;
  private pauseStmt: Database.Statement | undefined;

  constructor(private readonly db: Database.Database) {}

  newestCreated(): number | undefined {
    // Prepared when asked: a read-only open of a store from before schema 3 has no meta table.
    const exists = this.db
      .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'")
      .pluck()
      .get();
    if (!exists) return undefined;
    return this.db.prepare("SELECT value FROM meta WHERE key = 'newest_created'").pluck().get() as
      number | undefined;
  }

  agentPause(): AgentPause {
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
  }

  /** Stores the pause; returns the text stored. */
  setAgentPause(pause: AgentPause): string {
    const text = pauseText(pause);
    this.db
      .prepare(
        "INSERT INTO settings (key, value) VALUES ('agent_pause', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(text);
    return text;
  }

  policy(): QueuePolicy {
    this.policyStmt ??= this.db.prepare(
      "SELECT key, value FROM meta WHERE key IN ('max_attempts', 'retry_base_ms')",
    );
    const rows = this.policyStmt.all() as { key: string; value: number }[];
    const get = (key: string) => rows.find((r) => r.key === key)?.value ?? null;
    return policyFrom({ maxAttempts: get('max_attempts'), retryBaseMs: get('retry_base_ms') });
  }

  /** Stores the given policy parts (at open, from serve/agent flags); others keep their value. */
  writePolicy(policy: Partial<QueuePolicy>): void {
    const set = this.db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    );
    const valid = policyFrom(policy);
    if (policy.maxAttempts !== undefined) set.run('max_attempts', valid.maxAttempts);
    if (policy.retryBaseMs !== undefined) set.run('retry_base_ms', valid.retryBaseMs);
  }
}

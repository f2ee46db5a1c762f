import type Database from 'better-sqlite3';

/** How often a watched store checks for other processes' commits (SQLite's data_version). */
const EXTERNAL_POLL_MS = 100;

/**
 * Other processes' commits to the store's file, noticed while the store is watched: another
 * process (the CLI, a second MCP server) writing the same file bumps data_version for this
 * connection; our own commits do not, so no double announcements.
 */
export class ExternalCommits {
  private pollTimer: NodeJS.Timeout | undefined;
  private dataVersion = 0;

  /** `onExternal` is told of each change seen; `closed` says when the store was closed. */
  constructor(
    private readonly db: Database.Database,
    private readonly closed: () => boolean,
    private readonly onExternal: () => void,
  ) {}

  /** Starts polling, unless it runs already. */
  start(): void {
    if (this.pollTimer) return;
    this.dataVersion = this.readDataVersion();
    this.pollTimer = setInterval(() => this.poll(), EXTERNAL_POLL_MS);
    this.pollTimer.unref();
  }

  /**
   * The writer thread's commits look external to this connection, but they are announced with
   * their ids when the writer answers: take its data_version as seen. (Another process's commit
   * landing in the same instant is announced with the next change.)
   */
  absorbWriterCommit(): void {
    if (!this.pollTimer || this.closed()) return;
    try {
      this.dataVersion = this.readDataVersion();
    } catch {
      // The poll will notice on its own.
    }
  }

  stop(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private readDataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  private poll(): void {
    if (this.closed()) return;
    try {
      const version = this.readDataVersion();
      if (version !== this.dataVersion) {
        this.dataVersion = version;
        this.onExternal();
      }
    } catch {
      // The store failed; health() reports it, the next poll tries again.
    }
  }
}

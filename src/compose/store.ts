import fs from 'node:fs';
import path from 'node:path';
import type { EventBuffer } from '../buffer/buffer.js';
import { MemoryBuffer } from '../buffer/memory.js';
import { openBuffer } from '../buffer/open.js';
import { DATABASE_FILE, type CommitMode } from '../buffer/sqlite/store.js';
import type { StoreSettings } from '../config/config.js';
import { DATA_DIR_SETTING, ensureWritableDir } from '../config/data-dir.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';

export interface OpenStoreSettings extends StoreSettings {
  /** The SQLite store's directory (`events.db` inside). */
  dataDir: string;
  maxPending?: number;
  commitMode?: CommitMode;
  /**
   * `serve`/`agent --max-attempts`: stored as the queue's policy before anything else runs, so
   * every process that opens this store (attached stdio, the CLI, other instances) follows it.
   * Absent: the stored policy stands.
   */
  maxAttempts?: number;
  /**
   * When the SQLite store does not exist yet: `create` it (serve, stdio, backfill), `fail` with
   * a ConfigError naming --data-dir (the `events` commands read what a server wrote), or use an
   * `empty` store in memory (a backfill dry run compares against nothing and creates nothing).
   */
  ifMissing: 'create' | 'fail' | 'empty';
}

/**
 * The one way every process opens the event store. SQLite in WAL mode lets the CLI and an attached
 * stdio session work beside a live server; Redis connects under the deployment's key prefix.
 */
export async function openStore(
  settings: OpenStoreSettings,
  logger?: Logger,
): Promise<EventBuffer> {
  if (settings.store === 'sqlite') {
    if (settings.dataDir.trim() === '') {
      throw new ConfigError(
        DATA_DIR_SETTING,
        'is empty. Fix: give a directory path or leave it unset.',
      );
    }
    const exists = fs.existsSync(path.join(settings.dataDir, DATABASE_FILE));
    if (!exists && settings.ifMissing === 'fail') {
      throw new ConfigError(
        DATA_DIR_SETTING,
        `no event store in ${settings.dataDir}. Fix: pass the --data-dir the server uses (or start \`stripe-events-mcp serve\` first).`,
      );
    }
    if (!exists && settings.ifMissing === 'empty') return new MemoryBuffer();
    if (settings.ifMissing === 'create') ensureWritableDir(settings.dataDir);
  }
  const store = await openBuffer({
    store: settings.store,
    dataDir: settings.dataDir,
    redisUrl: settings.redisUrl,
    redisPrefix: settings.redisPrefix,
    maxPending: settings.maxPending,
    commitMode: settings.commitMode,
    onConnectionChange: logger
      ? (state, detail) => (state === 'lost' ? logger.warn(detail) : logger.info(detail))
      : undefined,
  });
  if (settings.maxAttempts !== undefined) {
    try {
      const policy = await store.setPolicy({ maxAttempts: settings.maxAttempts });
      logger?.info('queue policy stored', { ...policy });
    } catch (error) {
      await store.close().catch(() => {});
      throw error;
    }
  }
  return store;
}

import type { EventBuffer } from './buffer.js';
import { openSqliteBuffer, type CommitMode } from './sqlite/store.js';

export { redactRedisUrl } from './redis/url.js';

export interface OpenBufferSettings {
  store: 'sqlite' | 'redis';
  /** The SQLite store's directory (`events.db` inside). */
  dataDir: string;
  redisUrl: string;
  redisPrefix: string;
  maxPending?: number;
  maxAttempts?: number;
  commitMode?: CommitMode;
  /** Redis only: told when the connection is lost and when it is back. */
  onConnectionChange?: (state: 'lost' | 'restored', detail: string) => void;
}

/**
 * Opens the configured store: SQLite in the data dir, or Redis (connected before this resolves;
 * rejects with StoreUnavailableError when Redis does not answer). The Redis client is loaded only
 * when that store is chosen.
 */
export async function openBuffer(settings: OpenBufferSettings): Promise<EventBuffer> {
  if (settings.store === 'redis') {
    const { openRedisBuffer } = await import('./redis/store.js');
    return openRedisBuffer({
      url: settings.redisUrl,
      prefix: settings.redisPrefix,
      maxPending: settings.maxPending,
      maxAttempts: settings.maxAttempts,
      onConnectionChange: settings.onConnectionChange,
    });
  }
  return openSqliteBuffer(settings.dataDir, {
    maxPending: settings.maxPending,
    maxAttempts: settings.maxAttempts,
    commitMode: settings.commitMode,
  });
}

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { EventBuffer } from '../buffer/buffer.js';
import { DATABASE_FILE, openSqliteBuffer } from '../buffer/sqlite/store.js';
import type { Catalog, ToolDefinition } from '../catalog/catalog.js';
import { ConfigError } from '../errors.js';
import { backfill, type EventsClient, type Since } from '../ingress/backfill.js';
import { DATA_DIR_SETTING } from '../config/data-dir.js';

/**
 * Where rehearsed events come from. Either way they end up in a scratch store in the report's
 * folder (`DIR/events.db`), never in the live queue: the live store is only ever read.
 */

/** The types either policy maps, looked up in the first that maps each. */
export function unionCatalog(catalogs: readonly Catalog[]): Catalog {
  const types = [...new Set(catalogs.flatMap((c) => c.types()))];
  const lookup = (type: string): ToolDefinition | undefined => {
    for (const c of catalogs) {
      const def = c.lookup(type);
      if (def) return def;
    }
    return undefined;
  };
  return {
    lookup,
    types: () => types,
    entries: () => types.map((t) => lookup(t)!),
    toolCall: (type, event) => {
      for (const c of catalogs) {
        const call = c.toolCall(type, event);
        if (call) return call;
      }
      return null;
    },
  };
}

export interface FetchResult {
  store: EventBuffer;
  /** Mapped events fetched (before the limit). */
  fetched: number;
  /** More mapped events existed than the limit let in. */
  truncated: boolean;
}

/**
 * Pulls the period's mapped events from the Events API into a new SQLite store in `dir` (the
 * same walk and dedup as `backfill`). With a limit, the walk stops once more than `limit` mapped
 * events have arrived: the API lists newest first, so those are the newest.
 */
export async function fetchIntoScratch(options: {
  dir: string;
  stripe: EventsClient;
  catalog: Catalog;
  since: Since;
  limit?: number;
}): Promise<FetchResult> {
  const store = openSqliteBuffer(options.dir);
  const controller = new AbortController();
  let truncated = false;
  try {
    const counts = await backfill({
      stripe: options.stripe,
      buffer: store,
      catalog: options.catalog,
      since: options.since,
      signal: controller.signal,
      onProgress: (c) => {
        if (options.limit !== undefined && c.queued > options.limit && !truncated) {
          truncated = true;
          controller.abort();
        }
      },
    });
    return { store, fetched: counts.queued, truncated };
  } catch (error) {
    await store.close();
    throw error;
  }
}

/**
 * A consistent copy of the live SQLite store, taken without writing to the live data dir. With a
 * `-wal` file present (a server has it open, or stopped uncleanly) a read-only connection sees
 * the committed state through the existing shared-memory file and SQLite's online backup copies
 * it. Without one the database file is complete on its own and is copied as it is: a read-only
 * connection would create `-wal` and `-shm` files in the live directory.
 */
export async function snapshotLiveStore(dataDir: string, dir: string): Promise<EventBuffer> {
  const live = path.join(dataDir, DATABASE_FILE);
  if (!fs.existsSync(live)) {
    throw new ConfigError(
      DATA_DIR_SETTING,
      `has no event store (${live} does not exist). Fix: point --data-dir at the data directory of the server whose events to rehearse, or drop --from-store to fetch them from the Events API.`,
    );
  }
  const copy = path.join(dir, DATABASE_FILE);
  if (fs.existsSync(`${live}-wal`) && fs.existsSync(`${live}-shm`)) {
    const db = new Database(live, { readonly: true, fileMustExist: true });
    try {
      await db.backup(copy);
    } finally {
      db.close();
    }
  } else {
    fs.copyFileSync(live, copy, fs.constants.COPYFILE_EXCL);
  }
  fs.chmodSync(copy, 0o600);
  return openSqliteBuffer(dir);
}

/**
 * The ids to rehearse from a scratch store, in its arrival order: mapped types only, created at or
 * after `since` (Unix seconds) when given, at most `limit` (and whether more were there).
 */
export async function listIds(
  store: EventBuffer,
  types: readonly string[],
  options: { sinceCreated?: number; limit?: number } = {},
): Promise<{ ids: string[]; truncated: boolean }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.list({ types, limit: 500, cursor });
    for (const event of page.events) {
      if (options.sinceCreated !== undefined && event.created < options.sinceCreated) continue;
      if (options.limit !== undefined && ids.length >= options.limit) {
        return { ids, truncated: true };
      }
      ids.push(event.id);
    }
    cursor = page.nextCursor;
  } while (cursor);
  return { ids, truncated: false };
}

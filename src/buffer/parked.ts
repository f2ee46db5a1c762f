import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Thin notifications that arrived while no STRIPE_SECRET_KEY was set: their snapshot events could
 * not be fetched. Each is recorded durably before the `200 needs_key`, and the next backfill with
 * a key fetches and queues them — even ones older than its own window.
 */
export interface ParkedNotification {
  /** The thin notification's id. */
  id: string;
  type: string;
  snapshot_event: string;
  received_at: string;
}

/** Where they are recorded: beside the events, so that any instance's backfill finds them. */
export interface ParkedStore {
  /** Resolves once the record is durable. */
  add(entry: ParkedNotification): Promise<void>;
  /** Every parked notification, once per snapshot event, oldest first. */
  list(): Promise<ParkedNotification[]>;
  /** Forgets the given snapshot events (done, or gone from the API). */
  remove(snapshotEvents: readonly string[]): Promise<void>;
}

/** A store that keeps parked notifications itself (Redis: shared by every instance). */
export interface HasParkedStore {
  parkedNotifications(): ParkedStore;
}

/**
 * The store's own record when it has one (Redis), else a file in the data dir beside the SQLite
 * store (one instance writes there).
 */
export function openParkedStore(buffer: object | null, dataDir: string): ParkedStore {
  const own = buffer as Partial<HasParkedStore> | null;
  return typeof own?.parkedNotifications === 'function'
    ? own.parkedNotifications()
    : new ParkedFile(dataDir);
}

export const PARKED_FILE = 'thin-needs-key.jsonl';

/** One JSON object per line, appended and fsynced; removals rewrite the file atomically. */
export class ParkedFile implements ParkedStore {
  readonly file: string;
  /** Writes one at a time, so a rewrite never races an append. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dataDir: string) {
    this.file = path.join(dataDir, PARKED_FILE);
  }

  add(entry: ParkedNotification): Promise<void> {
    return this.serial(async () => {
      const handle = await fs.open(this.file, 'a', 0o600);
      try {
        await handle.appendFile(JSON.stringify(entry) + '\n');
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }

  async list(): Promise<ParkedNotification[]> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const seen = new Set<string>();
    const entries: ParkedNotification[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const entry = JSON.parse(line) as ParkedNotification;
        if (typeof entry.snapshot_event !== 'string' || seen.has(entry.snapshot_event)) continue;
        seen.add(entry.snapshot_event);
        entries.push(entry);
      } catch {
        // A line cut short by a crash mid-append was never answered 200: nothing to keep.
      }
    }
    return entries;
  }

  remove(snapshotEvents: readonly string[]): Promise<void> {
    if (snapshotEvents.length === 0) return Promise.resolve();
    const done = new Set(snapshotEvents);
    return this.serial(async () => {
      const keep = (await this.list()).filter((e) => !done.has(e.snapshot_event));
      const tmp = `${this.file}.tmp`;
      const handle = await fs.open(tmp, 'w', 0o600);
      try {
        await handle.writeFile(keep.map((e) => JSON.stringify(e) + '\n').join(''));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, this.file);
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

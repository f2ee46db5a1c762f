import fs from 'node:fs';
import path from 'node:path';
import {
  EVENT_STATUSES,
  isEventStatus,
  type EventBuffer,
  type EventStatus,
} from '../buffer/buffer.js';
import { DATABASE_FILE, SqliteBuffer } from '../buffer/sqlite.js';
import { createdText, detail, summarize } from '../buffer/summary.js';
import { createCatalog } from '../catalog/catalog.js';
import { loadStoreSettings } from '../config/config.js';
import { DATA_DIR_SETTING, defaultDataDir } from '../config/data-dir.js';
import { ConfigError } from '../errors.js';
import { out, outJson } from './output.js';

export interface EventsOptions {
  dataDir?: string;
  json?: boolean;
  store?: string;
  redisPrefix?: string;
}

/**
 * Opens the store a server writes to. SQLite in WAL mode lets this run beside a live server, and
 * opening after a crash replays the WAL, so every committed event is there. With `--store redis`
 * it connects to REDIS_URL under the deployment's key prefix, like every `serve` instance does.
 */
export async function openStore(options: EventsOptions, env = process.env): Promise<EventBuffer> {
  const settings = loadStoreSettings(options, env);
  if (settings.store === 'redis') {
    const { openRedisBuffer } = await import('../buffer/redis.js');
    return openRedisBuffer({ url: settings.redisUrl, prefix: settings.redisPrefix });
  }
  const dataDir = options.dataDir ?? env.STRIPE_EVENTS_DATA_DIR ?? defaultDataDir(env);
  const file = path.join(dataDir, DATABASE_FILE);
  if (!fs.existsSync(file)) {
    throw new ConfigError(
      DATA_DIR_SETTING,
      `no event store in ${dataDir}. Fix: pass the --data-dir the server uses (or start \`stripe-events-mcp serve\` first).`,
    );
  }
  return new SqliteBuffer({ file });
}

async function withStore<T>(
  options: EventsOptions,
  fn: (buffer: EventBuffer) => Promise<T>,
): Promise<T> {
  const buffer = await openStore(options);
  try {
    return await fn(buffer);
  } finally {
    await buffer.close();
  }
}

export interface ListOptions extends EventsOptions {
  status?: string;
  type?: string[];
  limit?: string;
}

export async function eventsList(options: ListOptions): Promise<void> {
  let statuses: EventStatus[] | undefined;
  if (options.status !== undefined) {
    const wanted = options.status.split(',').map((s) => s.trim());
    const bad = wanted.find((s) => !isEventStatus(s));
    if (bad !== undefined) {
      throw new ConfigError(
        '--status',
        `${JSON.stringify(bad)} is not a status. Fix: use ${EVENT_STATUSES.join(', ')}.`,
      );
    }
    statuses = wanted as EventStatus[];
  }
  const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : Number(options.limit);
  if (!(limit >= 1)) throw new ConfigError('--limit', 'must be a number of at least 1.');
  const catalog = createCatalog();
  await withStore(options, async (buffer) => {
    const summaries = [];
    let cursor: string | null = null;
    do {
      const page = await buffer.list({
        statuses,
        types: options.type,
        limit: Math.min(500, limit - summaries.length),
        cursor,
      });
      summaries.push(...page.events.map((e) => summarize(e, catalog)));
      cursor = page.nextCursor;
    } while (cursor && summaries.length < limit);
    if (options.json) {
      out(JSON.stringify(summaries));
      return;
    }
    if (summaries.length === 0) {
      out('no events');
      return;
    }
    for (const s of summaries) {
      const when = createdText(s.created);
      out(
        [s.id, s.type, s.status, `attempts=${s.attempts}`, when, s.tool_call?.name ?? '-'].join(
          '  ',
        ),
      );
    }
  });
}

export async function eventsShow(id: string, options: EventsOptions): Promise<void> {
  await withStore(options, async (buffer) => {
    const event = await buffer.get(id);
    if (!event)
      throw new ConfigError(
        '<id>',
        `no event ${JSON.stringify(id)} in this store. Fix: see \`events list\`.`,
      );
    outJson(detail(event, await buffer.history(id), createCatalog()));
  });
}

export async function eventsAck(
  id: string,
  options: EventsOptions & { note?: string },
): Promise<void> {
  await withStore(options, async (buffer) => {
    if (!(await buffer.get(id)))
      throw new ConfigError('<id>', `no event ${JSON.stringify(id)} in this store.`);
    const event = await buffer.ack(id, {
      by: `cli:${process.env.USER ?? process.pid}`,
      note: options.note ?? 'acked from the command line',
    });
    if (options.json) outJson({ id, status: event.status });
    else out(`${id} acked`);
  });
}

export async function eventsReplay(id: string, options: EventsOptions): Promise<void> {
  await withStore(options, async (buffer) => {
    if (!(await buffer.get(id)))
      throw new ConfigError('<id>', `no event ${JSON.stringify(id)} in this store.`);
    const event = await buffer.replay(id, {
      by: `cli:${process.env.USER ?? process.pid}`,
      note: 'replayed from the command line',
    });
    if (options.json) outJson({ id, status: event.status });
    else out(`${id} is pending again`);
  });
}

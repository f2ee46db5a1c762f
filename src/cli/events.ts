import { EVENT_STATUSES, isEventStatus, type EventStatus } from '../buffer/buffer.js';
import { createdText, detail, summarize } from '../buffer/summary.js';
import { composeServices, type Services } from '../compose/services.js';
import { loadStoreSettings } from '../config/config.js';
import { defaultDataDir } from '../config/data-dir.js';
import { ConfigError } from '../errors.js';
import { callAmount } from '../money.js';
import { MAX_PAGE } from '../operations/queue.js';
import { out, outJson } from './output.js';

export interface EventsOptions {
  dataDir?: string;
  json?: boolean;
  store?: string;
  redisPrefix?: string;
}

/** Who asks, for the history: the user at this terminal. */
function who(env = process.env): string {
  return `cli:${env.USER ?? env.USERNAME ?? process.pid}`;
}

/**
 * The services on the store a server writes to (never a new one: the commands read what a server
 * wrote). SQLite in WAL mode lets this run beside a live server; with `--store redis` it connects
 * to REDIS_URL under the deployment's key prefix. The stored policy applies, as everywhere.
 */
async function withServices<T>(
  options: EventsOptions,
  fn: (services: Services) => Promise<T>,
  env = process.env,
): Promise<T> {
  const services = await composeServices({
    ...loadStoreSettings(options, env),
    dataDir: options.dataDir ?? env.STRIPE_EVENTS_DATA_DIR ?? defaultDataDir(env),
    ifMissing: 'fail',
  });
  try {
    return await fn(services);
  } finally {
    await services.close();
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
  await withServices(options, async ({ operations, catalog }) => {
    const summaries = [];
    let cursor: string | null = null;
    do {
      const page = await operations.list({
        statuses,
        types: options.type,
        limit: Math.min(MAX_PAGE, limit - summaries.length),
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
      // The amount in its currency (`$4,120.00`, `¥50,000`), last so the columns before it keep
      // their places; `--json` keeps the integer and the code as Stripe sent them.
      const amount = callAmount(s.tool_call?.input) ?? '-';
      out(
        [
          s.id,
          s.type,
          s.status,
          `attempts=${s.attempts}`,
          when,
          s.tool_call?.name ?? '-',
          amount,
        ].join('  '),
      );
    }
  });
}

export async function eventsShow(id: string, options: EventsOptions): Promise<void> {
  await withServices(options, async ({ operations, catalog }) => {
    const { event, history } = await operations.get(id);
    outJson(detail(event, history, catalog));
  });
}

export async function eventsAck(
  id: string,
  options: EventsOptions & { note?: string },
): Promise<void> {
  await withServices(options, async ({ operations }) => {
    const event = await operations.ack(id, {
      by: who(),
      note: options.note ?? 'acked from the command line',
    });
    if (options.json) outJson({ id, status: event.status });
    else out(`${id} acked`);
  });
}

export async function eventsReplay(id: string, options: EventsOptions): Promise<void> {
  await withServices(options, async ({ operations }) => {
    const { event } = await operations.replay(id, {
      by: who(),
      note: 'replayed from the command line',
    });
    if (options.json) outJson({ id, status: event.status });
    else out(`${id} is pending again`);
  });
}

export async function agentPause(options: EventsOptions & { reason?: string }): Promise<void> {
  await withServices(options, async ({ operations }) => {
    const pause = await operations.pauseAgent({ by: who(), reason: options.reason });
    if (options.json) outJson(pause);
    else out('the agent loops on this store are paused: no new claims until `resume`');
  });
}

export async function agentResume(options: EventsOptions): Promise<void> {
  await withServices(options, async ({ operations }) => {
    const pause = await operations.resumeAgent({ by: who() });
    if (options.json) outJson(pause);
    else out('the agent loops on this store run again');
  });
}

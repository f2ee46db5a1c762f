import {
  EVENT_STATUSES,
  isEventStatus,
  type EventStatus,
  type HistoryEntry,
} from '../buffer/buffer.js';
import { createdText, detail, summarize, type EventDetail } from '../buffer/summary.js';
import { composeServices, type Services } from '../compose/services.js';
import { loadStoreSettings } from '../config/config.js';
import { defaultDataDir } from '../config/data-dir.js';
import { ConfigError } from '../errors.js';
import { callAmount } from '../money.js';
import { MAX_PAGE } from '../operations/queue.js';
import { cliActor as who } from './actor.js';
import { out, outJson } from './output.js';

export interface EventsOptions {
  dataDir?: string;
  json?: boolean;
  store?: string;
  redisPrefix?: string;
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
    const shown = detail(event, history, catalog);
    if (options.json) outJson(shown);
    else out(showText(shown));
  });
}

/**
 * `events show` for a person: state and history first, then the tool call and the event as
 * received. The payload is the long part (a charge is a hundred lines), and printed first it
 * pushed what one usually looks for off the screen.
 */
export function showText(shown: EventDetail): string {
  const event = shown.event as { id?: unknown; type?: unknown };
  const lines = [
    [String(event.id), String(event.type), shown.status, `attempts=${shown.attempts}`].join('  '),
    `received   ${shown.received_at}`,
  ];
  if (shown.retry_at !== null) lines.push(`retry at   ${shown.retry_at}`);
  if (shown.last_error !== null) lines.push(`last error ${oneLine(shown.last_error)}`);
  lines.push(`tool call  ${shown.tool_call?.name ?? '- (the catalog maps no tool to this type)'}`);
  lines.push('', 'history');
  for (const entry of shown.history) lines.push(`  ${historyLine(entry)}`);
  if (shown.tool_call !== null) {
    lines.push('', 'tool call input', JSON.stringify(shown.tool_call.input, null, 2));
  }
  lines.push('', 'event as received', JSON.stringify(shown.event, null, 2));
  return terminalSafe(lines.join('\n'));
}

function historyLine(entry: HistoryEntry): string {
  const parts = [entry.at, entry.kind];
  if (entry.by !== undefined) parts.push(`by ${entry.by}`);
  if (entry.model !== undefined) parts.push(`model ${entry.model}`);
  if (entry.tool_call !== undefined) parts.push(`tool ${entry.tool_call.name}`);
  if (entry.outcome !== undefined) parts.push(`outcome ${entry.outcome}`);
  if (entry.usage !== undefined) {
    parts.push(`tokens ${entry.usage.input_tokens} in, ${entry.usage.output_tokens} out`);
  }
  if (entry.latency_ms !== undefined) parts.push(`${entry.latency_ms} ms`);
  if (entry.note !== undefined) parts.push(`note ${oneLine(entry.note)}`);
  return parts.join('  ');
}

/** A note or error may be several lines (or a model's words): one line per entry keeps a list a list. */
function oneLine(text: string): string {
  return text.replace(/\n/g, '\\n');
}

/**
 * Notes, errors and `by` come from MCP clients, the console and models: control characters are
 * shown escaped, never sent to the terminal to interpret (JSON.stringify leaves U+007F–U+009F).
 */
function terminalSafe(text: string): string {
  return text.replace(
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
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

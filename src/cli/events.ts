import path from 'node:path';
import {
  EVENT_OUTCOMES,
  EVENT_STATUSES,
  isEventOutcome,
  isEventStatus,
  type EventOutcome,
  type EventStatus,
  type HistoryEntry,
} from '../buffer/buffer.js';
import { createdText, detail, summarize, type EventDetail } from '../buffer/summary.js';
import { composeServices, type Services } from '../compose/services.js';
import { loadStoreSettings } from '../config/config.js';
import { defaultDataDir } from '../config/data-dir.js';
import { loadConfigFile } from '../config/file.js';
import { wholeNumber } from '../config/numbers.js';
import { closest } from '../config/suggest.js';
import { ConfigError } from '../errors.js';
import { callAmount } from '../money.js';
import type { ApprovalResult } from '../operations/approvals.js';
import { MAX_PAGE } from '../operations/queue.js';
import { cliChangeActor } from './actor.js';
import { failure, out, outJson, table, warn } from './output.js';

export interface EventsOptions {
  dataDir?: string;
  json?: boolean;
  store?: string;
  redisPrefix?: string;
  /**
   * The config file the server runs with, for the commands that need what it sets: `list` (the
   * catalog its `events` make, whose types `--type` names) and `approve` (its `dispatch`, where the
   * approved call goes).
   */
  config?: string;
}

/**
 * The services on the store a server writes to (never a new one: the commands read what a server
 * wrote). SQLite in WAL mode lets this run beside a live server; with `--store redis` it connects
 * to REDIS_URL under the deployment's key prefix. The stored policy applies, as everywhere. With
 * `--config`, the catalog and the sink are the ones the server builds from the same file.
 */
async function withServices<T>(
  options: EventsOptions,
  fn: (services: Services) => Promise<T>,
  env = process.env,
): Promise<T> {
  const file = options.config === undefined ? undefined : loadConfigFile(options.config);
  const services = await composeServices({
    ...loadStoreSettings(options, env),
    dataDir: options.dataDir ?? env.STRIPE_EVENTS_DATA_DIR ?? defaultDataDir(env),
    ifMissing: 'fail',
    catalogOverrides: file?.events,
    dispatch: file?.dispatch,
    // A `module` handler's path is relative to the file, as for `serve`.
    configDir:
      options.config === undefined ? undefined : path.dirname(path.resolve(options.config)),
    configFile: options.config,
  });
  try {
    return await fn(services);
  } finally {
    await services.close();
  }
}

export interface ListOptions extends EventsOptions {
  status?: string;
  /** Comma-separated outcomes (buffer.ts EVENT_OUTCOMES). */
  outcome?: string;
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
  const outcomes = options.outcome === undefined ? undefined : parseOutcomes(options.outcome);
  const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : Number(options.limit);
  if (!(limit >= 1)) throw new ConfigError('--limit', 'must be a number of at least 1.');
  await withServices(options, async ({ operations, catalog }) => {
    // Checked like --status: a mistyped type would otherwise list nothing, which reads as "no such
    // events" rather than "no such type". The catalog is the one --config makes, as the server's.
    checkTypes(options.type ?? [], catalog.types());
    const summaries = [];
    let cursor: string | null = null;
    do {
      const page = await operations.list({
        statuses,
        types: options.type,
        outcomes,
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
    const rows = summaries.map((s) => [
      s.id,
      s.type,
      s.status,
      // How it ended: `approved` and `rejected` both read `acked` above.
      s.outcome ?? '-',
      String(s.attempts),
      createdText(s.created),
      s.tool_call?.name ?? '-',
      // The amount in its currency (`$4,120.00`, `¥50,000`); `--json` keeps the integer and the
      // code as Stripe sent them.
      callAmount(s.tool_call?.input) ?? '-',
    ]);
    // Attempts and amounts right-aligned, so their digits line up.
    out(terminalSafe(table(LIST_HEADER, rows, new Set([4, 7]))));
  });
}

const LIST_HEADER = [
  'ID',
  'TYPE',
  'STATUS',
  'OUTCOME',
  'ATTEMPTS',
  'CREATED',
  'TOOL',
  'AMOUNT',
] as const;

/** `--outcome a,b`: each must be one of EVENT_OUTCOMES, else exit 2 naming the closest. */
function parseOutcomes(text: string): EventOutcome[] {
  const wanted = text.split(',').map((s) => s.trim());
  const bad = wanted.find((s) => !isEventOutcome(s));
  if (bad !== undefined) {
    const close = closest(bad, EVENT_OUTCOMES);
    const meant = close.length > 0 ? ` Did you mean ${close.join(' or ')}?` : '';
    throw new ConfigError(
      '--outcome',
      `${JSON.stringify(bad)} is not an outcome.${meant} Fix: use ${EVENT_OUTCOMES.join(', ')}.`,
    );
  }
  return wanted as EventOutcome[];
}

/** Every `--type` must be a type of the active catalog: exit 2 naming the closest and the rest. */
function checkTypes(wanted: readonly string[], known: readonly string[]): void {
  const bad = wanted.find((t) => !known.includes(t));
  if (bad === undefined) return;
  const close = closest(bad, known);
  const meant = close.length > 0 ? ` Did you mean ${close.join(' or ')}?` : '';
  throw new ConfigError(
    '--type',
    `${JSON.stringify(bad)} is not a type of the catalog.${meant} Fix: use ${known.length > 0 ? known.join(', ') : 'none: the --config file removes every type'} (a --config file's "events" adds types).`,
  );
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
  if (shown.outcome !== null) lines.push(`outcome    ${shown.outcome}`);
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
  await withServices(options, async ({ operations, store }) => {
    const by = await cliChangeActor(store.people);
    const event = await operations.ack(id, {
      by,
      note: options.note ?? 'acked from the command line',
    });
    if (options.json) outJson({ id, status: event.status });
    else out(`${id} acked`);
  });
}

export async function eventsReplay(id: string, options: EventsOptions): Promise<void> {
  await withServices(options, async ({ operations, store }) => {
    const by = await cliChangeActor(store.people);
    const { event } = await operations.replay(id, {
      by,
      note: 'replayed from the command line',
    });
    if (options.json) outJson({ id, status: event.status });
    else out(`${id} is pending again`);
  });
}

/** The most a reason may say: the same bound as the MCP tools'. */
const MAX_REASON = 2000;

/** `--reason` as the MCP tools take it: not empty, at most MAX_REASON characters. */
function reasonOf(reason: string | undefined): string {
  const text = reason?.trim() ?? '';
  if (text === '') throw new ConfigError('--reason', 'is empty. Fix: say why, e.g. --reason "…".');
  if (text.length > MAX_REASON) {
    throw new ConfigError('--reason', `is over ${MAX_REASON} characters. Fix: say it shorter.`);
  }
  return text;
}

/** Which call, for how much: `handle_dispute accept $4,120.00`. */
function callText(call: ApprovalResult['tool_call']): string {
  if (call === null) return 'no call was decided: a person was asked to look';
  const action = call.input.action;
  const amount = callAmount(call.input);
  return [call.name, typeof action === 'string' ? action : null, amount]
    .filter((part) => part !== null)
    .join(' ');
}

export async function eventsApprove(id: string, options: EventsOptions): Promise<void> {
  await withServices(options, async ({ operations, sink, store }) => {
    const by = await cliChangeActor(store.people);
    // The same operation as approve_action and the console's Approve: one guarded transition, then
    // the decided call, exactly as decided, to this process's sink (--config's `dispatch`).
    const result = await operations.approve(id, { by });
    if (options.json) outJson({ ...result, amount_display: callAmount(result.tool_call?.input) });
    if (result.status !== 'acked') {
      // The handler failed: the call waits for approval again. Not done, so exit 1, on stderr
      // like every other failure.
      process.exitCode = 1;
      failure(
        terminalSafe(oneLine(`${id} approved, but ${result.outcome}; it still waits for approval`)),
      );
      return;
    }
    if (!options.json) {
      out(terminalSafe(`${id} approved: ${result.outcome} (${callText(result.tool_call)}); acked`));
    }
    if (result.tool_call !== null && sink.kind === 'record' && options.config === undefined) {
      // Without --config this process has no handler to send the call to: say so, or "approved"
      // would read as carried out.
      warn(
        'no --config: the approved call is recorded in the history only, sent to no handler. Pass the --config the server runs with to dispatch approved calls.',
      );
    }
  });
}

export interface DecideOptions extends EventsOptions {
  action: string;
  /** `field=value`, repeated: the decision's other fields (rationale, customer_message, …). */
  set?: string[];
}

/** The most `--set` fields one decision takes (a tool's decision has a handful). */
const MAX_SET = 20;

/** `--set rationale=…` pairs as fields; the value is everything after the first `=`. */
export function setFields(pairs: readonly string[]): Record<string, string> {
  if (pairs.length > MAX_SET) {
    throw new ConfigError('--set', `is given ${pairs.length} times. Fix: at most ${MAX_SET}.`);
  }
  const fields: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    const name = at < 0 ? '' : pair.slice(0, at).trim();
    if (!name) {
      throw new ConfigError(
        '--set',
        `${JSON.stringify(pair)} is not field=value. Fix: e.g. --set rationale="Signed receipt on file".`,
      );
    }
    if (Object.hasOwn(fields, name)) {
      throw new ConfigError('--set', `sets ${name} twice. Fix: give each field once.`);
    }
    fields[name] = pair.slice(at + 1);
  }
  return fields;
}

/**
 * A person's decision for an event the agent handed to a person: the action and its fields,
 * checked by the tool's decision schema (the same operation as MCP decide_event and the
 * console's form), dispatched to --config's handler like an approved call.
 */
export async function eventsDecide(id: string, options: DecideOptions): Promise<void> {
  const fields = setFields(options.set ?? []);
  await withServices(options, async ({ operations, sink, store }) => {
    const by = await cliChangeActor(store.people);
    const result = await operations.decide(id, { by, action: options.action, fields });
    if (options.json) outJson({ ...result, amount_display: callAmount(result.tool_call?.input) });
    if (result.status !== 'acked') {
      process.exitCode = 1;
      failure(
        terminalSafe(oneLine(`${id} decided, but ${result.outcome}; your call waits for approval`)),
      );
      return;
    }
    if (!options.json) {
      out(terminalSafe(`${id} decided: ${result.outcome} (${callText(result.tool_call)}); acked`));
    }
    if (sink.kind === 'record' && options.config === undefined) {
      warn(
        'no --config: the decided call is recorded in the history only, sent to no handler. Pass the --config the server runs with to dispatch it.',
      );
    }
  });
}

/** Done by hand: acked with a note saying what, nothing dispatched. */
export async function eventsHandled(
  id: string,
  options: EventsOptions & { note?: string },
): Promise<void> {
  const note = options.note?.trim() ?? '';
  if (note === '') {
    throw new ConfigError(
      '--note',
      'is empty. Fix: say what was done, e.g. --note "refunded by phone".',
    );
  }
  await withServices(options, async ({ operations, store }) => {
    const by = await cliChangeActor(store.people);
    const event = await operations.markHandled(id, { by, note });
    if (options.json) outJson({ id, status: event.status });
    else out(terminalSafe(`${id} handled by hand: ${oneLine(note)}; acked, nothing dispatched`));
  });
}

export interface ReasonOptions extends EventsOptions {
  reason?: string;
}

export interface NackOptions extends ReasonOptions {
  retryIn?: string;
}

export async function eventsReject(id: string, options: ReasonOptions): Promise<void> {
  const reason = reasonOf(options.reason);
  await withServices(options, async ({ operations, store }) => {
    const by = await cliChangeActor(store.people);
    const result = await operations.reject(id, { by, reason });
    if (options.json) outJson(result);
    else out(terminalSafe(`${id} rejected: ${oneLine(reason)}; acked`));
  });
}

/** The longest --retry-in: a week, as nack_event allows. */
const MAX_RETRY_IN_SECONDS = 7 * 24 * 3600;

export async function eventsNack(id: string, options: NackOptions): Promise<void> {
  const reason = reasonOf(options.reason);
  let retryInMs = 0;
  if (options.retryIn !== undefined) {
    const parsed = wholeNumber(0, MAX_RETRY_IN_SECONDS).safeParse(options.retryIn);
    if (!parsed.success) {
      throw new ConfigError(
        '--retry-in',
        `${JSON.stringify(options.retryIn)} is not valid (${parsed.error.issues[0]?.message ?? 'invalid value'}). Fix: give whole seconds from 0 to ${MAX_RETRY_IN_SECONDS}, e.g. --retry-in 600.`,
      );
    }
    retryInMs = parsed.data * 1000;
  }
  await withServices(options, async ({ operations, store }) => {
    const by = await cliChangeActor(store.people);
    // Refused for a held call (HeldForApprovalError, pointing at `events reject`) and a claimed
    // one (BeingHandledError), as from MCP.
    const event = await operations.nack(id, { by, reason, retryInMs });
    const retryAt = event.retryAt === null ? null : new Date(event.retryAt).toISOString();
    if (options.json) {
      outJson({ id, status: event.status, attempts: event.attempts, retry_at: retryAt });
    } else if (event.status === 'dead') {
      out(
        `${id} nacked: dead after ${event.attempts} attempts; \`events replay ${id}\` once the cause is fixed`,
      );
    } else {
      out(
        `${id} nacked: ${event.status}, retry ${retryAt === null ? 'now' : `at ${retryAt}`} (attempts ${event.attempts})`,
      );
    }
  });
}

export async function agentPause(options: EventsOptions & { reason?: string }): Promise<void> {
  await withServices(options, async ({ operations, store }) => {
    const by = await cliChangeActor(store.people);
    const pause = await operations.pauseAgent({ by, reason: options.reason });
    if (options.json) outJson(pause);
    else out('the agent loops on this store are paused: no new claims until `resume`');
  });
}

export async function agentResume(options: EventsOptions): Promise<void> {
  await withServices(options, async ({ operations, store }) => {
    const by = await cliChangeActor(store.people);
    const pause = await operations.resumeAgent({ by });
    if (options.json) outJson(pause);
    else out('the agent loops on this store run again');
  });
}

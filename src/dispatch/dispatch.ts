import crypto from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EventBuffer, EventOutcome, HistoryInput, StoredEvent } from '../buffer/buffer.js';
import type { ToolCall } from '../catalog/catalog.js';
import type { ConfigFile } from '../config/file.js';
import { AppError, LeaseLostError } from '../errors.js';
import { accountOf } from '../stripe/objects.js';

/** What the user's handlers receive for each decided tool call. */
export interface DispatchRequest {
  event_id: string;
  event_type: string;
  tool_call: ToolCall;
  /**
   * Stable across retries of the same event and tool (and connected account): handlers use it to
   * make a retry harmless.
   */
  idempotency_key: string;
  /** The connected account (acct_…) the event came from (Connect); null for your own account. */
  account?: string | null;
  /** The event as received (for the module sink's context). */
  event: unknown;
}

export interface DispatchResult {
  outcome: 'recorded' | 'dispatched';
  note?: string;
}

export interface Sink {
  readonly kind: string;
  dispatch(request: DispatchRequest, signal?: AbortSignal): Promise<DispatchResult>;
}

export class DispatchError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('dispatch_failed', message, options);
  }
}

export function idempotencyKey(
  eventId: string,
  tool: string,
  account: string | null = null,
): string {
  // A connected account's event names its account too (Connect): a handler keying its own
  // effects by this key never mixes two accounts. Without one the key is what it always was.
  const material = account ? `${account}\n${eventId}\n${tool}` : `${eventId}\n${tool}`;
  return 'sem_' + crypto.createHash('sha256').update(material).digest('hex').slice(0, 40);
}

export const SIGNATURE_HEADER = 'Stripe-Events-Signature';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, the scheme Stripe signs webhooks with. */
export function signBody(
  body: string,
  secret: string,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  const v1 = crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

/** The default: the decision lives in the event's history and nowhere else. */
export const recordSink: Sink = {
  kind: 'record',
  async dispatch() {
    return { outcome: 'recorded' };
  },
};

export interface HttpSinkOptions {
  url: string;
  secret: string;
  attempts?: number;
  timeoutMs?: number;
  /** Backoff before retry n (1-based), ms. */
  backoffMs?: (n: number) => number;
}

function retryable(status: number): boolean {
  return status === 408 || status === 409 || status === 425 || status === 429 || status >= 500;
}

export function httpSink(options: HttpSinkOptions): Sink {
  const attempts = options.attempts ?? 3;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const backoff = options.backoffMs ?? ((n: number) => 250 * 2 ** (n - 1) * (0.5 + Math.random()));
  return {
    kind: 'http',
    async dispatch(request, signal) {
      const body = JSON.stringify({
        event_id: request.event_id,
        event_type: request.event_type,
        tool_call: request.tool_call,
        idempotency_key: request.idempotency_key,
        ...(request.account ? { account: request.account } : {}),
      });
      let last = '';
      for (let n = 1; n <= attempts; n++) {
        try {
          const res = await fetch(options.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'idempotency-key': request.idempotency_key,
              [SIGNATURE_HEADER]: signBody(body, options.secret),
            },
            body,
            // Never follow: a 307/308 would re-post the signed body (and its signature) to
            // whatever URL the Location names. A redirect is a failed dispatch that says where.
            redirect: 'manual',
            signal: signal
              ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
              : AbortSignal.timeout(timeoutMs),
          });
          await res.body?.cancel();
          if (res.ok) return { outcome: 'dispatched', note: `HTTP ${res.status}` };
          if (res.status >= 300 && res.status < 400) {
            last = redirectMessage(res);
            break;
          }
          last = `HTTP ${res.status}`;
          if (!retryable(res.status)) break;
        } catch (error) {
          if (signal?.aborted) throw error;
          last = (error as Error).message;
        }
        if (n < attempts) await new Promise((r) => setTimeout(r, backoff(n)));
      }
      throw new DispatchError(`the http handler at ${new URL(options.url).origin} failed: ${last}`);
    },
  };
}

/** Longest Location shown in a failed dispatch's message (it ends up in the event's history). */
const MAX_LOCATION_CHARS = 200;

function redirectMessage(res: Response): string {
  const location = res.headers.get('location');
  const shown =
    location === null
      ? 'no Location'
      : `Location ${JSON.stringify(location.slice(0, MAX_LOCATION_CHARS))}${location.length > MAX_LOCATION_CHARS ? '…' : ''}`;
  return `HTTP ${res.status} redirect (${shown}), not followed: point dispatch.url at the final URL`;
}

type Handler = (
  input: Record<string, unknown>,
  context: { event: unknown; idempotency_key: string },
) => unknown;

/** Imports a handler module (Node caches it: moduleSink and moduleHandlerNames share one load). */
async function loadHandlerModule(
  modulePath: string,
  baseDir: string,
): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path.resolve(baseDir, modulePath)).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new DispatchError(
      `cannot load the handler module ${modulePath}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** An ES module exporting one function per tool name (or a default export object of them). */
export async function moduleSink(modulePath: string, baseDir = process.cwd()): Promise<Sink> {
  const mod = await loadHandlerModule(modulePath, baseDir);
  // Own properties only: a default-export object inherits toString, constructor, … from
  // Object.prototype, and a tool named like one must not "dispatch" to it.
  const ownFunction = (holder: unknown, name: string): Handler | undefined => {
    if (holder === null || (typeof holder !== 'object' && typeof holder !== 'function')) {
      return undefined;
    }
    if (!Object.hasOwn(holder, name)) return undefined;
    const value = (holder as Record<string, unknown>)[name];
    return typeof value === 'function' ? (value as Handler) : undefined;
  };
  const lookup = (name: string): Handler | undefined =>
    ownFunction(mod, name) ?? ownFunction(mod.default, name);
  return {
    kind: 'module',
    async dispatch(request) {
      const handler = lookup(request.tool_call.name);
      if (!handler) {
        throw new DispatchError(
          `the handler module ${modulePath} exports no function named ${request.tool_call.name}`,
        );
      }
      try {
        await handler(request.tool_call.input, {
          event: request.event,
          idempotency_key: request.idempotency_key,
        });
      } catch (error) {
        throw new DispatchError(
          `handler ${request.tool_call.name} threw: ${(error as Error).message}`,
          { cause: error },
        );
      }
      return { outcome: 'dispatched', note: `module ${request.tool_call.name}` };
    },
  };
}

/**
 * The names moduleSink could dispatch to in a handler module, by its rules: the module's own
 * exported functions and the own function properties of its default export (not `default`
 * itself: an object or class of handlers is a holder, not a handler). So the composition can
 * refuse an export named after no tool (most likely a typo of the tool it was meant for). The
 * import is answered from Node's module cache: the instance moduleSink loaded, not a second
 * evaluation.
 */
export async function moduleHandlerNames(
  modulePath: string,
  baseDir = process.cwd(),
): Promise<string[]> {
  const mod = await loadHandlerModule(modulePath, baseDir);
  const functionsOf = (holder: unknown): string[] => {
    if (holder === null || (typeof holder !== 'object' && typeof holder !== 'function')) return [];
    return Object.getOwnPropertyNames(holder).filter((name) => {
      try {
        return typeof (holder as Record<string, unknown>)[name] === 'function';
      } catch {
        // A throwing getter is no handler moduleSink could call either.
        return false;
      }
    });
  };
  const named = functionsOf(mod).filter((name) => name !== 'default');
  return [...new Set([...named, ...functionsOf(mod.default)])];
}

export async function createSink(
  config: NonNullable<ConfigFile['dispatch']>,
  baseDir?: string,
): Promise<Sink> {
  switch (config.type) {
    case 'record':
      return recordSink;
    case 'http':
      return httpSink({ url: config.url, secret: config.secret });
    case 'module':
      return moduleSink(config.path, baseDir);
  }
}

export interface DispatchAckOptions {
  signal?: AbortSignal;
  /** The ack's note. */
  note?: string;
  /** Entries recorded in the ack's commit (the decision). */
  record?: readonly HistoryInput[];
  /** How the event ended, stored with the ack (default `dispatched`: the agent's own call). */
  outcome?: EventOutcome;
  /** Called once the handler has the call, before the ack is written. */
  dispatched?: () => void;
}

/**
 * Dispatches a decided call and acknowledges the event once the handler has it, as the holder of
 * the claim `token`. When the claim was lost while the handler ran (a person acked the event, the
 * lease expired and another worker took it), the ack is refused: the dispatch is still recorded in
 * the history, and LeaseLostError goes to the caller.
 */
export async function dispatchAndAck(
  buffer: EventBuffer,
  sink: Sink,
  event: StoredEvent,
  call: ToolCall,
  token: string,
  options: DispatchAckOptions = {},
): Promise<void> {
  const account = accountOf(event.payload);
  const result = await sink.dispatch(
    {
      event_id: event.id,
      event_type: event.type,
      tool_call: call,
      idempotency_key: idempotencyKey(event.id, call.name, account),
      account,
      // Parsed only for a sink that reads it (the module sink does; record and http do not).
      get event(): unknown {
        return JSON.parse(event.payload) as unknown;
      },
    },
    options.signal,
  );
  options.dispatched?.();
  const dispatched: HistoryInput = {
    kind: 'dispatch',
    tool_call: call,
    outcome: result.outcome,
    note: result.note,
  };
  try {
    await buffer.ack(event.id, {
      token,
      note: options.note ?? 'dispatched',
      outcome: options.outcome ?? 'dispatched',
      record: [...(options.record ?? []), dispatched],
    });
  } catch (error) {
    if (error instanceof LeaseLostError) {
      await buffer
        .addHistory(event.id, {
          ...dispatched,
          note: `${result.note ?? result.outcome}; the claim was lost while the handler ran`,
        })
        .catch(() => {});
    }
    throw error;
  }
}

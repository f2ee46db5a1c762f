import crypto from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  McpError,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { EventBuffer } from '../../buffer/buffer.js';
import type { WebhookSubscription } from '../../buffer/subscriptions.js';
import type { Catalog } from '../../catalog/catalog.js';
import type { RedactKind } from '../../catalog/untrusted.js';
import type { Logger } from '../../logger.js';
import { NO_ALLOWANCE, type AddressAllowance } from './address.js';
import { CallbackUrlError, checkCallbackUrl, postCallback } from './callback.js';
import { BadEventsCursorError, decodeEventsCursor, encodeEventsCursor } from './cursor.js';
import { headPosition, readAfter, startPosition, WAKES, type Reader } from './read.js';
import { secretKey, signedHeaders } from './signature.js';
import {
  EventArgumentsError,
  eventTypes,
  parseFilters,
  typesOf,
  type EventFilters,
} from './types.js';
import type { WebhookDeliverer } from './webhook.js';

/**
 * The MCP Events extension's methods (io.modelcontextprotocol/events, docs/MCP.md "Events"):
 * `events/list`, `events/poll`, `events/stream`, `events/subscribe`, `events/unsubscribe`,
 * registered on each session's server as custom request handlers (the SDK has no support yet).
 */

export const EVENTS_EXTENSION = 'io.modelcontextprotocol/events';

/** The extension's error codes. */
export const EVENTS_ERRORS = {
  invalidParams: -32602,
  notFound: -32011,
  forbidden: -32012,
  exhausted: -32013,
  unsupported: -32014,
  callback: -32015,
} as const;

export const DEFAULT_TTL_MS = 60 * 60_000;
/** The shortest TTL granted: a shorter suggestion is clamped up (no refresh storms). */
export const MIN_TTL_MS = 1_000;
/** The longest: cursors older than the store's 7-day retention could not resume anyway. */
export const MAX_TTL_MS = 7 * 24 * 60 * 60_000;
export const DEFAULT_MAX_SUBSCRIPTIONS = 50;
export const POLL_DEFAULT_EVENTS = 50;
export const POLL_MAX_EVENTS = 200;
export const NEXT_POLL_MS = 5_000;
export const HEARTBEAT_MS = 25_000;
/** Push streams open at once per session: each holds a request open. */
export const MAX_STREAMS_PER_SESSION = 16;

export interface EventsOptions {
  allow: AddressAllowance;
  maxSubscriptionsPerPrincipal: number;
  /** The process's webhook deliverer, told when a subscription is made. */
  deliverer?: WebhookDeliverer;
}

export const DEFAULT_EVENTS_OPTIONS: EventsOptions = {
  allow: NO_ALLOWANCE,
  maxSubscriptionsPerPrincipal: DEFAULT_MAX_SUBSCRIPTIONS,
};

export interface EventsContext {
  buffer: EventBuffer;
  catalog: Catalog;
  redact: readonly RedactKind[];
  logger: Logger;
  events?: EventsOptions;
  /**
   * The session's named principal (e.g. `person:<name>` once tokens name people, issue #20):
   * when set it owns the session's subscriptions instead of the token digest.
   */
  principal?: string;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * Who owns a webhook subscription: the bearer token's identity (a digest, never the token), or
 * `loopback` for a tokenless HTTP client (only possible on a loopback bind), or `local` over
 * stdio. The one place the principal is named: when tokens name people (issue #20), this returns
 * the person instead.
 */
export function principalOf(extra: Extra, named?: string): string {
  if (named) return named;
  const header = extra.requestInfo?.headers?.authorization;
  const value = Array.isArray(header) ? header[0] : header;
  const token = typeof value === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(value)?.[1] : undefined;
  if (token) return `token:${crypto.createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
  return extra.requestInfo ? 'loopback' : 'local';
}

/** Stable over (principal, url, name, arguments), as the extension asks. */
export function subscriptionId(principal: string, url: string, name: string, args: string): string {
  const digest = crypto
    .createHash('sha256')
    .update(JSON.stringify([principal, url, name, args]))
    .digest('hex');
  return `sub_${digest.slice(0, 24)}`;
}

function invalid(message: string): McpError {
  return new McpError(EVENTS_ERRORS.invalidParams, message);
}

const Args = z.record(z.string(), z.unknown()).nullish();
const Cursor = z.string().max(200).nullish();
const Meta = { _meta: z.record(z.string(), z.unknown()).optional() };

const ListRequest = z.object({
  method: z.literal('events/list'),
  params: z
    .object({ cursor: z.string().optional(), ...Meta })
    .passthrough()
    .optional(),
});
/** What a poll and a stream both name: the type, its arguments, where to start, how far back. */
const ReadParams = {
  name: z.string(),
  arguments: Args,
  cursor: Cursor,
  maxAgeMs: z.number().int().nonnegative().optional(),
  ...Meta,
};
const PollRequest = z.object({
  method: z.literal('events/poll'),
  params: z
    .object({ ...ReadParams, maxEvents: z.number().int().positive().optional() })
    .passthrough(),
});
const StreamRequest = z.object({
  method: z.literal('events/stream'),
  params: z.object(ReadParams).passthrough(),
});
const SubscribeRequest = z.object({
  method: z.literal('events/subscribe'),
  params: z
    .object({
      name: z.string(),
      arguments: Args,
      delivery: z.object({
        mode: z.string(),
        url: z.string().max(2048),
        secret: z.string().max(200),
      }),
      cursor: Cursor,
      ttlMs: z.number().int().nullish(),
      maxAgeMs: z.number().int().nonnegative().optional(),
      ...Meta,
    })
    .passthrough(),
});
const UnsubscribeRequest = z.object({
  method: z.literal('events/unsubscribe'),
  params: z
    .object({
      name: z.string(),
      arguments: Args,
      delivery: z.object({ url: z.string().max(2048) }).passthrough(),
      ...Meta,
    })
    .passthrough(),
});

/** The event type and its checked arguments, or the extension's error. */
function resolve(ctx: EventsContext, name: string, args: unknown): EventFilters {
  let filters: EventFilters;
  try {
    filters = parseFilters(args, ctx.catalog);
  } catch (error) {
    if (error instanceof EventArgumentsError) throw invalid(error.message);
    throw error;
  }
  if (typesOf(name, filters, ctx.catalog) === null) {
    throw new McpError(EVENTS_ERRORS.notFound, `Unknown event type ${JSON.stringify(name)}`, {
      kind: 'event',
    });
  }
  return filters;
}

function asCursorError(error: unknown): never {
  if (error instanceof BadEventsCursorError) throw invalid(error.message);
  throw error;
}

export function registerEvents(server: McpServer, ctx: EventsContext): () => void {
  const options = ctx.events ?? DEFAULT_EVENTS_OPTIONS;
  const reader: Reader = {
    buffer: ctx.buffer,
    catalog: ctx.catalog,
    redact: ctx.redact,
    now: Date.now,
  };
  const streams = new Set<AbortController>();
  const s = server.server;

  // Webhook delivery is offered only where a deliverer runs (serve); stdio offers poll and push.
  const webhook = options.deliverer !== undefined;
  s.setRequestHandler(ListRequest, async () => ({ events: eventTypes(ctx.catalog, webhook) }));

  s.setRequestHandler(PollRequest, async (request) => {
    const p = request.params;
    const filters = resolve(ctx, p.name, p.arguments);
    const maxEvents = Math.min(p.maxEvents ?? POLL_DEFAULT_EVENTS, POLL_MAX_EVENTS);
    if (p.cursor == null) {
      const head = encodeEventsCursor(await headPosition(reader, p.name));
      return {
        events: [],
        cursor: head,
        truncated: false,
        hasMore: false,
        nextPollMs: NEXT_POLL_MS,
      };
    }
    const start = await startPosition(reader, p.cursor, p.name).catch(asCursorError);
    const read = await readAfter(
      reader,
      { name: p.name, filters, maxAgeMs: p.maxAgeMs, maxEvents },
      start.position,
      false,
    );
    return {
      // Poll carries the cursor on the result (the extension's shape), not on each occurrence.
      events: read.events.map(({ cursor: _cursor, ...occurrence }) => occurrence),
      cursor: read.cursor,
      truncated: start.truncated || read.truncated,
      hasMore: read.hasMore,
      nextPollMs: NEXT_POLL_MS,
    };
  });

  s.setRequestHandler(StreamRequest, async (request, extra) => {
    const p = request.params;
    const filters = resolve(ctx, p.name, p.arguments);
    if (streams.size >= MAX_STREAMS_PER_SESSION) {
      throw new McpError(EVENTS_ERRORS.exhausted, 'Too many open event streams in this session', {
        limit: 'streams',
        max: MAX_STREAMS_PER_SESSION,
      });
    }
    const start =
      p.cursor == null
        ? { position: await headPosition(reader, p.name), truncated: false }
        : await startPosition(reader, p.cursor, p.name).catch(asCursorError);
    // Every frame names its stream (the request's id), so a client can route several streams.
    const meta = { 'io.modelcontextprotocol/subscriptionId': extra.requestId };
    const stop = new AbortController();
    streams.add(stop);
    const onAbort = () => stop.abort();
    extra.signal.addEventListener('abort', onAbort);
    let position = start.position;
    let wake: (() => void) | null = null;
    const unwatch = ctx.buffer.watch((change) => {
      // New events, and the queue's happenings (holds, deaths, pauses) for the queue types.
      if (WAKES.has(change.kind)) wake?.();
    });
    const notify = (method: string, params: Record<string, unknown>) =>
      extra.sendNotification({ method, params: { ...params, _meta: meta } } as ServerNotification);
    try {
      await notify('notifications/events/active', {
        cursor: encodeEventsCursor(position),
        truncated: start.truncated,
      });
      let lastSent = Date.now();
      while (!stop.signal.aborted) {
        const read = await readAfter(
          reader,
          { name: p.name, filters, maxAgeMs: p.maxAgeMs, maxEvents: 50 },
          position,
          true,
        );
        for (const occurrence of read.events)
          await notify('notifications/events/event', { ...occurrence });
        if (read.events.length > 0) lastSent = Date.now();
        position = decodeEventsCursor(read.cursor);
        if (read.hasMore) continue;
        if (Date.now() - lastSent >= HEARTBEAT_MS) {
          await notify('notifications/events/heartbeat', { cursor: read.cursor });
          lastSent = Date.now();
        }
        await new Promise<void>((resolveWait) => {
          const timer = setTimeout(done, HEARTBEAT_MS);
          function done() {
            clearTimeout(timer);
            wake = null;
            stop.signal.removeEventListener('abort', done);
            resolveWait();
          }
          wake = done;
          stop.signal.addEventListener('abort', done);
        });
      }
    } catch (error) {
      // The client went away mid-send: the stream ends with it.
      if (!stop.signal.aborted) throw error;
    } finally {
      unwatch();
      streams.delete(stop);
      extra.signal.removeEventListener('abort', onAbort);
    }
    return { _meta: {} };
  });

  s.setRequestHandler(SubscribeRequest, async (request, extra) => {
    const p = request.params;
    const principal = principalOf(extra, ctx.principal);
    const filters = resolve(ctx, p.name, p.arguments);
    if (p.delivery.mode !== 'webhook' || !webhook) {
      throw new McpError(
        EVENTS_ERRORS.unsupported,
        webhook
          ? 'events/subscribe is for webhook delivery (mode "webhook")'
          : 'webhook delivery runs in `serve`; this process offers poll and push',
        { feature: 'deliveryMode', value: p.delivery.mode },
      );
    }
    if (!secretKey(p.delivery.secret)) {
      throw invalid('delivery.secret must be whsec_ followed by base64 of 24–64 random bytes');
    }
    let url: URL;
    try {
      url = checkCallbackUrl(p.delivery.url, options.allow);
    } catch (error) {
      if (error instanceof CallbackUrlError) throw invalid(error.message);
      throw error;
    }
    const args = JSON.stringify(filters);
    const id = subscriptionId(principal, p.delivery.url, p.name, args);
    const now = Date.now();
    const ttl =
      p.ttlMs === undefined || p.ttlMs === null
        ? p.ttlMs === null
          ? MAX_TTL_MS
          : DEFAULT_TTL_MS
        : Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, p.ttlMs));
    const refreshBefore = now + ttl;
    const store = ctx.buffer.subscriptions;
    const existing = await store.get(id);
    if (
      existing &&
      existing.principal === principal &&
      (existing.refreshBefore ?? Infinity) > now
    ) {
      // A refresh: new TTL and secret; the delivery position stays where delivery is.
      await store.patch(id, { secret: p.delivery.secret, refreshBefore, nextAttemptAt: now });
      options.deliverer?.kick();
      return {
        id,
        refreshBefore: new Date(refreshBefore).toISOString(),
        cursor: existing.cursor,
        truncated: false,
        deliveryStatus: {
          active: true,
          lastDeliveryAt:
            existing.lastDeliveryAt === null
              ? null
              : new Date(existing.lastDeliveryAt).toISOString(),
          lastError: existing.lastError,
        },
      };
    }
    if ((await store.countByPrincipal(principal)) >= options.maxSubscriptionsPerPrincipal) {
      throw new McpError(
        EVENTS_ERRORS.exhausted,
        'Too many webhook subscriptions for this principal',
        {
          limit: 'subscriptions',
          max: options.maxSubscriptionsPerPrincipal,
        },
      );
    }
    await verifyEndpoint(url, id, p.delivery.secret, options.allow);
    const start =
      p.cursor == null
        ? { position: await headPosition(reader, p.name), truncated: false }
        : await startPosition(reader, p.cursor, p.name).catch(asCursorError);
    const sub: WebhookSubscription = {
      id,
      principal,
      name: p.name,
      arguments: args,
      url: p.delivery.url,
      secret: p.delivery.secret,
      cursor: encodeEventsCursor(start.position),
      refreshBefore,
      failures: 0,
      nextAttemptAt: now,
      lastError: null,
      lastDeliveryAt: null,
      createdAt: now,
    };
    await store.put(sub);
    ctx.logger.info('mcp events webhook subscription made', { subscription: id, event: p.name });
    options.deliverer?.kick();
    return {
      id,
      refreshBefore: new Date(refreshBefore).toISOString(),
      cursor: sub.cursor,
      truncated: start.truncated,
    };
  });

  s.setRequestHandler(UnsubscribeRequest, async (request, extra) => {
    const p = request.params;
    const principal = principalOf(extra, ctx.principal);
    const filters = resolve(ctx, p.name, p.arguments);
    const id = subscriptionId(principal, p.delivery.url, p.name, JSON.stringify(filters));
    const sub = await ctx.buffer.subscriptions.get(id);
    // Keyed on the principal: another principal's subscription is simply not found.
    if (!sub || sub.principal !== principal || !(await ctx.buffer.subscriptions.remove(id))) {
      throw new McpError(EVENTS_ERRORS.notFound, 'No such subscription', { kind: 'subscription' });
    }
    ctx.logger.info('mcp events webhook subscription removed', { subscription: id });
    return {};
  });

  return () => {
    for (const stream of streams) stream.abort();
  };
}

/**
 * The extension's endpoint verification: before the first delivery, the callback must echo a
 * single-use challenge (signed like a delivery), so nobody can point deliveries at a URL that did
 * not ask for them. Same hardened path as deliveries.
 */
async function verifyEndpoint(
  url: URL,
  id: string,
  secret: string,
  allow: AddressAllowance,
): Promise<void> {
  const challenge = crypto.randomBytes(24).toString('base64url');
  const body = JSON.stringify({ type: 'verification', challenge });
  const webhookId = `msg_verification_${crypto.randomBytes(9).toString('base64url')}`;
  const result = await postCallback(
    url,
    signedHeaders(secret, webhookId, id, body, Date.now()),
    body,
    allow,
  );
  if (!result.ok) {
    throw new McpError(
      EVENTS_ERRORS.callback,
      `The callback failed verification: ${result.detail}`,
      {
        reason: result.reason === 'refused_address' ? 'connection_refused' : result.reason,
      },
    );
  }
  let echoed: unknown;
  try {
    echoed = (JSON.parse(result.body) as { challenge?: unknown }).challenge;
  } catch {
    echoed = undefined;
  }
  const ok =
    typeof echoed === 'string' &&
    echoed.length === challenge.length &&
    crypto.timingSafeEqual(Buffer.from(echoed), Buffer.from(challenge));
  if (!ok) {
    throw new McpError(
      EVENTS_ERRORS.callback,
      'The callback did not echo the verification challenge',
      {
        reason: 'challenge_failed',
      },
    );
  }
}

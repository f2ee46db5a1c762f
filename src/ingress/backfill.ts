import { performance } from 'node:perf_hooks';
import type Stripe from 'stripe';
import type { EventBuffer, IncomingEvent } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import { ConfigError, WebhookRejectedError } from '../errors.js';
import type { ParkedStore } from '../buffer/parked.js';
import { toIncoming } from './webhook.js';
import type { Logger } from '../logger.js';
import { stripeErrorMessage } from '../stripe/client.js';
import type { VerifiedEvent } from '../stripe/verify.js';

/**
 * Backfill: pull events from Stripe's Events API and hand each to the buffer exactly as the
 * webhook does (same catalog check, same `toIncoming`, same `append` and its dedup), so an event
 * received both ways is stored once. Pure over a client, a buffer and a catalog.
 */

/** Stripe keeps events for 30 days; `created[gte]` older than that is clamped. */
export const RETENTION_SECONDS = 30 * 24 * 60 * 60;
/** The Events API takes at most 20 types per request. */
export const MAX_TYPES_PER_REQUEST = 20;
export const PAGE_LIMIT = 100;
/** Without a stored event to start from: the last 24 hours. */
export const DEFAULT_SINCE_SECONDS = 24 * 60 * 60;
/**
 * Starting from the newest stored event, go back this much further: delivery order is not
 * creation order, so an event created a little before the newest stored one may still be missing.
 */
export const RESUME_OVERLAP_SECONDS = 60 * 60;

export type Since =
  { kind: 'created'; gte: number; clamped: boolean } | { kind: 'after_event'; id: string };

export interface BackfillCounts {
  fetched: number;
  queued: number;
  duplicate: number;
  ignored: number;
  /** Time spent in our own code (mapping and buffer append), ms. The rest is the API. */
  ownMs: number;
}

/** The part of stripe-node used here. */
export type EventsClient = Pick<Stripe, 'events'>;

export interface BackfillOptions {
  stripe: EventsClient;
  /** null: a dry run with no store to compare against (everything counts as new). */
  buffer: EventBuffer | null;
  catalog: Catalog;
  since: Since;
  /** Event types asked for; default: every type the catalog maps. */
  types?: readonly string[];
  /** Fetch and count, store nothing. */
  dryRun?: boolean;
  onProgress?: (counts: Readonly<BackfillCounts>) => void;
  /** Thin notifications recorded while there was no key: their snapshot events are fetched too. */
  parked?: ParkedStore;
  /** Rate limits (429) stripe-node did not retry: walk again from the last event, this many times. */
  rateLimitRetries?: number;
  /** First wait after a 429, doubled each time (ms). */
  rateLimitBackoffMs?: number;
  signal?: AbortSignal;
}

export function emptyBackfillCounts(): BackfillCounts {
  return { fetched: 0, queued: 0, duplicate: 0, ignored: 0, ownMs: 0 };
}

/** Splits types into requests of at most 20. */
export function typeChunks(types: readonly string[]): string[][] {
  const unique = [...new Set(types)];
  const chunks: string[][] = [];
  for (let i = 0; i < unique.length; i += MAX_TYPES_PER_REQUEST) {
    chunks.push(unique.slice(i, i + MAX_TYPES_PER_REQUEST));
  }
  return chunks;
}

/** `created[gte]` for a start time (Unix seconds), clamped to Stripe's 30-day retention. */
export function sinceCreated(gte: number, nowMs = Date.now()): Since {
  const oldest = Math.ceil(nowMs / 1000) - RETENTION_SECONDS;
  return gte < oldest
    ? { kind: 'created', gte: oldest, clamped: true }
    : { kind: 'created', gte, clamped: false };
}

const DURATION = /^(\d+)\s*(m|min|h|d)$/i;
const UNIT_SECONDS: Record<string, number> = { m: 60, min: 60, h: 3600, d: 86400 };

/**
 * Parses `--since`: a duration back from now (`30m`, `24h`, `7d`), an ISO date-time
 * (`2026-11-01T00:00Z`), Unix seconds, or an event id (`evt_…`: walk forward from it).
 */
export function parseSince(text: string, nowMs = Date.now()): Since {
  const value = text.trim();
  if (/^evt_[A-Za-z0-9_]+$/.test(value)) return { kind: 'after_event', id: value };
  const nowS = Math.floor(nowMs / 1000);
  let gte: number | null = null;
  const duration = DURATION.exec(value);
  if (duration) {
    gte = nowS - Number(duration[1]) * (UNIT_SECONDS[duration[2]!.toLowerCase()] ?? 0);
  } else if (/^\d{9,11}$/.test(value)) {
    gte = Number(value);
  } else if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) gte = Math.floor(ms / 1000);
  }
  if (gte === null) {
    throw new ConfigError(
      '--since',
      `${JSON.stringify(text)} is not a start. Fix: give a duration (30m, 24h, 7d), an ISO date-time (2026-11-01T00:00Z), Unix seconds (1764547200) or an event id (evt_…).`,
    );
  }
  if (gte > nowS) {
    throw new ConfigError(
      '--since',
      `${JSON.stringify(text)} is in the future. Fix: give a start in the last 30 days.`,
    );
  }
  return sinceCreated(gte, nowMs);
}

/** Where an automatic backfill starts: the newest stored event less an overlap, else 24 h ago. */
export async function resumeSince(buffer: EventBuffer, nowMs = Date.now()): Promise<Since> {
  const newest = await buffer.newestCreated();
  const nowS = Math.floor(nowMs / 1000);
  const gte = newest === null ? nowS - DEFAULT_SINCE_SECONDS : newest - RESUME_OVERLAP_SECONDS;
  return sinceCreated(Math.min(gte, nowS), nowMs);
}

function isRateLimit(error: unknown): boolean {
  const e = error as { type?: unknown; statusCode?: unknown };
  return e?.type === 'StripeRateLimitError' || e?.statusCode === 429;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Walks `stripe.events.list` (auto-pagination, 100 per page, at most 20 types per request) and
 * appends every catalog-mapped event. Newest first for `created[gte]`; oldest first from an event
 * id (`ending_before`). Resolves with the counts; rejects with stripe-node's error for an API
 * failure (after its retries, and after walking again on a rate limit).
 */
export async function backfill(options: BackfillOptions): Promise<BackfillCounts> {
  const { stripe, buffer, catalog, since, signal } = options;
  const counts = emptyBackfillCounts();
  const types = options.types && options.types.length > 0 ? options.types : catalog.types();
  const maxRateLimitRetries = options.rateLimitRetries ?? 5;
  const backoffMs = options.rateLimitBackoffMs ?? 1000;

  const handle = async (event: Stripe.Event): Promise<void> => {
    if (!catalog.lookup(event.type)) {
      counts.ignored++;
    } else if (options.dryRun || !buffer) {
      if (buffer && (await buffer.get(event.id))) counts.duplicate++;
      else counts.queued++;
    } else {
      let incoming: IncomingEvent | null = null;
      try {
        incoming = toIncoming(event as unknown as VerifiedEvent, JSON.stringify(event));
      } catch (error) {
        // An envelope no event may be stored with (stripe/envelope.ts): skipped, not fatal.
        if (!(error instanceof WebhookRejectedError)) throw error;
      }
      if (incoming) counts[(await buffer.append(incoming)).status]++;
      else counts.ignored++;
    }
    counts.fetched++;
    options.onProgress?.(counts);
  };

  // Recorded thin notifications first: their snapshot events may be older than this walk reaches.
  if (options.parked && buffer && !options.dryRun) {
    const parked = await options.parked.list();
    const done: string[] = [];
    for (const entry of parked) {
      if (signal?.aborted) break;
      try {
        const event = await stripe.events.retrieve(entry.snapshot_event);
        const started = performance.now();
        await handle(event);
        counts.ownMs += performance.now() - started;
        done.push(entry.snapshot_event);
      } catch (error) {
        // Gone (past Stripe's 30 days): nothing left to fetch. Anything else: next time.
        if ((error as { statusCode?: number }).statusCode === 404) done.push(entry.snapshot_event);
        else if (!isRateLimit(error)) throw error;
      }
    }
    await options.parked.remove(done);
  }

  for (const chunk of typeChunks(types)) {
    // The last event handled: a walk cut short by a rate limit starts again after it.
    let cursor: string | null = null;
    let rateLimited = 0;
    // A page's events are appended together, so the store commits them in one group (one
    // fsync) instead of one commit per event; in the order the walk returned them.
    let batch: Stripe.Event[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const events = batch;
      batch = [];
      const started = performance.now();
      await Promise.all(events.map(handle));
      counts.ownMs += performance.now() - started;
      cursor = events[events.length - 1]!.id;
    };
    for (;;) {
      const params: Stripe.EventListParams = { types: chunk, limit: PAGE_LIMIT };
      if (since.kind === 'created') {
        params.created = { gte: since.gte };
        if (cursor) params.starting_after = cursor;
      } else {
        params.ending_before = cursor ?? since.id;
      }
      try {
        for await (const event of stripe.events.list(params)) {
          if (signal?.aborted) break;
          batch.push(event);
          if (batch.length >= PAGE_LIMIT) await flush();
        }
        await flush();
        if (signal?.aborted) return counts;
        break;
      } catch (error) {
        await flush();
        if (isRateLimit(error) && rateLimited < maxRateLimitRetries && !signal?.aborted) {
          await sleep(backoffMs * 2 ** rateLimited, signal);
          rateLimited++;
          continue;
        }
        throw error;
      }
    }
  }
  return counts;
}

export interface PeriodicBackfillOptions {
  stripe: EventsClient;
  buffer: EventBuffer;
  catalog: Catalog;
  logger: Logger;
  /** Removed from any error message before it is logged. */
  secretKey: string | null;
  /** Run again this often after the first run; null: once, on start. */
  intervalMs: number | null;
  parked?: ParkedStore;
}

export interface PeriodicBackfill {
  /** The first run (resolves whether it succeeded or not). */
  readonly firstRun: Promise<void>;
  stop(): Promise<void>;
}

/**
 * The start-up backfill of `serve` / `agent`: from the newest stored event (or 24 h back), then
 * every `intervalMs`. A failure is logged as a warning and never stops the server.
 */
export function startPeriodicBackfill(options: PeriodicBackfillOptions): PeriodicBackfill {
  const { logger } = options;
  const controller = new AbortController();
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const runOnce = async () => {
    try {
      const since = await resumeSince(options.buffer);
      if (controller.signal.aborted) return;
      const counts = await backfill({
        stripe: options.stripe,
        buffer: options.buffer,
        catalog: options.catalog,
        parked: options.parked,
        since,
        signal: controller.signal,
      });
      logger.info('backfill done', {
        since: since.kind === 'created' ? new Date(since.gte * 1000).toISOString() : since.id,
        fetched: counts.fetched,
        queued: counts.queued,
        duplicate: counts.duplicate,
        ignored: counts.ignored,
      });
    } catch (error) {
      if (controller.signal.aborted) return;
      logger.warn('backfill failed; the server carries on receiving webhooks', {
        reason: stripeErrorMessage(error, options.secretKey),
      });
    }
  };
  const schedule = () => {
    if (options.intervalMs === null || controller.signal.aborted) return;
    timer = setTimeout(() => {
      running = runOnce().then(schedule);
    }, options.intervalMs);
    timer.unref();
  };
  const firstRun = runOnce();
  running = firstRun.then(schedule);
  return {
    firstRun,
    async stop() {
      controller.abort();
      clearTimeout(timer);
      await running;
    },
  };
}

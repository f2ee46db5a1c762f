import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import Stripe from 'stripe';
import type { EventBuffer, IncomingEvent } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import {
  AppError,
  BufferFullError,
  StoreUnavailableError,
  WebhookRejectedError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { verifyWebhook, type VerifiedEvent, type VerifyOptions } from '../stripe/verify.js';
import type { ParkedStore } from '../buffer/parked.js';
import { assertEnvelope } from '../stripe/envelope.js';
import { BodyBudget } from './limits.js';
import { createRefusalLog } from '../refusal-log.js';

export const WEBHOOK_PATH = '/stripe/webhook';

export interface WebhookDeps {
  buffer: EventBuffer;
  catalog: Catalog;
  verify: VerifyOptions;
  maxBodyBytes: number;
  /** Bytes of large bodies held unverified at once (--max-body-memory); unbounded when unset. */
  maxBodyMemoryBytes?: number;
  /** Told the outcome of every append (for /healthz). */
  onAppend?: (ok: boolean, error?: unknown) => void;
  metrics: Metrics;
  logger: Logger;
  /** Where thin notifications that need a key are recorded for the next backfill. */
  parked?: ParkedStore;
  /**
   * With STRIPE_SECRET_KEY: a thin event notification (v2 event destination) is verified, and the
   * snapshot event it points at is fetched and queued like a webhook's. Without it, a verified
   * thin notification is answered 200 `needs_key` and logged (the snapshot event stays in the
   * Events API for 30 days: `backfill` picks it up once a key is set).
   */
  stripe?: Pick<Stripe, 'events'> | null;
}

/** A verified thin event notification: the fields used here. */
interface ThinNotification {
  id: string;
  type: string;
  snapshot_event?: string | null;
}

// parseEventNotification is an instance method; verification needs no key and makes no request.
let verifier: Stripe | undefined;
function thinVerifier(): Stripe {
  return (verifier ??= new Stripe('sk_verify_only_no_requests'));
}

/** Verifies a thin notification against every secret, like verifyWebhook does for snapshots. */
function verifyThin(body: Buffer, header: string, options: VerifyOptions): ThinNotification {
  const receivedAt = (options.now ?? Date.now)();
  let stale = false;
  for (const secret of options.secrets) {
    try {
      const n = thinVerifier().parseEventNotification(
        body,
        header,
        secret,
        options.toleranceSeconds,
        undefined,
        receivedAt,
      ) as unknown as ThinNotification;
      if (typeof n.id !== 'string' || typeof n.type !== 'string') {
        throw new WebhookRejectedError('invalid_event', 'the thin event has no id or type');
      }
      return n;
    } catch (error) {
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
        if (/tolerance/i.test(error.message)) stale = true;
        continue;
      }
      if (error instanceof WebhookRejectedError) throw error;
      throw new WebhookRejectedError('invalid_event', 'the thin event could not be read');
    }
  }
  throw stale
    ? new WebhookRejectedError('stale_timestamp', 'the thin event signature is too old')
    : new WebhookRejectedError('invalid_signature', 'no v1 signature matches a configured secret');
}

const RETRY_AFTER_FULL_S = 60;
const RETRY_AFTER_UNAVAILABLE_S = 5;
const RETRY_AFTER_BUSY_S = 5;
/** How long a connection answered `server_busy` stays open for the client to read the 503. */
const BUSY_LINGER_MS = 1_000;

/** The request as the handlers see it: Node's own, with the raw body express.raw left on it. */
type WebhookRequest = IncomingMessage & { body?: unknown };

/** Written without Express's response helpers: the shortcut route has none (see `serve`). */
function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

/**
 * A verified event as the buffer takes it. The backfill uses it too, so an event pulled from the
 * Events API is stored exactly as the same event arriving by webhook (and deduplicated with it).
 * Throws WebhookRejectedError `invalid_event` for an envelope no event may be stored with
 * (stripe/envelope.ts): every way in passes here.
 */
export function toIncoming(event: VerifiedEvent, payload: string): IncomingEvent {
  assertEnvelope(event);
  const objectId = event.data.object.id;
  return {
    id: event.id,
    type: event.type,
    created: event.created,
    livemode: event.livemode,
    objectId: typeof objectId === 'string' ? objectId : null,
    payload,
  };
}

export interface WebhookIngress {
  /** POST /stripe/webhook as an Express route, for the paths Express matches loosely. */
  router: express.Router;
  /**
   * The request listener's shortcut for the hot path: an exact `POST /stripe/webhook` is handled
   * here, before Express's router, with the same body parser and handler. Returns false for any
   * other request (the caller passes it to Express).
   */
  serve(req: IncomingMessage, res: ServerResponse): boolean;
}

/**
 * POST /stripe/webhook. The raw body parser (express.raw) is used on this route only: a JSON
 * parser must never see the bytes before the signature is checked against them.
 */
export function createWebhookIngress(deps: WebhookDeps): WebhookIngress {
  const { buffer, catalog, metrics, logger } = deps;
  type Stop = (labels: { status: string }) => void;
  const rejectLog = createRefusalLog(logger, {
    summary: 'webhooks rejected (more, not logged one by one)',
  });
  const rejected = (reason: string, fields: Record<string, unknown>) =>
    rejectLog.refused('webhook rejected', reason, fields);
  const budget =
    deps.maxBodyMemoryBytes === undefined
      ? null
      : new BodyBudget(deps.maxBodyMemoryBytes, deps.maxBodyBytes);

  /** A 400 for a request that is not a valid event: counted, logged (bounded), answered. */
  const refuse = (
    req: WebhookRequest,
    res: ServerResponse,
    e: WebhookRejectedError,
    stop: Stop,
    thin?: boolean,
  ) => {
    metrics.rejected.inc({ reason: e.code });
    rejected(e.code, { ip: req.socket.remoteAddress, ...(thin ? { thin: true } : {}) });
    sendError(res, 400, e.code, e.message);
    stop({ status: 'rejected' });
  };

  /** The envelope and catalog checks and the durable append, for snapshot and thin events. */
  const admit = async (
    event: VerifiedEvent,
    payload: string,
    req: WebhookRequest,
    res: ServerResponse,
    stop: Stop,
  ) => {
    let incoming: IncomingEvent;
    try {
      incoming = toIncoming(event, payload);
    } catch (error) {
      if (!(error instanceof WebhookRejectedError)) throw error;
      refuse(req, res, error, stop);
      return;
    }
    if (!catalog.lookup(event.type)) {
      metrics.ignored.inc();
      logger.debug('event ignored: type not in the catalog', { id: event.id, type: event.type });
      sendJson(res, 200, { received: true, status: 'ignored', id: event.id });
      stop({ status: 'ignored' });
      return;
    }
    try {
      const result = await buffer.append(incoming);
      deps.onAppend?.(true);
      if (result.status === 'queued') {
        metrics.queued.inc({ type: event.type });
        logger.debug('event queued', { id: event.id, type: event.type });
      } else {
        metrics.duplicate.inc();
        logger.debug('duplicate delivery', { id: event.id, type: event.type });
      }
      sendJson(res, 200, { received: true, status: result.status, id: event.id });
      stop({ status: result.status });
    } catch (error) {
      const full = error instanceof BufferFullError;
      // A full buffer is back-pressure, not a broken store: health stays green.
      if (!full) deps.onAppend?.(false, error);
      const code = error instanceof AppError ? error.code : 'store_unavailable';
      metrics.rejected.inc({ reason: code });
      logger.error(
        full ? 'buffer full: asking Stripe to retry' : 'store unavailable: asking Stripe to retry',
        {
          id: event.id,
          error,
        },
      );
      res.setHeader('Retry-After', String(full ? RETRY_AFTER_FULL_S : RETRY_AFTER_UNAVAILABLE_S));
      const message =
        error instanceof BufferFullError || error instanceof StoreUnavailableError
          ? error.message
          : 'the event store failed';
      sendError(res, 503, code, `${message}; Stripe will retry`);
      stop({ status: 'unavailable' });
    }
  };

  /** A thin notification (v2 event destination): verified, then its snapshot event fetched. */
  const thin = async (
    body: Buffer,
    header: string,
    req: WebhookRequest,
    res: ServerResponse,
    stop: Stop,
  ) => {
    let n: ThinNotification;
    try {
      n = verifyThin(body, header, deps.verify);
    } catch (error) {
      refuse(req, res, error as WebhookRejectedError, stop, true);
      return;
    }
    const v1Type = n.type.startsWith('v1.') ? n.type.slice(3) : null;
    // Only an event id is ever fetched: the id goes into a request path.
    const snapshot =
      typeof n.snapshot_event === 'string' && /^evt_[A-Za-z0-9_]{1,200}$/.test(n.snapshot_event)
        ? n.snapshot_event
        : null;
    if (v1Type && !snapshot) {
      // Nothing to fetch that the catalog could map (every v1 notification names its snapshot).
      metrics.rejected.inc({ reason: 'thin_event_unsupported' });
      sendError(
        res,
        400,
        'thin_event_unsupported',
        'this thin event names no snapshot_event to fetch; point a snapshot-event endpoint here',
      );
      stop({ status: 'rejected' });
      return;
    }
    if (!v1Type || !snapshot || !catalog.lookup(v1Type)) {
      metrics.ignored.inc();
      logger.debug('thin event ignored: no catalog-mapped snapshot event', {
        id: n.id,
        type: n.type,
      });
      sendJson(res, 200, { received: true, status: 'ignored', id: n.id });
      stop({ status: 'ignored' });
      return;
    }
    if (!deps.stripe) {
      if (deps.parked) {
        try {
          await deps.parked.add({
            id: n.id,
            type: n.type,
            snapshot_event: snapshot,
            received_at: new Date().toISOString(),
          });
        } catch (error) {
          // Not recorded: a 503 makes Stripe deliver the notification again.
          metrics.rejected.inc({ reason: 'store_unavailable' });
          logger.error('could not record a thin event that needs a key', { id: n.id, error });
          res.setHeader('Retry-After', String(RETRY_AFTER_UNAVAILABLE_S));
          sendError(
            res,
            503,
            'store_unavailable',
            'the notification could not be recorded; Stripe will retry',
          );
          stop({ status: 'unavailable' });
          return;
        }
      }
      metrics.ignored.inc();
      logger.warn(
        'thin event recorded, not queued: fetching its snapshot event needs STRIPE_SECRET_KEY; once it is set, `backfill` (or the start-up backfill) queues it',
        { id: n.id, type: n.type, snapshot_event: snapshot },
      );
      sendJson(res, 200, { received: true, status: 'needs_key', id: n.id });
      stop({ status: 'ignored' });
      return;
    }
    let event: Stripe.Event;
    try {
      event = await deps.stripe.events.retrieve(snapshot);
      if (typeof event?.id !== 'string' || typeof event.data?.object !== 'object') {
        throw new Error('the API answered something that is not an event');
      }
    } catch (error) {
      const e = error as { message?: string; statusCode?: number };
      metrics.rejected.inc({ reason: 'stripe_unavailable' });
      logger.error('thin event: fetching its snapshot event failed; asking Stripe to retry', {
        id: n.id,
        snapshot_event: snapshot,
        reason: e.message,
        status: e.statusCode,
      });
      res.setHeader('Retry-After', String(RETRY_AFTER_UNAVAILABLE_S));
      sendError(
        res,
        503,
        'stripe_unavailable',
        'the snapshot event could not be fetched; Stripe will retry',
      );
      stop({ status: 'unavailable' });
      return;
    }
    await admit(event as unknown as VerifiedEvent, JSON.stringify(event), req, res, stop);
  };

  const handle = async (req: WebhookRequest, res: ServerResponse) => {
    const stop = metrics.ingestSeconds.startTimer();
    metrics.received.inc();
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const header = req.headers['stripe-signature'];
    // Verified over the bytes received, then decoded once, strictly: the store keeps that text.
    let verified: ReturnType<typeof verifyWebhook>;
    try {
      verified = verifyWebhook(body, header, deps.verify);
    } catch (error) {
      const e = error as WebhookRejectedError;
      if (e.code === 'thin_event_unsupported' && typeof header === 'string') {
        await thin(body, header, req, res, stop);
        return;
      }
      refuse(req, res, e, stop);
      return;
    }
    await admit(verified.event, verified.text, req, res, stop);
  };

  /** Errors from the body parser (too large, aborted, bad encoding) on this route. */
  const bodyError = (error: unknown, req: WebhookRequest, res: ServerResponse): void => {
    const e = error as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.too.large') {
      metrics.rejected.inc({ reason: 'too_large' });
      rejected('payload_too_large', { ip: req.socket.remoteAddress });
      sendError(
        res,
        413,
        'payload_too_large',
        `the body is larger than ${deps.maxBodyBytes} bytes (--max-body)`,
      );
      return;
    }
    const status =
      typeof e.status === 'number' && e.status >= 400 && e.status < 500 ? e.status : 400;
    metrics.rejected.inc({ reason: e.type ?? 'bad_request' });
    rejected(e.type ?? 'bad_request', { ip: req.socket.remoteAddress });
    sendError(
      res,
      status,
      e.type?.replace(/\./g, '_') ?? 'bad_request',
      e.message ?? 'bad request',
    );
  };

  const handleOrFail = (req: WebhookRequest, res: ServerResponse): void => {
    handle(req, res).catch((error: unknown) => {
      logger.error('webhook handler failed', { error });
      if (!res.headersSent)
        sendError(res, 500, 'internal_error', 'the request failed; Stripe will retry');
      else res.destroy();
    });
  };

  /**
   * Reserves room for the body in the unverified-bytes budget until the answer is sent; answers
   * 503 + Retry-After (and closes the connection, leaving the body unread) when it is spent.
   */
  const admitBody = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (!budget) return true;
    const release = budget.reserve(req);
    if (release) {
      res.once('close', release);
      return true;
    }
    metrics.rejected.inc({ reason: 'server_busy' });
    rejected('server_busy', { ip: req.socket.remoteAddress });
    res.setHeader('Retry-After', String(RETRY_AFTER_BUSY_S));
    res.setHeader('Connection', 'close');
    // Node would otherwise read (and discard) the rest of the body until --request-timeout:
    // the connection is let go once the client has had a moment to read the answer.
    const socket = req.socket;
    res.once('finish', () => setTimeout(() => socket.destroy(), BUSY_LINGER_MS).unref());
    sendError(
      res,
      503,
      'server_busy',
      'too many large request bodies are being received at once (--max-body-memory); Stripe will retry',
    );
    return false;
  };

  const rawBody = express.raw({ type: () => true, limit: deps.maxBodyBytes });
  const router = express.Router();
  router.post(
    WEBHOOK_PATH,
    (req, res, next) => {
      if (admitBody(req, res)) next();
    },
    rawBody,
    (req, res) => handleOrFail(req, res),
  );
  router.use(
    WEBHOOK_PATH,
    (error: unknown, req: express.Request, res: express.Response, next: express.NextFunction) => {
      if (res.headersSent) return next(error);
      bodyError(error, req, res);
    },
  );

  return {
    router,
    serve(req, res) {
      if (req.method !== 'POST' || req.url !== WEBHOOK_PATH) return false;
      if (!admitBody(req, res)) return true;
      rawBody(req as express.Request, res as express.Response, (error?: unknown) => {
        if (error === undefined || error === null) handleOrFail(req, res);
        else if (res.headersSent) res.destroy();
        else bodyError(error, req, res);
      });
      return true;
    },
  };
}

import express, { type NextFunction, type Request, type Response } from 'express';
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

export const WEBHOOK_PATH = '/stripe/webhook';

export interface WebhookDeps {
  buffer: EventBuffer;
  catalog: Catalog;
  verify: VerifyOptions;
  maxBodyBytes: number;
  metrics: Metrics;
  logger: Logger;
}

const RETRY_AFTER_FULL_S = 60;
const RETRY_AFTER_UNAVAILABLE_S = 5;

function sendError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

function toIncoming(event: VerifiedEvent, payload: string): IncomingEvent {
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

/**
 * POST /stripe/webhook. The raw body parser is mounted on this route only: a JSON parser must
 * never see the bytes before the signature is checked against them.
 */
export function createWebhookRouter(deps: WebhookDeps): express.Router {
  const { buffer, catalog, metrics, logger } = deps;
  const router = express.Router();

  router.post(
    WEBHOOK_PATH,
    express.raw({ type: () => true, limit: deps.maxBodyBytes }),
    async (req: Request, res: Response) => {
      const stop = metrics.ingestSeconds.startTimer();
      metrics.received.inc();
      const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let event: VerifiedEvent;
      try {
        event = verifyWebhook(body, req.headers['stripe-signature'], deps.verify);
      } catch (error) {
        const e = error as WebhookRejectedError;
        metrics.rejected.inc({ reason: e.code });
        logger.warn('webhook rejected', { reason: e.code, ip: req.ip });
        sendError(res, 400, e.code, e.message);
        stop({ status: 'rejected' });
        return;
      }
      if (!catalog.lookup(event.type)) {
        metrics.ignored.inc();
        logger.debug('event ignored: type not in the catalog', { id: event.id, type: event.type });
        res.json({ received: true, status: 'ignored', id: event.id });
        stop({ status: 'ignored' });
        return;
      }
      try {
        const result = await buffer.append(toIncoming(event, body.toString('utf8')));
        if (result.status === 'queued') {
          metrics.queued.inc({ type: event.type });
          logger.debug('event queued', { id: event.id, type: event.type });
        } else {
          metrics.duplicate.inc();
          logger.debug('duplicate delivery', { id: event.id, type: event.type });
        }
        res.json({ received: true, status: result.status, id: event.id });
        stop({ status: result.status });
      } catch (error) {
        const full = error instanceof BufferFullError;
        const code = error instanceof AppError ? error.code : 'store_unavailable';
        metrics.rejected.inc({ reason: code });
        logger.error(
          full
            ? 'buffer full: asking Stripe to retry'
            : 'store unavailable: asking Stripe to retry',
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
    },
  );

  // Errors from the body parser (too large, aborted, bad encoding) on this route.
  router.use(WEBHOOK_PATH, (error: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = error as { type?: string; status?: number; message?: string };
    if (res.headersSent) return next(error);
    if (e.type === 'entity.too.large') {
      metrics.rejected.inc({ reason: 'too_large' });
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
    sendError(
      res,
      status,
      e.type?.replace(/\./g, '_') ?? 'bad_request',
      e.message ?? 'bad request',
    );
  });

  return router;
}

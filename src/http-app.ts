import type { RequestListener } from 'node:http';
import express, { type Request, type Response } from 'express';
import type { EventBuffer } from './buffer/buffer.js';
import { createWebhookIngress, type WebhookDeps } from './ingress/webhook.js';
import type { Metrics } from './metrics.js';

export interface HttpAppDeps extends WebhookDeps {
  buffer: EventBuffer;
  metrics: Metrics;
  /** MCP Streamable HTTP at `/mcp` (it parses JSON on that path only). */
  mcp?: express.Router;
  /** The operator console at `/console` (src/console/); `/` redirects there when it is on. */
  console?: express.Router;
}

/**
 * The HTTP surface: webhook ingress, health and metrics. No app-wide body parser, on purpose.
 * The returned listener serves `POST /stripe/webhook` itself, ahead of Express's router (the one
 * route under load: each request skips the router's layers), and hands every other request to
 * the Express app, which mounts the same webhook handler for the spellings Express also accepts.
 */
export function createHttpApp(deps: HttpAppDeps): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const webhook = createWebhookIngress(deps);
  app.use(webhook.router);
  if (deps.mcp) app.use(deps.mcp);
  if (deps.console) {
    app.use(deps.console);
    app.get('/', (_req: Request, res: Response) => res.redirect(302, '/console'));
  }

  app.get('/healthz', async (_req: Request, res: Response) => {
    const health = await deps.buffer.health();
    if (!health.ok) {
      res.status(503).json({ status: 'unavailable', store: health });
      return;
    }
    try {
      const stats = await deps.buffer.stats();
      res.json({
        status: 'ok',
        store: health,
        pending: stats.counts.pending,
        counts: stats.counts,
      });
    } catch (error) {
      res.status(503).json({
        status: 'unavailable',
        store: { ...health, ok: false, detail: (error as Error).message },
      });
    }
  });

  app.get('/metrics', async (_req: Request, res: Response) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such route' } });
  });
  return (req, res) => {
    if (!webhook.serve(req, res)) app(req, res);
  };
}

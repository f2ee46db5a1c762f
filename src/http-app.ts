import express, { type Request, type Response } from 'express';
import type { EventBuffer } from './buffer/buffer.js';
import { createWebhookRouter, type WebhookDeps } from './ingress/webhook.js';
import type { Metrics } from './metrics.js';

export interface HttpAppDeps extends WebhookDeps {
  buffer: EventBuffer;
  metrics: Metrics;
  /** MCP Streamable HTTP at `/mcp` (it parses JSON on that path only). */
  mcp?: express.Router;
}

/** The HTTP surface: webhook ingress, health and metrics. No app-wide body parser, on purpose. */
export function createHttpApp(deps: HttpAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(createWebhookRouter(deps));
  if (deps.mcp) app.use(deps.mcp);

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
  return app;
}

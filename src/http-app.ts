import type { RequestListener } from 'node:http';
import express, { type Request, type Response } from 'express';
import type { EventBuffer } from './buffer/buffer.js';
import { createWebhookIngress, type WebhookDeps } from './ingress/webhook.js';
import type { Metrics } from './metrics.js';
import { createAppendHealth } from './ingress/append-health.js';
import { createRequestGuard, hasBearerToken } from './http-guard.js';
import { createRefusalLog } from './refusal-log.js';

export interface HttpAppDeps extends WebhookDeps {
  buffer: EventBuffer;
  metrics: Metrics;
  /** MCP Streamable HTTP at `/mcp` (it parses JSON on that path only). */
  mcp?: express.Router;
  /**
   * MCP_AUTH_TOKEN (required off loopback): when set, `/metrics` needs it as a bearer token like
   * `/mcp`, and `/healthz` without it answers its status only, no counts.
   */
  authToken?: string | null;
  /**
   * The bind and MCP_ALLOWED_HOSTS: `/metrics` and `/healthz` check the Host as `/mcp` and the
   * console do (a DNS-rebinding page must not read the counts or the metrics either).
   */
  host: string;
  allowedHosts?: readonly string[];
  /** Where the store writes on local disk, for the health write probe; null for Redis. */
  healthProbeDir?: string | null;
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
  const appends = createAppendHealth(deps.healthProbeDir ?? null);
  const webhook = createWebhookIngress({
    ...deps,
    onAppend: (ok, error) => {
      appends.record(ok, error);
      deps.onAppend?.(ok, error);
    },
  });
  app.use(webhook.router);
  if (deps.mcp) app.use(deps.mcp);
  if (deps.console) {
    app.use(deps.console);
    app.get('/', (_req: Request, res: Response) => res.redirect(302, '/console'));
  }

  const token = deps.authToken || null;
  const authorized = (req: Request) =>
    token === null || hasBearerToken(req.headers.authorization, token);

  const guard = createRequestGuard(deps);
  const refusals = createRefusalLog(deps.logger, {
    summary: 'health or metrics requests refused (more, not logged one by one)',
  });
  // The same rule, status and words as /mcp's Host check (403: DNS rebinding protection).
  const checkHost = (req: Request, res: Response, next: () => void) => {
    if (guard.hostAllowed(req.headers.host)) {
      next();
      return;
    }
    refusals.refused('health or metrics request refused: Host not allowed', 'host_not_allowed', {
      path: req.path,
      host: req.headers.host ?? null,
      ip: req.socket.remoteAddress,
    });
    res.status(403).json({
      error: {
        code: 'host_not_allowed',
        message: `Forbidden: Host ${JSON.stringify(req.headers.host ?? '')} is not allowed (DNS rebinding protection). Connect through localhost or 127.0.0.1, or add the name to MCP_ALLOWED_HOSTS.`,
      },
    });
  };

  app.get('/healthz', checkHost, async (req: Request, res: Response) => {
    // Without the token (when one is set) only the verdict: counts say how busy the queue is.
    const full = authorized(req);
    const health = await deps.buffer.health();
    const writes = health.ok ? await appends.check() : { ok: true };
    if (!health.ok || !writes.ok) {
      const store = writes.ok ? health : { ...health, ok: false, detail: writes.detail };
      res.status(503).json(full ? { status: 'unavailable', store } : { status: 'unavailable' });
      return;
    }
    if (!full) {
      res.json({ status: 'ok' });
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

  app.get('/metrics', checkHost, async (req: Request, res: Response) => {
    if (!authorized(req)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="stripe-events-mcp"');
      res.status(401).json({
        error: {
          code: 'unauthorized',
          message:
            'send "Authorization: Bearer <token>" with the MCP_AUTH_TOKEN this server was started with',
        },
      });
      return;
    }
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

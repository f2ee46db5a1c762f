import type { AddressInfo } from 'node:net';
import { createActorResolver } from './operations/people.js';
import { DEDUP_WINDOW_MS, type EventBuffer } from './buffer/buffer.js';
import { redactRedisUrl } from './buffer/open.js';
import type { Catalog } from './catalog/catalog.js';
import type { Enrich } from './catalog/enrich.js';
import type { ServeConfig } from './config/config.js';
import { ensureWritableDir, loadOrCreateDevSecret, type DevSecret } from './config/data-dir.js';
import { ConfigError } from './errors.js';
import { createHttpApp } from './http-app.js';
import { createLimitedServer } from './ingress/limits.js';
import { createConsole } from './console/router.js';
import { createConsoleBackend } from './console/backend.js';
import type { Logger } from './logger.js';
import { assertMcpAccess, createMcpHttpHandler, type McpHttpHandler } from './mcp/http.js';
import { createMetrics } from './metrics.js';
import type { Sink } from './dispatch/dispatch.js';
import type { AgentLoop } from './agent/loop.js';
import type { AgentSettings } from './config/agent.js';
import { startPeriodicBackfill, type PeriodicBackfill } from './ingress/backfill.js';
import type { BackfillRunner } from './operations/backfill.js';
import { composeServices, type Services } from './compose/services.js';
import { expirySettings, startExpirySweep } from './operations/expiry.js';
import { startNotifier } from './operations/notify/notifier.js';
import { isLoopbackHost } from './http-guard.js';
import { NO_ALLOWANCE } from './mcp/events/address.js';
import { DEFAULT_EVENTS_OPTIONS } from './mcp/events/handlers.js';
import { WebhookDeliverer } from './mcp/events/webhook.js';

const LEASE_SWEEP_MS = 5_000;
const PRUNE_EVERY_MS = 60 * 60 * 1000;
const SHUTDOWN_GRACE_MS = 10_000;

export interface RunningServer {
  url: string;
  port: number;
  /** Store, catalog, sink, operations… (compose/services.ts); closed last by close(). */
  services: Services;
  buffer: EventBuffer;
  catalog: Catalog;
  /** The MCP Streamable HTTP sessions at `/mcp`. */
  mcp: McpHttpHandler;
  /** Where decided tool calls go (the config's `dispatch`). */
  sink: Sink;
  /** backfill_events' runner; undefined without STRIPE_SECRET_KEY. */
  runBackfill?: BackfillRunner;
  /** --enrich lookups (with STRIPE_SECRET_KEY); undefined when off. */
  enrich?: Enrich;
  /** The start-up (and periodic) backfill from the Events API; null when off. */
  backfill: PeriodicBackfill | null;
  /** Stops accepting, lets in-flight requests finish, then closes the store. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  /** Human-facing notices (the dev secret banner); stderr by default. */
  notice?: (text: string) => void;
  /** How the user invokes this program, for the commands the banner suggests. */
  command?: string;
  /** Runs the autonomous Claude loop beside the server (`agent`, `serve --agent`). */
  agent?: AgentSettings;
  /** A line the console shows over its pages (`demo`: its decisions are scripted). */
  consoleBanner?: string;
}

/** The secrets to verify with: the configured ones, else the data dir's dev secret. */
export function resolveSecrets(config: ServeConfig): { secrets: string[]; dev: DevSecret | null } {
  if (config.webhookSecrets.length > 0) return { secrets: [...config.webhookSecrets], dev: null };
  const dev = loadOrCreateDevSecret(config.dataDir);
  return { secrets: [dev.secret], dev };
}

/** Printed once the server listens, with the port it really bound (`--port 0` included). */
export function devSecretBanner(
  dev: DevSecret,
  dataDir: string,
  webhookUrl: string,
  command: string,
): string {
  return [
    '',
    `No STRIPE_WEBHOOK_SECRET is set, so this server verifies with a dev secret${dev.created ? ' it just created' : ''}:`,
    `  ${dev.secret}`,
    `  (kept in ${dev.file}; unsigned or wrongly signed events are still refused)`,
    'Send it a signed test event:',
    `  ${command} trigger charge.dispute.created --data-dir ${JSON.stringify(dataDir)} --url ${webhookUrl}`,
    'For real events, set STRIPE_WEBHOOK_SECRET to the secret `stripe listen` or the Dashboard shows.',
    '',
  ].join('\n');
}

/** The addresses a person needs first: where Stripe posts, where an agent connects, the console. */
export function whereThingsAre(url: string): string {
  return [
    '',
    `stripe-events-mcp is listening on ${url}`,
    `  webhooks  ${url}/stripe/webhook   (point Stripe or \`stripe listen --forward-to\` here)`,
    `  MCP       ${url}/mcp              (Streamable HTTP, for MCP clients)`,
    `  console   ${url}/console          (the operator console in a browser)`,
  ].join('\n');
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startServer(
  config: ServeConfig,
  options: StartOptions,
): Promise<RunningServer> {
  const { logger } = options;
  const notice = options.notice ?? ((text: string) => process.stderr.write(text + '\n'));
  assertMcpAccess(config);
  ensureWritableDir(config.dataDir);
  const { secrets, dev } = resolveSecrets(config);
  const services = await composeServices({ ...config, ifMissing: 'create' }, logger);
  const { store: buffer, catalog, sink, stripe, parked, runBackfill, enrich } = services;
  const metrics = createMetrics(buffer);
  // One resolver for both doors: MCP_AUTH_TOKEN and the store's people, one cache.
  const actors = createActorResolver({ adminToken: config.mcpAuthToken, people: buffer.people });
  // MCP Events webhooks: every serve process delivers, sharing the store's subscriptions.
  const eventsAllow = {
    ...NO_ALLOWANCE,
    loopback: config.eventsAllowLoopback === true,
    privateRanges: config.eventsAllowPrivate === true,
  };
  const deliverer = new WebhookDeliverer({
    buffer,
    catalog,
    redact: config.redact,
    logger: logger.child({ component: 'mcp-events' }),
    allow: eventsAllow,
  });
  const mcp = createMcpHttpHandler({
    actors,
    buffer,
    operations: services.operations,
    catalog,
    enrich,
    redact: config.redact,
    logger,
    host: config.host,
    authToken: config.mcpAuthToken,
    allowedHosts: config.mcpAllowedHosts,
    allowedOrigins: config.mcpAllowedOrigins,
    idleTimeoutMs: config.mcpSessionIdleMs,
    maxSessions: config.mcpMaxSessions,
    events: {
      ...DEFAULT_EVENTS_OPTIONS,
      allow: eventsAllow,
      deliverer,
      maxSubscriptionsPerPrincipal:
        config.eventsMaxSubscriptions ?? DEFAULT_EVENTS_OPTIONS.maxSubscriptionsPerPrincipal,
    },
  });
  const publicUrl = config.publicUrl ? new URL(config.publicUrl) : null;
  const consoleUi = createConsole({
    backend: createConsoleBackend({
      buffer,
      catalog,
      operations: services.operations,
      agentRunning: () => !!options.agent,
    }),
    logger: logger.child({ component: 'console' }),
    actors,
    banner: options.consoleBanner,
    host: config.host,
    authToken: config.mcpAuthToken,
    // Behind a proxy the console's pages come from --public-url: its origin posts the forms and
    // its host name arrives in Host, so both count as the console's own.
    allowedHosts: publicUrl
      ? [...config.mcpAllowedHosts, publicUrl.hostname.toLowerCase()]
      : config.mcpAllowedHosts,
    allowedOrigins: publicUrl
      ? [...config.mcpAllowedOrigins, publicUrl.origin]
      : config.mcpAllowedOrigins,
  });
  const app = createHttpApp({
    stripe,
    parked,
    buffer,
    catalog,
    metrics,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    maxBodyMemoryBytes: config.maxBodyMemoryBytes,
    authToken: config.mcpAuthToken,
    host: config.host,
    allowedHosts: config.mcpAllowedHosts,
    healthProbeDir: buffer.kind === 'sqlite' ? config.dataDir : null,
    verify: { secrets, toleranceSeconds: config.toleranceSeconds },
    mcp: mcp.router,
    console: consoleUi.router,
  });

  const server = createLimitedServer(config, app, () =>
    logger.debug('connection refused: --max-connections reached'),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await mcp.close();
    await services.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new ConfigError(
        '--port / PORT',
        `cannot listen on ${config.host}:${config.port} (${code}). Fix: stop the process using it or choose another --port / --host.`,
        { cause: error },
      );
    }
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const url = `http://${urlHost(config.host)}:${port}`;

  // Expired leases go back to pending even when nobody claims; finished events leave after the
  // dedup window (Stripe retries for at most three days, so seven is ample).
  const sweep = setInterval(() => {
    buffer.recoverExpiredLeases().catch((error) => logger.warn('lease sweep failed', { error }));
  }, LEASE_SWEEP_MS);
  const prune = async () => {
    try {
      const n = await buffer.prune(Date.now() - DEDUP_WINDOW_MS);
      if (n > 0) logger.info('pruned finished events past the dedup window', { count: n });
    } catch (error) {
      logger.warn('prune failed', { error });
    }
  };
  const pruneTimer = setInterval(() => void prune(), PRUNE_EVERY_MS);
  sweep.unref();
  pruneTimer.unref();
  void prune();
  // Approvals expire (operations/expiry.ts): every serve/agent process sweeps; the store's guarded
  // reject/approve lets exactly one apply each default. It runs at once, so a restart catches up.
  const settings = expirySettings(config.approval);
  if (config.notify && !config.publicUrl && !isLoopbackHost(config.host)) {
    logger.warn(
      'notifications link to the address this server listens on; set --public-url (PUBLIC_URL) to the address people reach it at',
      { url },
    );
  }
  // People are told what waits for them (operations/notify): null when `notify` names no target.
  const notifier = config.notify
    ? startNotifier({
        buffer,
        catalog,
        notify: config.notify,
        publicUrl: config.publicUrl ?? url,
        settings,
        logger: logger.child({ component: 'notify' }),
        registry: metrics.registry,
      })
    : null;
  const expiry = startExpirySweep({
    buffer,
    sink,
    settings,
    logger: logger.child({ component: 'expiry' }),
    onExpired: notifier ? (applied) => notifier.expired(applied) : undefined,
    onExpiringSoon: notifier ? (soon) => notifier.expiringSoon(soon) : undefined,
  });

  // Where things are, in plain lines a person reads before the JSON logs scroll by.
  notice(whereThingsAre(url));
  if (dev) {
    notice(
      devSecretBanner(
        dev,
        config.dataDir,
        `${url}/stripe/webhook`,
        options.command ?? 'npx stripe-events-mcp',
      ),
    );
  }
  deliverer.start();
  logger.info('listening', {
    url,
    webhook: `${url}/stripe/webhook`,
    mcp: `${url}/mcp`,
    console: `${url}/console`,
    store: buffer.kind,
    ...(config.store === 'redis'
      ? { redis: redactRedisUrl(config.redisUrl), redisPrefix: config.redisPrefix }
      : {}),
    dataDir: config.dataDir,
    verifyingWith: `${secrets.length} signing secret(s)`,
  });

  // Loaded only when the loop runs: the Anthropic SDK is the largest module a start would load.
  let agent: AgentLoop | null = null;
  if (options.agent) {
    const { startAgent } = await import('./agent/start.js');
    agent = await startAgent({
      enrich,
      buffer,
      catalog,
      settings: options.agent,
      sink,
      approval: config.approval,
      guardrails: config.guardrails,
      redact: config.redact,
      logger,
      registry: metrics.registry,
      onBreakerOpen: notifier ? (stop) => notifier.breakerOpened(stop) : undefined,
    });
  }

  // Events missed while this server was down: pulled through the same dedup as webhooks. A
  // failure (bad key, Stripe unreachable) is a warning; webhooks keep flowing.
  const periodic =
    config.backfillOnStart && stripe
      ? startPeriodicBackfill({
          stripe,
          parked,
          buffer,
          catalog,
          logger: logger.child({ component: 'backfill' }),
          secretKey: config.stripeSecretKey ?? null,
          intervalMs: config.backfillIntervalMs ?? null,
        })
      : null;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      clearInterval(sweep);
      clearInterval(pruneTimer);
      await expiry.stop();
      notifier?.close();
      await periodic?.stop();
      await deliverer.stop();
      // The loop first: its in-flight events go back to pending while the store is still open.
      await agent?.stop();
      const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      force.unref();
      // MCP sessions first: their open event streams would keep server.close() waiting.
      await mcp.close();
      consoleUi.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      clearTimeout(force);
      await services.close();
      logger.info('stopped');
    })());

  return {
    url,
    port,
    services,
    buffer,
    catalog,
    mcp,
    sink,
    runBackfill,
    enrich,
    backfill: periodic,
    close,
  };
}

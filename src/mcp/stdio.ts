import { format } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { EventBuffer } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Enrich } from '../catalog/enrich.js';
import type { ServeConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { QueueOperations } from '../operations/queue.js';
import { createMcpServer } from './server.js';

/** The part of the composition (compose/services.ts) an MCP session works from. */
export interface McpServices {
  store: EventBuffer;
  catalog: Catalog;
  operations: QueueOperations;
  enrich?: Enrich;
  /** Closes the store. */
  close(): Promise<void>;
}

/** What `serve` starts (app.ts startServer): the HTTP app with the webhook, on the store. */
export interface WebhookServer {
  url: string;
  services: McpServices;
  /** Ordered shutdown, the store last. */
  close(): Promise<void>;
}

export type StartWebhookServer = (
  config: ServeConfig,
  options: { logger: Logger; notice: (text: string) => void; command?: string },
) => Promise<WebhookServer>;

export interface StdioOptions {
  /**
   * Starts the webhook server; `attach` builds the same services without a listener. The
   * composition root (cli.ts) passes both: mcp/ does not import app/ or compose/.
   */
  start: StartWebhookServer;
  attach: (config: ServeConfig, logger: Logger) => Promise<McpServices>;
  logger: Logger;
  /** Human-facing notices; stderr by default (stdout carries JSON-RPC only). */
  notice?: (text: string) => void;
  /** How the user invokes this program, for the commands the dev-secret banner suggests. */
  command?: string;
  stdin?: Readable;
  stdout?: Writable;
}

export interface StdioServer {
  /** `listening`: this process receives the webhooks; `attached`: another process holds the port. */
  mode: 'listening' | 'attached';
  /** The webhook URL when listening. */
  url: string | null;
  /** Ordered shutdown: the MCP session, then the HTTP server, then the store. */
  close(): Promise<void>;
  /** Settles once the session has ended (stdin closed, or close()) and everything is shut. */
  closed: Promise<void>;
}

function addressInUse(error: unknown): boolean {
  const cause = error instanceof ConfigError ? error.cause : error;
  return (cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

/**
 * MCP over stdin/stdout for Claude Desktop and other local clients. The same process binds the
 * webhook port like `serve`; when the port is taken (a second client, or `serve` running) it
 * attaches to the same store instead and still lists, acks and notifies: the store reports the
 * other process's commits as `external` changes. Nothing but JSON-RPC is written to stdout.
 */
export async function runStdio(config: ServeConfig, options: StdioOptions): Promise<StdioServer> {
  const { logger } = options;
  const notice = options.notice ?? ((text: string) => process.stderr.write(text + '\n'));
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;

  let running: WebhookServer | null = null;
  let services: McpServices;
  try {
    running = await options.start(config, { logger, notice, command: options.command });
    services = running.services;
  } catch (error) {
    if (!addressInUse(error)) throw error;
    // Attached: the same composition as `serve`, without the listener; the policy is the one
    // stored with the queue (the process that holds the port may have set it).
    services = await options.attach(config, logger);
    notice(
      `stripe-events-mcp: ${config.host}:${config.port} is in use (another stripe-events-mcp, serve or stdio?), so this one attached to the ${config.store === 'sqlite' ? `store in ${config.dataDir}` : 'Redis store'} without a webhook listener. Tools, resources and notifications work as usual: events the other process receives appear here within a moment.`,
    );
    logger.warn('webhook port in use: attached to the shared store', {
      host: config.host,
      port: config.port,
      dataDir: config.dataDir,
    });
  }

  const server = createMcpServer({
    buffer: services.store,
    operations: services.operations,
    catalog: services.catalog,
    redact: config.redact,
    logger,
    enrich: services.enrich,
  });
  const transport = new StdioServerTransport(stdin, stdout);

  let settle: () => void = () => {};
  const closed = new Promise<void>((resolve) => (settle = resolve));
  let closing: Promise<void> | undefined;
  const shutdown = async () => {
    // Yield first, so a close() re-entered from the transport's onclose gets this same promise.
    await Promise.resolve();
    stdin.off('end', onEnd);
    stdin.off('close', onEnd);
    try {
      await server.close();
    } catch (error) {
      logger.warn('closing the MCP session failed', { error });
    }
    if (running) await running.close();
    else await services.close();
    logger.info('stdio session ended');
  };
  const close = () => (closing ??= shutdown().finally(() => settle()));
  const onEnd = () => {
    logger.info('stdin closed: shutting down');
    close().catch((error) => logger.error('shutdown failed', { error }));
  };
  stdin.once('end', onEnd);
  stdin.once('close', onEnd);
  transport.onerror = (error) => logger.warn('stdio transport error', { error });

  await server.connect(transport);
  const onTransportClose = transport.onclose;
  transport.onclose = () => {
    onTransportClose?.();
    close().catch((error) => logger.error('shutdown failed', { error }));
  };
  logger.info('mcp stdio session ready', {
    mode: running ? 'listening' : 'attached',
    webhook: running ? `${running.url}/stripe/webhook` : null,
  });

  return {
    mode: running ? 'listening' : 'attached',
    url: running?.url ?? null,
    close,
    closed,
  };
}

/**
 * In stdio mode a stray byte on stdout breaks the client, so console output of any library goes
 * to stderr instead.
 */
export function keepStdoutForJsonRpc(): void {
  const toStderr = (...data: unknown[]) => {
    process.stderr.write(format(...data) + '\n');
  };
  for (const method of ['log', 'info', 'debug'] as const) console[method] = toStderr;
}

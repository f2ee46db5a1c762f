import crypto from 'node:crypto';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import { ConfigError } from '../errors.js';
import { createRequestGuard, hasBearerToken, isLoopbackHost, sameToken } from '../http-guard.js';
import { createRefusalLog } from '../refusal-log.js';
import {
  ADMIN,
  createActorResolver,
  type Actor,
  type ActorResolver,
} from '../operations/people.js';

// Kept here too: /mcp's users (and tests) found them here first.
export { createRequestGuard, hasBearerToken, isLoopbackHost, sameToken };
export type { RequestGuard } from '../http-guard.js';
import type { McpContext } from './handlers.js';
import { ChangeHub } from './notifications.js';
import { createMcpServer } from './server.js';
import { leanNotifications } from './lean-notify.js';

export const MCP_PATH = '/mcp';
/** About 80 KB of heap each (an McpServer with its tools, and a transport): ~80 MB at the cap. */
export const DEFAULT_MAX_SESSIONS = 1000;
const BODY_LIMIT = '4mb';

export interface McpHttpOptions extends McpContext {
  /** The interface the server binds: loopback binds accept localhost Hosts and Origins. */
  host: string;
  /** MCP_AUTH_TOKEN; null when unset (only allowed on a loopback bind). */
  authToken: string | null;
  allowedHosts?: readonly string[];
  allowedOrigins?: readonly string[];
  /** A session with no open request and no request for this long is closed. */
  idleTimeoutMs: number;
  /** At the cap a new session closes the least recently used idle one (--mcp-max-sessions). */
  maxSessions?: number;
  /**
   * Who a bearer token names (operations/people.ts): MCP_AUTH_TOKEN or a person of the store. By
   * default the administrator's token only.
   */
  actors?: ActorResolver;
}

export interface McpHttpHandler {
  /** Serves `/mcp`; mount it on the app (it parses JSON on `/mcp` only). */
  router: express.Router;
  readonly sessionCount: number;
  /** Whether a session has its GET event stream open: notifications reach it from then on. */
  hasEventStream(sessionId: string): boolean;
  /** Ends every session (their event streams close), stops the idle sweep. */
  close(): Promise<void>;
}

interface Session {
  id: string;
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  /** Requests and event streams still open. */
  open: number;
  /** POST and DELETE requests still being answered (event streams not counted). */
  requests: number;
  lastActive: number;
  /** Rises with every request and every end of one: the least recently used has the lowest. */
  used: number;
  /** GET event streams still open. */
  streams: Set<ServerResponse>;
  /** Who opened it: every later request must present a token naming the same actor. */
  actor: Actor;
}

/** The shortest MCP_AUTH_TOKEN accepted off loopback (`openssl rand -hex 32` gives 64). */
export const MIN_TOKEN_LENGTH = 32;

/**
 * `/mcp`, `/metrics` and the console are reachable from the network whenever the bind is not
 * loopback, so they must not be open, nor guarded by a token short enough to guess: refuse to
 * start without MCP_AUTH_TOKEN, or with one under MIN_TOKEN_LENGTH characters, then (the CLI exits
 * 2). On loopback only this machine can reach them, and a short token stays allowed.
 */
export function assertMcpAccess(config: { host: string; mcpAuthToken: string | null }): void {
  if (isLoopbackHost(config.host)) return;
  const token = config.mcpAuthToken;
  if (!token) {
    throw new ConfigError(
      'MCP_AUTH_TOKEN',
      `is required when --host / HOST is ${JSON.stringify(config.host)}, which is not a loopback address: /mcp would be open to the network. Fix: set MCP_AUTH_TOKEN to a long random value (e.g. \`openssl rand -hex 32\`) and send it as "Authorization: Bearer <token>", or bind --host 127.0.0.1.`,
    );
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    // The length only: the token itself never goes into a message.
    throw new ConfigError(
      'MCP_AUTH_TOKEN',
      `is ${token.length} characters long, and --host / HOST is ${JSON.stringify(config.host)}, which is not a loopback address: off loopback the token guards /mcp, /metrics and the console from the network and must be at least ${MIN_TOKEN_LENGTH} characters. Fix: set a long random one, e.g. MCP_AUTH_TOKEN=$(openssl rand -hex 32), or bind --host 127.0.0.1.`,
    );
  }
}

function rpcError(res: Response, status: number, code: number, message: string): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });
}

/**
 * MCP Streamable HTTP at `/mcp`: stateful sessions (session id → transport + McpServer), so
 * notifications reach each client over its GET event stream. Every request passes, in order:
 * Host and Origin checks (DNS rebinding: 403), the bearer token when one is set (401), then a
 * JSON body parser scoped to this path (the webhook route must keep its raw bytes).
 */
export function createMcpHttpHandler(options: McpHttpOptions): McpHttpHandler {
  const { logger } = options;
  const maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  const sessions = new Map<string, Session>();
  const hub = new ChangeHub(options.buffer, options.catalog, logger);
  let sweep: NodeJS.Timeout | undefined;
  let closed = false;
  let clock = 0;
  /** Initialize requests being answered: each may add a session. */
  let opening = 0;

  const guard = createRequestGuard(options);
  const refusals = createRefusalLog(logger, {
    summary: 'mcp requests refused (more, not logged one by one)',
  });
  const checkHost = (req: Request, res: Response, next: NextFunction) => {
    if (!guard.hostAllowed(req.headers.host)) {
      refusals.refused('mcp request refused: Host not allowed', 'host_not_allowed', {
        host: req.headers.host ?? null,
        ip: req.socket.remoteAddress,
      });
      rpcError(
        res,
        403,
        -32000,
        `Forbidden: Host ${JSON.stringify(req.headers.host ?? '')} is not allowed (DNS rebinding protection). Connect through localhost or 127.0.0.1, or add the name to MCP_ALLOWED_HOSTS.`,
      );
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !guard.originAllowed(origin)) {
      refusals.refused('mcp request refused: Origin not allowed', 'origin_not_allowed', {
        origin,
        ip: req.socket.remoteAddress,
      });
      rpcError(
        res,
        403,
        -32000,
        `Forbidden: Origin ${JSON.stringify(origin)} is not allowed. Browser pages may call /mcp only from an origin listed in MCP_ALLOWED_ORIGINS.`,
      );
      return;
    }
    next();
  };

  const actors =
    options.actors ?? createActorResolver({ adminToken: options.authToken, people: null });

  /**
   * The bearer token, when one is required (MCP_AUTH_TOKEN set, or someone added with `people
   * add`): it must name the administrator or a person (401 otherwise). Who it names is kept in
   * res.locals.actor for the session.
   */
  const checkToken = async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization ?? '';
    try {
      if (!(await actors.authRequired())) {
        res.locals.actor = ADMIN;
        next();
        return;
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const actor = match?.[1] === undefined ? null : await actors.resolve(match[1]);
      if (actor !== null) {
        res.locals.actor = actor;
        next();
        return;
      }
    } catch (error) {
      logger.warn('mcp request refused: the store did not answer who the token names', { error });
      rpcError(res, 503, -32000, 'The event store is unavailable; try again in a few seconds.');
      return;
    }
    res.setHeader(
      'WWW-Authenticate',
      header
        ? 'Bearer realm="stripe-events-mcp", error="invalid_token"'
        : 'Bearer realm="stripe-events-mcp"',
    );
    rpcError(
      res,
      401,
      -32000,
      header
        ? 'Unauthorized: the bearer token names nobody here: it is neither MCP_AUTH_TOKEN nor a token `people add` printed.'
        : 'Unauthorized: send "Authorization: Bearer <token>" with your token (`people add` printed it) or MCP_AUTH_TOKEN.',
    );
  };

  const touch = (session: Session) => {
    session.lastActive = Date.now();
    session.used = ++clock;
  };

  const track = (session: Session, res: Response, stream = false) => {
    session.open += 1;
    if (stream) session.streams.add(res);
    else session.requests += 1;
    touch(session);
    res.on('close', () => {
      session.open -= 1;
      if (stream) session.streams.delete(res);
      else session.requests -= 1;
      touch(session);
    });
  };

  /**
   * Which session to close to make room: one that is answering no request, preferring one with
   * no event stream open either (nobody is listening to it), least recently used first. A session
   * answering a request is never closed under it. Undefined when every session is busy.
   */
  const evictable = (): Session | undefined => {
    let victim: Session | undefined;
    const rank = (s: Session) => (s.streams.size > 0 ? 1 : 0);
    for (const session of sessions.values()) {
      if (session.requests > 0) continue;
      if (
        !victim ||
        rank(session) < rank(victim) ||
        (rank(session) === rank(victim) && session.used < victim.used)
      ) {
        victim = session;
      }
    }
    return victim;
  };

  /**
   * Closes a session properly: its transport (its event stream ends; its next request is
   * answered 404, so its client initializes again), its McpServer (it leaves the change hub),
   * and its subscriptions.
   */
  const evict = (session: Session) => {
    sessions.delete(session.id);
    logger.info('mcp session closed to make room for a new one', {
      session: session.id,
      idleSeconds: Math.round((Date.now() - session.lastActive) / 1000),
      eventStream: session.streams.size > 0,
      maxSessions,
    });
    void session.transport.close().catch((error: unknown) => {
      logger.warn('mcp session did not close cleanly', { session: session.id, error });
    });
  };

  const startSweep = () => {
    if (sweep) return;
    const every = Math.max(10, Math.min(60_000, Math.floor(options.idleTimeoutMs / 2)));
    sweep = setInterval(() => {
      const cutoff = Date.now() - options.idleTimeoutMs;
      for (const session of sessions.values()) {
        if (session.open === 0 && session.lastActive < cutoff) {
          logger.info('mcp session closed after being idle', { session: session.id });
          void session.transport.close();
        }
      }
    }, every);
    sweep.unref();
  };

  const stopSweepIfIdle = () => {
    if (sessions.size === 0 && sweep) {
      clearInterval(sweep);
      sweep = undefined;
    }
  };

  const open = async (req: Request, res: Response) => {
    // A client without a token on a loopback bind can open sessions as fast as it likes: at the
    // cap the least recently used idle session gives way, so nobody is locked out for long.
    // Initializations under way hold a place too, so concurrent ones cannot overshoot the cap.
    while (sessions.size + opening >= maxSessions) {
      const victim = opening < maxSessions ? evictable() : undefined;
      if (!victim) {
        rpcError(
          res,
          503,
          -32000,
          `Too many open MCP sessions (${maxSessions}, --mcp-max-sessions), each answering a request right now; try again in a moment.`,
        );
        return;
      }
      evict(victim);
    }
    opening += 1;
    let reserved = true;
    const release = () => {
      if (reserved) opening -= 1;
      reserved = false;
    };
    const actor = res.locals.actor as Actor;
    const server = createMcpServer({ ...options, hub, actor });
    let session: Session | undefined;
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id) => {
        release();
        session = {
          id,
          transport,
          server,
          open: 0,
          requests: 0,
          lastActive: Date.now(),
          used: ++clock,
          streams: new Set(),
          actor,
        };
        sessions.set(id, session);
        track(session, res);
        startSweep();
        logger.debug('mcp session opened', { session: id });
      },
    });
    leanNotifications(transport);
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id !== undefined && sessions.get(id)?.transport === transport) {
        sessions.delete(id);
        logger.debug('mcp session closed', { session: id });
        stopSweepIfIdle();
      }
    };
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } finally {
      release();
    }
    if (!session) await server.close();
  };

  const handle = async (req: Request, res: Response) => {
    if (closed) {
      rpcError(res, 503, -32000, 'The server is shutting down.');
      return;
    }
    const header = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(header) ? header[0] : header;
    if (sessionId) {
      const session = sessions.get(sessionId);
      if (!session) {
        rpcError(
          res,
          404,
          -32001,
          'Session not found: it ended, expired, was closed to make room for newer sessions, or never existed. Start a new session (initialize without an Mcp-Session-Id header).',
        );
        return;
      }
      // A session id is not a credential: the token sent with it must name whoever opened it.
      const actor = res.locals.actor as Actor;
      if (actor.name !== session.actor.name || actor.role !== session.actor.role) {
        rpcError(
          res,
          403,
          -32000,
          'Forbidden: this session was opened with another token. Start a new session (initialize without an Mcp-Session-Id header).',
        );
        return;
      }
      track(session, res, req.method === 'GET');
      await session.transport.handleRequest(req, res, req.body);
      return;
    }
    if (req.method === 'POST' && isInitializeRequest(req.body)) {
      await open(req, res);
      return;
    }
    rpcError(
      res,
      400,
      -32000,
      'Bad Request: no Mcp-Session-Id header. Start with an initialize request, then send its Mcp-Session-Id with every request.',
    );
  };

  const router = express.Router();
  router.all(
    MCP_PATH,
    checkHost,
    checkToken,
    (req: Request, res: Response, next: NextFunction) => {
      if (req.method === 'GET' || req.method === 'POST' || req.method === 'DELETE') {
        next();
        return;
      }
      res.setHeader('Allow', 'GET, POST, DELETE');
      rpcError(res, 405, -32000, 'Method not allowed: use POST, GET or DELETE.');
    },
    express.json({ limit: BODY_LIMIT }),
    async (req: Request, res: Response) => {
      try {
        await handle(req, res);
      } catch (error) {
        logger.error('mcp request failed', { error });
        if (!res.headersSent) rpcError(res, 500, -32603, 'Internal server error');
      }
    },
  );
  router.use(
    MCP_PATH,
    (error: Error & { type?: string }, _req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) {
        next(error);
        return;
      }
      if (error.type === 'entity.too.large') {
        rpcError(res, 413, -32600, `Request body over ${BODY_LIMIT}.`);
        return;
      }
      rpcError(res, 400, -32700, 'Parse error: the body is not valid JSON.');
    },
  );

  return {
    router,
    get sessionCount() {
      return sessions.size;
    },
    hasEventStream(sessionId) {
      const session = sessions.get(sessionId);
      if (!session) return false;
      return [...session.streams].some((r) => r.headersSent && !r.writableEnded);
    },
    async close() {
      closed = true;
      if (sweep) clearInterval(sweep);
      sweep = undefined;
      refusals.flush();
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.allSettled(all.map((s) => s.transport.close()));
    },
  };
}

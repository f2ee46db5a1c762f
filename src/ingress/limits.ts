import http from 'node:http';
import type { IncomingMessage, RequestListener } from 'node:http';

import type { ListenerLimits } from '../config/limits.js';

export { LIMIT_DEFAULTS, type ListenerLimits } from '../config/limits.js';

/**
 * Bodies up to this size are always admitted: a Stripe event is a few KiB, so a legitimate event
 * still gets in while large stalled bodies hold the whole budget. They are bounded by the
 * connection cap instead (1024 × 64 KiB = 64 MiB by default).
 */
export const SMALL_BODY_BYTES = 64 * 1024;

/** How often Node checks the timeouts: its default (30 s) lets a stalled request live ~60 s. */
const TIMEOUT_CHECK_MS = 1_000;

/** An `http.Server` for `listener` with the timeouts and the connection cap applied. */
export function createLimitedServer(
  limits: Pick<ListenerLimits, 'headersTimeoutMs' | 'requestTimeoutMs' | 'maxConnections'>,
  listener: RequestListener,
  onDrop?: () => void,
): http.Server {
  const server = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
    },
    listener,
  );
  // Past the cap Node closes the new socket before any byte is read (the 'drop' event).
  server.maxConnections = limits.maxConnections;
  if (onDrop) server.on('drop', onDrop);
  return server;
}

/**
 * The bytes of webhook bodies held before their signature is checked. A body reserves its
 * declared Content-Length (the body parser refuses more than declared), or --max-body when it
 * declares none, from the moment it starts arriving until its answer is sent.
 */
export class BodyBudget {
  private held = 0;

  constructor(
    private readonly capBytes: number,
    private readonly maxBodyBytes: number,
  ) {}

  /** Bytes reserved by large bodies right now. */
  get heldBytes(): number {
    return this.held;
  }

  /**
   * Reserves room for `req`'s body. Returns the function that gives it back (call it once the
   * answer is sent), or null when the budget is spent and the request should be answered 503.
   */
  reserve(req: IncomingMessage): (() => void) | null {
    const declared = declaredLength(req);
    // Over --max-body: the body parser answers 413 without reading it.
    if (declared !== null && declared > this.maxBodyBytes) return () => {};
    const size = declared ?? this.maxBodyBytes;
    if (size <= SMALL_BODY_BYTES) return () => {};
    if (this.held + size > this.capBytes) return null;
    this.held += size;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= size;
    };
  }
}

function declaredLength(req: IncomingMessage): number | null {
  const raw = req.headers['content-length'];
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) return null;
  return Number(raw);
}

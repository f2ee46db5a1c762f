import http from 'node:http';
import type { IncomingMessage, RequestListener } from 'node:http';

/**
 * What one HTTP listener lets strangers hold: connections, time to send a request, and bytes of
 * webhook bodies not yet verified. Without these, 300 clients that each declare a 2 MiB body, send
 * half and stall, hold ~300 MB forever.
 */
export interface ListenerLimits {
  /** The request line and headers must arrive within this (--headers-timeout). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (--request-timeout). */
  requestTimeoutMs: number;
  /** Open connections at once; past it new ones are closed at once (--max-connections). */
  maxConnections: number;
  /** Bytes of large webhook bodies being received or verified at once (--max-body-memory). */
  maxBodyMemoryBytes: number;
}

export const LIMIT_DEFAULTS = {
  // Stripe gives up on a delivery after 30 s; its headers arrive in well under a second.
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 1024,
  maxBodyMemoryBytes: 64 * 1024 * 1024,
} as const;

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

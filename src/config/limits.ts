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

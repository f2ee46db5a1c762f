import crypto from 'node:crypto';
import net from 'node:net';

/**
 * The rules every HTTP door that changes state applies (/mcp, /metrics, /healthz's counts, the
 * console): is the bind loopback, does the Host name this server (DNS rebinding), is the browser
 * Origin one we trust, does the request carry the bearer token. Shared by mcp/ and console/, which
 * may not import each other.
 */

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return net.isIPv4(h.slice(7)) && h.slice(7).startsWith('127.');
  return false;
}

function hostnameOf(hostHeader: string): string | null {
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}

/** Constant-time comparison of two tokens of any length (hashed first: equal lengths). */
export function sameToken(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

/** Whether an Authorization header carries `Bearer <expected>` (for /mcp, /metrics, /healthz). */
export function hasBearerToken(header: string | undefined, expected: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1] !== undefined && sameToken(match[1], expected);
}

export interface RequestGuard {
  /** The Host header names this server (DNS rebinding protection). */
  hostAllowed(hostHeader: string | undefined): boolean;
  /** A browser Origin allowed to call: MCP_ALLOWED_ORIGINS, or localhost on a loopback bind. */
  originAllowed(origin: string): boolean;
}

/** The Host and Origin rules of `/mcp`, shared with the console (src/console/). */
export function createRequestGuard(options: {
  host: string;
  allowedHosts?: readonly string[];
  allowedOrigins?: readonly string[];
}): RequestGuard {
  const loopback = isLoopbackHost(options.host);
  const allowedHosts = new Set(
    [...(loopback ? LOOPBACK_NAMES : []), ...(options.allowedHosts ?? [])].map((h) =>
      h.toLowerCase(),
    ),
  );
  const allowedOrigins = new Set((options.allowedOrigins ?? []).map((o) => o.toLowerCase()));
  return {
    hostAllowed(hostHeader) {
      // On a non-loopback bind without MCP_ALLOWED_HOSTS any name may reach the server (a proxy
      // in front decides); the bearer token is required there.
      if (allowedHosts.size === 0) return true;
      const host = hostnameOf(hostHeader ?? '');
      return host !== null && allowedHosts.has(host);
    },
    originAllowed(origin) {
      if (allowedOrigins.has(origin.toLowerCase())) return true;
      const host =
        origin === 'null' ? null : hostnameOf(origin.replace(/^[a-z][a-z0-9+.-]*:\/\//i, ''));
      return (
        loopback && host !== null && /^https?:\/\//i.test(origin) && LOOPBACK_NAMES.includes(host)
      );
    },
  };
}

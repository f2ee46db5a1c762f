import crypto from 'node:crypto';
import net from 'node:net';

/**
 * The rules every HTTP door applies (/mcp, /metrics, /healthz, the console): is the bind loopback,
 * does the Host name this server (DNS rebinding), is the browser Origin one we trust (and, for the
 * console's state changes, is it the console's own), does the request carry the bearer token.
 * Shared by mcp/, console/ and http-app.ts, which may not import each other.
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
  /** The origin is listed in MCP_ALLOWED_ORIGINS (exactly; no loopback allowance). */
  originListed(origin: string): boolean;
}

/**
 * The origin (`scheme://host[:port]`, lower-case, default port dropped) of a URL, as a browser
 * serializes it in the Origin header; null for anything else (`null`, a path, garbage). Both
 * sides of a comparison go through it, so `HTTP://LocalHost:80` equals `http://localhost`.
 */
export function originOf(url: string): string | null {
  if (!/^https?:\/\//i.test(url)) return null;
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? null : origin;
  } catch {
    return null;
  }
}

/** Where a state-changing request says it comes from, and whether that may change state. */
export type RequestSource =
  | { allowed: true }
  | {
      allowed: false;
      /** `foreign`: a header names another origin or site; `unknown`: no header says. */
      why: 'foreign' | 'unknown';
      /** The header that decided and what it said (for the log and the refusal), if any. */
      header?: 'origin' | 'sec-fetch-site' | 'referer';
      value?: string;
    };

/**
 * Whether a state-changing request comes from `own` origin (or one `listed`), by what the browser
 * says: the Origin header when there is one (browsers send it on every POST); else
 * `Sec-Fetch-Site` (a header scripts cannot set); else the Referer's origin; else it is refused.
 * A header that is present decides: a foreign Origin is not rescued by a same-origin Referer.
 * SameSite cookies cannot do this: every port of a host is the same site, so a page served on
 * another local port would carry the console's cookie.
 */
export function requestSource(
  headers: { origin?: string; 'sec-fetch-site'?: string | string[]; referer?: string },
  own: string,
  listed: (origin: string) => boolean,
): RequestSource {
  const ownOrigin = originOf(own);
  const ok = (origin: string | null) => origin !== null && (origin === ownOrigin || listed(origin));
  if (headers.origin !== undefined) {
    return ok(originOf(headers.origin))
      ? { allowed: true }
      : { allowed: false, why: 'foreign', header: 'origin', value: headers.origin };
  }
  const site = headers['sec-fetch-site'];
  if (site !== undefined) {
    const value = Array.isArray(site) ? site.join(', ') : site;
    return value.trim().toLowerCase() === 'same-origin'
      ? { allowed: true }
      : { allowed: false, why: 'foreign', header: 'sec-fetch-site', value };
  }
  if (headers.referer !== undefined) {
    const origin = originOf(headers.referer);
    // Only the Referer's origin is kept: its path and query are none of the log's business.
    return ok(origin)
      ? { allowed: true }
      : { allowed: false, why: 'foreign', header: 'referer', value: origin ?? 'null' };
  }
  return { allowed: false, why: 'unknown' };
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
  // The same list as browsers serialize origins (default port dropped, no trailing slash).
  const listedOrigins = new Set(
    (options.allowedOrigins ?? []).map((o) => originOf(o)).filter((o): o is string => o !== null),
  );
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
    originListed(origin) {
      const normal = originOf(origin);
      return (
        allowedOrigins.has(origin.toLowerCase()) || (normal !== null && listedOrigins.has(normal))
      );
    },
  };
}

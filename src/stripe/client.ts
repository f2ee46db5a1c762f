import Stripe from 'stripe';
import { ConfigError } from '../errors.js';

/**
 * The Stripe API client for pulling events (backfill). Only this file and verify.ts construct
 * stripe-node objects; nothing here does I/O until a request is made.
 */
export interface StripeApiSettings {
  /** STRIPE_SECRET_KEY (sk_… or rk_…); null when not set. Never logged or printed. */
  secretKey: string | null;
  /** STRIPE_API_BASE: another API origin (stripe-mock, a test fake); null for api.stripe.com. */
  apiBase: string | null;
}

export const SECRET_KEY_SETTING = 'STRIPE_SECRET_KEY';
export const API_BASE_SETTING = 'STRIPE_API_BASE';

/** Retries stripe-node makes itself (connection errors, 409, 5xx, Stripe-Should-Retry). */
export const DEFAULT_NETWORK_RETRIES = 3;

/** Checks STRIPE_API_BASE: an http(s) origin, e.g. http://127.0.0.1:12111. */
export function parseApiBase(raw: string): URL {
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    url = null;
  }
  if (
    !url ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.hostname === '' ||
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    const shown = url ? `a URL with the scheme ${url.protocol} or a path` : 'not a URL';
    throw new ConfigError(
      API_BASE_SETTING,
      `is ${shown}, not an API origin. Fix: set it like http://127.0.0.1:12111 (scheme, host and port only), or unset it to use api.stripe.com.`,
    );
  }
  return url;
}

/** Checks STRIPE_SECRET_KEY's form; the message shows at most its prefix, never the key. */
export function checkSecretKey(raw: string): string {
  const key = raw.trim();
  if (key !== raw || !/^(sk|rk)_\S+$/.test(key)) {
    const shown =
      key === ''
        ? 'empty'
        : key !== raw
          ? 'surrounded by whitespace'
          : `a value starting ${JSON.stringify(key.slice(0, 3))}`;
    throw new ConfigError(
      SECRET_KEY_SETTING,
      `is ${shown}, not a Stripe secret key. Fix: use a secret (sk_…) or restricted (rk_…, with read access to Events) API key from Dashboard → Developers → API keys.`,
    );
  }
  return key;
}

/** Reads STRIPE_SECRET_KEY and STRIPE_API_BASE; a bad value is a ConfigError (exit 2). */
export function loadStripeApiSettings(env: NodeJS.ProcessEnv = process.env): StripeApiSettings {
  const rawKey = env[SECRET_KEY_SETTING];
  const rawBase = env[API_BASE_SETTING]?.trim();
  return {
    secretKey: rawKey === undefined || rawKey === '' ? null : checkSecretKey(rawKey),
    apiBase: rawBase ? parseApiBase(rawBase).origin : null,
  };
}

export interface ClientOptions {
  secretKey: string;
  apiBase?: string | null;
  maxNetworkRetries?: number;
  /** Per request, ms (stripe-node's default is 80 s). */
  timeoutMs?: number;
}

/** A stripe-node client, pointed at STRIPE_API_BASE through its host/port/protocol options. */
export function createStripeClient(options: ClientOptions): Stripe {
  const config: Stripe.StripeConfig = {
    maxNetworkRetries: options.maxNetworkRetries ?? DEFAULT_NETWORK_RETRIES,
    timeout: options.timeoutMs ?? 30_000,
    appInfo: { name: 'stripe-events-mcp' },
  };
  if (options.apiBase) {
    const url = parseApiBase(options.apiBase);
    config.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    config.protocol = url.protocol === 'http:' ? 'http' : 'https';
    config.port = url.port === '' ? (url.protocol === 'http:' ? 80 : 443) : Number(url.port);
  }
  return new Stripe(options.secretKey, config);
}

/** A message safe to print: Stripe's own, with the key removed should it appear in it. */
export function stripeErrorMessage(error: unknown, secretKey: string | null): string {
  let message = error instanceof Error ? error.message : String(error);
  if (secretKey) message = message.split(secretKey).join('[redacted]');
  const e = error as { statusCode?: unknown; type?: unknown };
  const status = typeof e.statusCode === 'number' ? ` (HTTP ${e.statusCode})` : '';
  return `${message}${status}`;
}

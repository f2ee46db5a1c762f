/**
 * REDIS_URL as the store reads it: a plain `redis://` / `rediss://` URL (one address), or
 * `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/<master-name>[/<db>]`, a set of
 * Sentinels that name the current primary (the credentials are the primary's; Sentinel port
 * 26379 by default). Plain data here: the Redis client is made in redis/connection.ts.
 */
export type RedisTarget =
  | { kind: 'url'; url: string }
  | {
      kind: 'sentinel';
      sentinels: { host: string; port: number }[];
      name: string;
      username?: string;
      password?: string;
      db: number;
    };

const SENTINEL_SCHEME = 'redis+sentinel://';
const SENTINEL_URL =
  /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^@/]+)\/([^/?#]+)(?:\/(\d{1,2}))?\/?$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/;

/** The target of a REDIS_URL, or null when it is neither form (the message must not echo it). */
export function parseRedisTarget(raw: string): RedisTarget | null {
  if (raw.startsWith(SENTINEL_SCHEME)) {
    const m = SENTINEL_URL.exec(raw);
    if (!m) return null;
    const sentinels: { host: string; port: number }[] = [];
    for (const part of m[3]!.split(',')) {
      const hp = HOST_PORT.exec(part.trim());
      const port = Number(hp?.[2] ?? 26379);
      if (!hp || port < 1 || port > 65535) return null;
      sentinels.push({ host: hp[1]!.replace(/^\[|\]$/g, ''), port });
    }
    try {
      return {
        kind: 'sentinel',
        sentinels,
        name: decodeURIComponent(m[4]!),
        ...(m[1] ? { username: decodeURIComponent(m[1]) } : {}),
        ...(m[2] ? { password: decodeURIComponent(m[2]) } : {}),
        db: Number(m[5] ?? 0),
      };
    } catch {
      return null;
    }
  }
  try {
    const url = new URL(raw);
    if ((url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '') {
      return { kind: 'url', url: raw };
    }
  } catch {
    // not a URL
  }
  return null;
}

/** The URL without its password, for logs and error messages. */
export function redactRedisUrl(url: string): string {
  if (url.startsWith(SENTINEL_SCHEME)) {
    return parseRedisTarget(url)
      ? url.replace(/^(redis\+sentinel:\/\/[^:@/]*:)[^@/]*@/, '$1***@').replace(/\/$/, '')
      : '(an invalid URL)';
  }
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(an invalid URL)';
  }
}

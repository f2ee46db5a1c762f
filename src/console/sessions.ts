import crypto from 'node:crypto';

export const SESSION_COOKIE = 'sem_console';

/**
 * Console sign-ins: a random id per sign-in, kept here, sent as an HttpOnly SameSite=Strict
 * cookie. The cookie is never the token itself, so a leaked cookie dies with its session and the
 * token never sits in a browser. Bounded (the oldest sign-in goes first) and expiring.
 */
export class Sessions {
  private readonly expiries = new Map<string, number>();

  constructor(
    readonly ttlMs = 12 * 60 * 60 * 1000,
    private readonly max = 1000,
  ) {}

  get size(): number {
    return this.expiries.size;
  }

  create(now = Date.now()): string {
    const id = crypto.randomBytes(32).toString('base64url');
    while (this.expiries.size >= this.max) {
      const oldest = this.expiries.keys().next().value as string;
      this.expiries.delete(oldest);
    }
    this.expiries.set(id, now + this.ttlMs);
    return id;
  }

  valid(id: string | undefined, now = Date.now()): boolean {
    if (!id) return false;
    const expires = this.expiries.get(id);
    if (expires === undefined) return false;
    if (expires <= now) {
      this.expiries.delete(id);
      return false;
    }
    return true;
  }

  end(id: string | undefined): void {
    if (id) this.expiries.delete(id);
  }
}

/** One cookie's value from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

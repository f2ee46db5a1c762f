import crypto from 'node:crypto';
import { ADMIN, type Actor } from '../operations/people.js';

export const SESSION_COOKIE = 'sem_console';

/**
 * Console sign-ins: a random id per sign-in, kept here, sent as an HttpOnly SameSite=Strict
 * cookie. The cookie is never the token itself, so a leaked cookie dies with its session and the
 * token never sits in a browser. Bounded (the oldest sign-in goes first) and expiring. Each
 * session remembers who signed in (the administrator or a person), so every change made through it
 * is recorded under that name and checked against that role.
 */
export interface SessionEntry {
  expires: number;
  actor: Actor;
  tokenHash: string | null;
}

export class Sessions {
  private readonly expiries = new Map<string, SessionEntry>();

  constructor(
    readonly ttlMs = 12 * 60 * 60 * 1000,
    private readonly max = 1000,
  ) {}

  get size(): number {
    return this.expiries.size;
  }

  /**
   * A new session for `actor`; `tokenHash` is the person's (null for the administrator), kept so
   * each request can check the person still exists (removed people lose their sessions too).
   */
  create(now = Date.now(), actor: Actor = ADMIN, tokenHash: string | null = null): string {
    const id = crypto.randomBytes(32).toString('base64url');
    while (this.expiries.size >= this.max) {
      const oldest = this.expiries.keys().next().value as string;
      this.expiries.delete(oldest);
    }
    this.expiries.set(id, { expires: now + this.ttlMs, actor, tokenHash });
    return id;
  }

  /** Who signed in with this session, or null when it is unknown or expired. */
  get(id: string | undefined, now = Date.now()): SessionEntry | null {
    if (!id) return null;
    const session = this.expiries.get(id);
    if (session === undefined) return null;
    if (session.expires <= now) {
      this.expiries.delete(id);
      return null;
    }
    return session;
  }

  valid(id: string | undefined, now = Date.now()): boolean {
    return this.get(id, now) !== null;
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

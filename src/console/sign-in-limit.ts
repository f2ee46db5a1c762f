import net from 'node:net';
import { LRUCache } from 'lru-cache';

/**
 * How many wrong tokens a client may send, and how much memory remembering that may take. Before
 * this, one client was answered 2 378 guesses a second; now it gets `failures` per `windowMs`.
 */
export const SIGN_IN_LIMIT = {
  /** Wrong tokens a client may send in one window; the next sign-in in the window gets 429. */
  failures: 5,
  /** The window starts at a client's first attempt after a clean slate (start, or a success). */
  windowMs: 15 * 60 * 1000,
  /**
   * Clients remembered at once (least recently seen forgotten first): a stranger with many
   * addresses cannot grow the memory past this (measured: about 2.6 MB full).
   */
  maxClients: 10_000,
} as const;

export interface SignInLimitOptions {
  failures?: number;
  windowMs?: number;
  maxClients?: number;
  /** The clock (ms); tests pass their own instead of waiting 15 minutes. */
  now?: () => number;
}

interface ClientRecord {
  /** Attempts counted in this window (a right token clears them). */
  attempts: number;
  /** When the window began: the first attempt since the slate was clean. */
  since: number;
}

/**
 * Sign-in attempts per client at the console. Each attempt is counted before its token is looked
 * at (attempt), and a right token clears the client's count (succeeded): so a wrong one stays
 * counted, and a client firing many attempts at once cannot slip them all past the limit while
 * their bodies are still being read. A client with `failures` attempts counted within `windowMs`
 * of its first is refused, its token not looked at, until that window ends. Remembered in an LRU
 * of at most `maxClients`.
 */
export class SignInLimiter {
  private readonly clients: LRUCache<string, ClientRecord>;
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(options: SignInLimitOptions = {}) {
    this.limit = options.failures ?? SIGN_IN_LIMIT.failures;
    this.windowMs = options.windowMs ?? SIGN_IN_LIMIT.windowMs;
    this.now = options.now ?? Date.now;
    this.clients = new LRUCache({ max: options.maxClients ?? SIGN_IN_LIMIT.maxClients });
  }

  /** Clients remembered now. */
  get size(): number {
    return this.clients.size;
  }

  /** The client's record, or undefined once its window has ended (then it is forgotten). */
  private current(client: string): ClientRecord | undefined {
    // get, not peek: a client that keeps knocking while limited stays the most recently seen, so
    // other addresses' traffic does not push its record out and wipe its count.
    const record = this.clients.get(client);
    if (record && this.now() >= record.since + this.windowMs) {
      this.clients.delete(client);
      return undefined;
    }
    return record;
  }

  /** Whole seconds until `client` may try a token again; 0 when it may try now. */
  retryAfter(client: string): number {
    const record = this.current(client);
    if (!record || record.attempts < this.limit) return 0;
    return Math.max(1, Math.ceil((record.since + this.windowMs - this.now()) / 1000));
  }

  /**
   * A sign-in attempt from `client`, about to have its token checked: counted, and 0 returned;
   * or, when the client is limited, nothing counted and the seconds until it may try again.
   */
  attempt(client: string): number {
    const wait = this.retryAfter(client);
    if (wait > 0) return wait;
    const record = this.current(client);
    if (record) record.attempts += 1;
    else this.clients.set(client, { attempts: 1, since: this.now() });
    return 0;
  }

  /** A right token: the client starts afresh. */
  succeeded(client: string): void {
    this.clients.delete(client);
  }
}

/**
 * Whom a sign-in attempt is counted against: the socket's remote address. An IPv6 client counts
 * by its /64 (one host is usually given a whole /64, so counting single addresses would hand it
 * 2^64 × 5 guesses); IPv4-mapped IPv6 as the IPv4 address. Behind a reverse proxy every client is
 * the proxy's address and shares one count (docs/CONSOLE.md).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const a = address.toLowerCase().replace(/%.*$/, '');
  if (a.startsWith('::ffff:') && net.isIPv4(a.slice(7))) return a.slice(7);
  if (!net.isIPv6(a)) return a;
  const [head = '', tail] = a.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const width = (list: string[]) => list.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const full = [
    ...left,
    ...Array<string>(Math.max(0, 8 - width(left) - width(right))).fill('0'),
    ...right,
  ];
  return `${full
    .slice(0, 4)
    .map((g) => (g.includes('.') ? g : parseInt(g, 16).toString(16)))
    .join(':')}::/64`;
}

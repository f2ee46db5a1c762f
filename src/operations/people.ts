import crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { PeopleStore, PersonRole } from '../buffer/people.js';
import { sameToken } from '../http-guard.js';

/**
 * Who is asking, at every door: the administrator (MCP_AUTH_TOKEN), or a person added with
 * `people add` (buffer/people.ts), by the token they present. One resolver for the console's
 * sign-in, MCP's bearer token and the CLI's STRIPE_EVENTS_TOKEN, so the three agree on who a token
 * names and what they may do.
 */

/** `admin`: MCP_AUTH_TOKEN, or a door with no credentials required (loopback, nobody added). */
export type ActorRole = PersonRole | 'admin';

export interface Actor {
  /** The person's name; `admin` for the administrator. */
  name: string;
  role: ActorRole;
}

export const ADMIN: Actor = { name: 'admin', role: 'admin' };

/** Every person's token starts with this: recognisable in a leak scanner, and in a paste. */
export const PERSON_TOKEN_PREFIX = 'sem_p_';
/** 32 random bytes, base64url: 43 characters after the prefix. */
const TOKEN_BYTES = 32;
/** The longest token looked up (prefix + 43): a longer one names nobody, and costs no lookup. */
const MAX_PERSON_TOKEN = PERSON_TOKEN_PREFIX.length + 43;

/** How long a token's answer (a person, or nobody) is reused before the store is asked again. */
export const ACTOR_CACHE_MS = 5_000;
/** At most this many tokens' answers are remembered (least recently used go first). */
export const ACTOR_CACHE_MAX = 1_000;

export function newPersonToken(): string {
  return PERSON_TOKEN_PREFIX + crypto.randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * The stored form of a token. Unsalted SHA-256 is enough here, unlike for passwords: a token is
 * 256 random bits, so no dictionary or rainbow table covers it, and a stolen table of hashes gives
 * nothing to guess from. Unsalted is what lets a presented token be found with one indexed lookup.
 */
export function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

/** Whether `actor` may change state (approve, reject, ack, nack, replay, pause, resume, …). */
export function canChange(actor: Actor): boolean {
  return actor.role !== 'view';
}

/** The refusal a view-only person reads at every door. */
export function viewOnlyRefusal(actor: Actor): string {
  return `${actor.name} can view but not approve: nothing was changed. Someone who can approve (or the administrator) must do it.`;
}

/** The name a change is recorded under: the person's, or the door's own name for the administrator. */
export function historyName(actor: Actor, adminName: string): string {
  return actor.role === 'admin' ? adminName : actor.name;
}

export interface ActorResolver {
  /** Who `token` names, or null when it names nobody. Rejects when the store fails. */
  resolve(token: string): Promise<Actor | null>;
  /** Who the token with this hash (tokenHash()) names among the people, or null. Cached too. */
  person(hash: string): Promise<Actor | null>;
  /**
   * Whether a door must ask for a token: MCP_AUTH_TOKEN is set, or at least one person is stored
   * (naming people on a loopback bind must mean something). Cached like resolve.
   */
  authRequired(): Promise<boolean>;
}

export interface ActorResolverOptions {
  /** MCP_AUTH_TOKEN, or null. */
  adminToken: string | null;
  /** The store's people; null where the door has none (then only the administrator exists). */
  people: PeopleStore | null;
  /** ACTOR_CACHE_MS by default. */
  cacheMs?: number;
}

/**
 * The resolver. Answers are cached for `cacheMs` (bounded LRU of ACTOR_CACHE_MAX tokens), so a
 * sign-in or an MCP request costs no store round trip most of the time; the price is that a
 * removed person keeps access for at most `cacheMs` on each process, and that a newly added first
 * person makes the doors ask for tokens within `cacheMs`.
 */
export function createActorResolver(options: ActorResolverOptions): ActorResolver {
  const ttl = options.cacheMs ?? ACTOR_CACHE_MS;
  // Keyed by the token's hash: the cache holds no token either.
  const cache = new LRUCache<string, { actor: Actor | null }>({ max: ACTOR_CACHE_MAX, ttl });
  let required: { value: boolean; at: number } | null = null;
  const people = options.people;

  const person = async (hash: string): Promise<Actor | null> => {
    if (people === null) return null;
    const hit = cache.get(hash);
    if (hit) return hit.actor;
    const found = await people.byTokenHash(hash);
    const actor = found ? { name: found.name, role: found.role } : null;
    cache.set(hash, { actor });
    return actor;
  };

  return {
    async resolve(token) {
      if (token === '') return null;
      // Compared first and in constant time, as before people existed.
      if (options.adminToken !== null && sameToken(token, options.adminToken)) return ADMIN;
      if (!token.startsWith(PERSON_TOKEN_PREFIX) || token.length > MAX_PERSON_TOKEN) return null;
      return person(tokenHash(token));
    },
    person,
    async authRequired() {
      if (options.adminToken !== null) return true;
      if (people === null) return false;
      const now = Date.now();
      if (required && now - required.at < ttl) return required.value;
      const value = (await people.count()) > 0;
      required = { value, at: now };
      return value;
    },
  };
}

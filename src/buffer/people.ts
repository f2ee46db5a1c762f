import { AppError } from '../errors.js';

/**
 * The people who may use the console, MCP and the CLI under their own name
 * (`EventBuffer.people`), kept in the store every instance shares: a person added through one
 * process signs in on every other. Only a SHA-256 of each person's token is stored (see
 * operations/people.ts for why an unsalted hash is enough there), never the token.
 */

/** `view`: reads only. `approve`: every state change too (approve, reject, ack, nack, replay, pause). */
export const PERSON_ROLES = ['view', 'approve'] as const;
export type PersonRole = (typeof PERSON_ROLES)[number];

/** At most this many people per store: `add` is refused beyond it (a bound on what is stored). */
export const MAX_PEOPLE = 1000;

/** A name: a letter or digit first, then letters, digits, `.`, `_` or `-`; 64 at most. */
export const PERSON_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

export interface PersonRecord {
  name: string;
  role: PersonRole;
  /** Hex SHA-256 of the token; never the token. */
  tokenHash: string;
  /** ms since epoch */
  createdAt: number;
}

/** What `list` shows: never the hash. */
export type PersonListing = Omit<PersonRecord, 'tokenHash'>;

export class DuplicatePersonError extends AppError {
  constructor(name: string) {
    super(
      'person_exists',
      `there is already a person named ${JSON.stringify(name)}; remove them first or choose another name`,
    );
  }
}

export class TooManyPeopleError extends AppError {
  constructor() {
    super(
      'too_many_people',
      `the store holds ${MAX_PEOPLE} people already, the most it keeps; remove someone first`,
    );
  }
}

export interface PeopleStore {
  /** Adds one person, atomically: refused (DuplicatePersonError, TooManyPeopleError) with nothing stored. */
  add(person: PersonRecord): Promise<void>;
  /** Everyone, by name. */
  list(): Promise<PersonListing[]>;
  /** Removes the person; false when nobody has that name. */
  remove(name: string): Promise<boolean>;
  /** The person whose token hashes to `tokenHash`, or null. */
  byTokenHash(tokenHash: string): Promise<PersonRecord | null>;
  /** How many people are stored (0: nobody, so no door needs a person's token). */
  count(): Promise<number>;
}

export function isPersonRole(value: string): value is PersonRole {
  return (PERSON_ROLES as readonly string[]).includes(value);
}

/** Names are compared case-insensitively (`Alice` and `alice` are one person): stored lower-case. */
export function personKey(name: string): string {
  return name.toLowerCase();
}

export function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The memory store's people: for tests and `--store memory`-like uses; the same rules. */
export class MemoryPeople implements PeopleStore {
  private readonly people = new Map<string, PersonRecord>();

  async add(person: PersonRecord): Promise<void> {
    const key = personKey(person.name);
    if (this.people.has(key)) throw new DuplicatePersonError(person.name);
    if (this.people.size >= MAX_PEOPLE) throw new TooManyPeopleError();
    this.people.set(key, { ...person, name: key });
  }

  async list(): Promise<PersonListing[]> {
    return [...this.people.values()]
      .map(({ name, role, createdAt }) => ({ name, role, createdAt }))
      .sort(byName);
  }

  async remove(name: string): Promise<boolean> {
    return this.people.delete(personKey(name));
  }

  async byTokenHash(tokenHash: string): Promise<PersonRecord | null> {
    for (const person of this.people.values()) {
      if (person.tokenHash === tokenHash) return { ...person };
    }
    return null;
  }

  async count(): Promise<number> {
    return this.people.size;
  }
}

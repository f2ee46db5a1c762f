import type Database from 'better-sqlite3';
import {
  byName,
  DuplicatePersonError,
  MAX_PEOPLE,
  personKey,
  TooManyPeopleError,
  type PeopleStore,
  type PersonListing,
  type PersonRecord,
  type PersonRole,
} from '../people.js';

/**
 * Schema 7: the people table (buffer/people.ts). `token_hash` is unique and indexed: every sign-in
 * and every bearer token is one indexed lookup.
 */
export const PEOPLE_SCHEMA = `
CREATE TABLE IF NOT EXISTS people (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

interface PersonRow {
  name: string;
  role: string;
  token_hash: string;
  created_at: number;
}

function fromRow(row: PersonRow): PersonRecord {
  return {
    name: row.name,
    role: row.role as PersonRole,
    tokenHash: row.token_hash,
    createdAt: row.created_at,
  };
}

/**
 * The SQLite store's people, read and written on the main connection (as the settings are): adding
 * someone is rare, and its count-check-and-insert runs in one IMMEDIATE transaction, so two
 * processes cannot both add the 1000th person or the same name. `run` is the store's error mapping.
 */
export class SqlitePeople implements PeopleStore {
  constructor(
    private readonly db: Database.Database,
    private readonly run: <T>(fn: () => T) => T,
  ) {}

  /** A read-only open of a store from before schema 7 has no people table: nobody is stored. */
  private exists(): boolean {
    return (
      this.db
        .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'people'")
        .pluck()
        .get() !== undefined
    );
  }

  async add(person: PersonRecord): Promise<void> {
    const name = personKey(person.name);
    this.run(() =>
      this.db
        .transaction(() => {
          const taken = this.db.prepare('SELECT 1 FROM people WHERE name = ?').pluck().get(name);
          if (taken !== undefined) throw new DuplicatePersonError(person.name);
          const n = this.db.prepare('SELECT count(*) FROM people').pluck().get() as number;
          if (n >= MAX_PEOPLE) throw new TooManyPeopleError();
          this.db
            .prepare('INSERT INTO people (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)')
            .run(name, person.role, person.tokenHash, person.createdAt);
        })
        .immediate(),
    );
  }

  async list(): Promise<PersonListing[]> {
    return this.run(() => {
      if (!this.exists()) return [];
      const rows = this.db
        .prepare('SELECT name, role, created_at FROM people ORDER BY name')
        .all() as Omit<PersonRow, 'token_hash'>[];
      return rows
        .map((r) => ({ name: r.name, role: r.role as PersonRole, createdAt: r.created_at }))
        .sort(byName);
    });
  }

  async remove(name: string): Promise<boolean> {
    return this.run(
      () => this.db.prepare('DELETE FROM people WHERE name = ?').run(personKey(name)).changes > 0,
    );
  }

  async byTokenHash(tokenHash: string): Promise<PersonRecord | null> {
    return this.run(() => {
      if (!this.exists()) return null;
      const row = this.db.prepare('SELECT * FROM people WHERE token_hash = ?').get(tokenHash) as
        PersonRow | undefined;
      return row ? fromRow(row) : null;
    });
  }

  async count(): Promise<number> {
    return this.run(() =>
      this.exists() ? (this.db.prepare('SELECT count(*) FROM people').pluck().get() as number) : 0,
    );
  }
}

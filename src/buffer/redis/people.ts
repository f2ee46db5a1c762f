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
 * The Redis store's people (buffer/people.ts). Keys: `<prefix>people` (hash: name → JSON of role,
 * token hash, created) and `<prefix>people:tokens` (hash: token hash → name), changed together by
 * one Lua script each (redis/scripts.ts's calling convention: ARGV[1] the prefix, ARGV[2] now,
 * ARGV[3] the instance id), so the two never disagree and the bound holds across instances.
 */
export const PEOPLE_SCRIPTS = {
  people_add: `
local P = ARGV[1]
local name, data, hash, max = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
if redis.call('HEXISTS', P .. 'people', name) == 1 then return 'duplicate' end
if redis.call('HLEN', P .. 'people') >= max then return 'full' end
redis.call('HSET', P .. 'people', name, data)
redis.call('HSET', P .. 'people:tokens', hash, name)
return 'ok'
`,
  people_remove: `
local P = ARGV[1]
local name = ARGV[4]
local data = redis.call('HGET', P .. 'people', name)
if not data then return 0 end
local person = cjson.decode(data)
redis.call('HDEL', P .. 'people:tokens', person.tokenHash)
redis.call('HDEL', P .. 'people', name)
return 1
`,
};

export type PeopleScriptName = keyof typeof PEOPLE_SCRIPTS;

export interface PeopleRedis {
  run<T>(name: PeopleScriptName, args: string[]): Promise<T>;
  hget(key: string, field: string): Promise<string | null>;
  hgetall(key: string): Promise<Record<string, string>>;
  hlen(key: string): Promise<number>;
  key(name: string): string;
}

interface Stored {
  role: PersonRole;
  tokenHash: string;
  createdAt: number;
}

export class RedisPeople implements PeopleStore {
  constructor(private readonly redis: PeopleRedis) {}

  async add(person: PersonRecord): Promise<void> {
    const name = personKey(person.name);
    const data: Stored = {
      role: person.role,
      tokenHash: person.tokenHash,
      createdAt: person.createdAt,
    };
    const outcome = await this.redis.run<string>('people_add', [
      name,
      JSON.stringify(data),
      person.tokenHash,
      String(MAX_PEOPLE),
    ]);
    if (outcome === 'duplicate') throw new DuplicatePersonError(person.name);
    if (outcome === 'full') throw new TooManyPeopleError();
  }

  async list(): Promise<PersonListing[]> {
    const all = await this.redis.hgetall(this.redis.key('people'));
    return Object.entries(all)
      .map(([name, json]) => {
        const stored = JSON.parse(json) as Stored;
        return { name, role: stored.role, createdAt: stored.createdAt };
      })
      .sort(byName);
  }

  async remove(name: string): Promise<boolean> {
    return (await this.redis.run<number>('people_remove', [personKey(name)])) === 1;
  }

  async byTokenHash(tokenHash: string): Promise<PersonRecord | null> {
    const name = await this.redis.hget(this.redis.key('people:tokens'), tokenHash);
    if (name === null) return null;
    const json = await this.redis.hget(this.redis.key('people'), name);
    if (json === null) return null;
    const stored = JSON.parse(json) as Stored;
    // Both keys are written by one script; checking the hash again guards a half-read during removal.
    return stored.tokenHash === tokenHash ? { name, ...stored } : null;
  }

  async count(): Promise<number> {
    return this.redis.hlen(this.redis.key('people'));
  }
}

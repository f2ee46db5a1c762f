/**
 * `EventBuffer.people` (buffer/people.ts) on all three stores: the same answers, the same refusals,
 * the same bound, and only a token's hash ever stored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBuffer } from '../../src/buffer/buffer.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { DuplicatePersonError, MAX_PEOPLE, TooManyPeopleError } from '../../src/buffer/people.js';
import { openRedisBuffer } from '../../src/buffer/redis/store.js';
import { openSqliteBuffer, DATABASE_FILE } from '../../src/buffer/sqlite/store.js';
import { newPersonToken, tokenHash } from '../../src/operations/people.js';
import { deleteKeys, redisGate, REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const { run, skipNote } = await redisGate();
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const person = (name: string, role: 'view' | 'approve' = 'approve', token = newPersonToken()) => ({
  name,
  role,
  tokenHash: tokenHash(token),
  createdAt: 1_700_000_000_000,
});

const stores: [string, boolean, () => Promise<EventBuffer>][] = [
  ['memory', true, async () => new MemoryBuffer()],
  [
    'sqlite',
    true,
    async () => {
      const t = tempDir();
      cleanups.push(t.remove);
      return openSqliteBuffer(t.dir, {});
    },
  ],
  [
    `redis${skipNote}`,
    run,
    async () => {
      const prefix = uniquePrefix('people');
      cleanups.push(() => deleteKeys(prefix));
      return openRedisBuffer({ url: REDIS_URL, prefix });
    },
  ],
];

for (const [kind, enabled, open] of stores) {
  describe.skipIf(!enabled)(`people on the ${kind} store`, () => {
    async function opened() {
      const store = await open();
      cleanups.push(() => store.close());
      return store;
    }

    it('adds, finds by token hash, lists by name without the hash, removes', async () => {
      const store = await opened();
      const token = newPersonToken();
      await store.people.add(person('Alice', 'approve', token));
      await store.people.add(person('bob', 'view'));
      expect(await store.people.count()).toBe(2);
      // Names are one person whatever their case: stored lower-case.
      expect(await store.people.byTokenHash(tokenHash(token))).toEqual({
        name: 'alice',
        role: 'approve',
        tokenHash: tokenHash(token),
        createdAt: 1_700_000_000_000,
      });
      expect(await store.people.byTokenHash(tokenHash(newPersonToken()))).toBeNull();
      const listed = await store.people.list();
      expect(listed).toEqual([
        { name: 'alice', role: 'approve', createdAt: 1_700_000_000_000 },
        { name: 'bob', role: 'view', createdAt: 1_700_000_000_000 },
      ]);
      expect(await store.people.remove('ALICE')).toBe(true);
      expect(await store.people.remove('alice')).toBe(false);
      expect(await store.people.byTokenHash(tokenHash(token))).toBeNull();
      expect(await store.people.count()).toBe(1);
    });

    it('refuses a duplicate name with nothing stored', async () => {
      const store = await opened();
      const first = newPersonToken();
      const second = newPersonToken();
      await store.people.add(person('alice', 'view', first));
      await expect(store.people.add(person('ALICE', 'approve', second))).rejects.toBeInstanceOf(
        DuplicatePersonError,
      );
      expect(await store.people.byTokenHash(tokenHash(second))).toBeNull();
      expect((await store.people.byTokenHash(tokenHash(first)))?.role).toBe('view');
    });

    it(`holds at most ${MAX_PEOPLE} people`, async () => {
      const store = await opened();
      await Promise.all(
        Array.from({ length: MAX_PEOPLE }, (_, i) => store.people.add(person(`p${i}`))),
      );
      const extra = newPersonToken();
      await expect(store.people.add(person('one-more', 'view', extra))).rejects.toBeInstanceOf(
        TooManyPeopleError,
      );
      expect(await store.people.count()).toBe(MAX_PEOPLE);
      expect(await store.people.byTokenHash(tokenHash(extra))).toBeNull();
    }, 60_000);
  });
}

describe('what the stores keep', () => {
  it('the SQLite file holds the hash of a token, never the token', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const store = openSqliteBuffer(t.dir, {});
    const token = newPersonToken();
    await store.people.add(person('alice', 'approve', token));
    await store.close();
    const bytes = Buffer.concat(
      fs
        .readdirSync(t.dir)
        .filter((f) => f.startsWith(DATABASE_FILE))
        .map((f) => fs.readFileSync(path.join(t.dir, f))),
    ).toString('latin1');
    expect(bytes).toContain(tokenHash(token));
    expect(bytes).not.toContain(token);
    expect(bytes).not.toContain(token.slice('sem_p_'.length));
  });

  it.skipIf(!run)(
    `the Redis keys hold the hash of a token, never the token${skipNote}`,
    async () => {
      const prefix = uniquePrefix('people');
      cleanups.push(() => deleteKeys(prefix));
      const store = await openRedisBuffer({ url: REDIS_URL, prefix });
      cleanups.push(() => store.close());
      const token = newPersonToken();
      await store.people.add(person('alice', 'approve', token));
      const client = new Redis(REDIS_URL);
      cleanups.push(() => client.disconnect());
      const keys = await client.keys(`${prefix}people*`);
      expect(keys.sort()).toEqual([`${prefix}people`, `${prefix}people:tokens`]);
      const dump = JSON.stringify([
        await client.hgetall(`${prefix}people`),
        await client.hgetall(`${prefix}people:tokens`),
      ]);
      expect(dump).toContain(tokenHash(token));
      expect(dump).not.toContain(token.slice('sem_p_'.length));
    },
  );
});

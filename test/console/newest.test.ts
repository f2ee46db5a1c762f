/**
 * Newest-first paging over the port's oldest-first list (src/console/newest.ts): every page of
 * every filter equals the same slice of the full list reversed, on the memory, SQLite and Redis stores,
 * and the work stays logarithmic (counted list calls and rows read).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBuffer, EventStatus, ListQuery } from '../../src/buffer/buffer.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { openRedisBuffer } from '../../src/buffer/redis/store.js';
import { openSqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { lastArrivals, listNewest, newestSeq } from '../../src/console/newest.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const redis = await redisGate();
const KINDS = ['memory', 'sqlite', ...(redis.run ? ['redis' as const] : [])] as const;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const TYPES = ['a.created', 'b.updated', 'c.rare'];

async function filled(
  kind: 'memory' | 'sqlite' | 'redis',
  n: number,
  mix = true,
): Promise<EventBuffer> {
  let buffer: EventBuffer;
  if (kind === 'memory') buffer = new MemoryBuffer();
  else if (kind === 'redis') {
    const prefix = uniquePrefix('newest');
    buffer = await openRedisBuffer({ url: REDIS_URL, prefix });
    cleanups.push(async () => void (await deleteKeys(prefix)));
  } else {
    const t = tempDir();
    buffer = openSqliteBuffer(t.dir, {});
    cleanups.push(t.remove);
  }
  cleanups.push(() => buffer.close());
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      buffer.append({
        id: `evt_${String(i).padStart(5, '0')}`,
        type: i % 50 === 7 ? TYPES[2]! : TYPES[i % 2]!,
        created: 1_700_000_000 + i,
        livemode: false,
        objectId: null,
        payload: '{}',
      }),
    ),
  );
  if (!mix) return buffer;
  // Some acked, some dead: sparse statuses. (In parallel: SQLite commits them in groups.)
  const id = (i: number) => `evt_${String(i).padStart(5, '0')}`;
  const acked = Array.from({ length: Math.ceil(n / 3) }, (_, k) => id(k * 3));
  await Promise.all(acked.map((e) => buffer.ack(e, { by: 't' })));
  const dead = Array.from({ length: Math.ceil(n / 40) }, (_, k) => id(k * 40 + 1)).filter(
    (e) => !acked.includes(e),
  );
  for (let k = 0; k < 5; k++) {
    await Promise.all(dead.map((e) => buffer.nack(e, { reason: 'x', by: 't' })));
  }
  return buffer;
}

async function everything(buffer: EventBuffer, query: Omit<ListQuery, 'limit' | 'cursor'>) {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await buffer.list({ ...query, limit: 500, cursor });
    ids.push(...page.events.map((e) => e.id));
    cursor = page.nextCursor;
  } while (cursor);
  return ids.reverse();
}

describe.each(KINDS)('listNewest on %s', (kind) => {
  it('pages newest first through every filter, matching the full list reversed', async () => {
    const buffer = await filled(kind, 1234);
    const filters: { statuses?: EventStatus[]; types?: string[] }[] = [
      {},
      { statuses: ['pending'] },
      { statuses: ['dead'] },
      { types: [TYPES[2]!] },
      { statuses: ['acked'], types: [TYPES[0]!] },
      { statuses: ['claimed'] },
    ];
    for (const filter of filters) {
      for (const limit of [1, 7, 50]) {
        const want = await everything(buffer, filter);
        const got: string[] = [];
        let through: number | null = null;
        let pages = 0;
        for (;;) {
          const page = await listNewest((q) => buffer.list(q), { ...filter, limit, through });
          got.push(...page.events.map((e) => e.id));
          pages += 1;
          if (page.older === null) break;
          expect(page.events.length, JSON.stringify(filter)).toBe(limit);
          through = page.older;
          if (pages > 2000) throw new Error('no end');
        }
        expect(got, `${JSON.stringify(filter)} limit ${limit}`).toEqual(want);
      }
    }
  });

  it('reads a logarithmic number of small pages for the newest page of a big store', async () => {
    // The memory store's list scans from the start, so it gets a smaller store; SQLite 10 000.
    const n = kind === 'memory' ? 3000 : 10_000;
    const newest = `evt_${String(n - 1).padStart(5, '0')}`;
    const buffer = await filled(kind, n, false);
    let calls = 0;
    let rows = 0;
    const counted = async (q: ListQuery) => {
      calls += 1;
      const page = await buffer.list(q);
      rows += page.events.length;
      return page;
    };
    const page = await listNewest(counted, { limit: 50 });
    expect(page.events[0]!.id).toBe(newest);
    expect(page.events).toHaveLength(50);
    expect(calls).toBeLessThan(40);
    expect(rows).toBeLessThan(1000);
    calls = 0;
    rows = 0;
    expect(await newestSeq(counted)).toBeGreaterThanOrEqual(n);
    const recent = await lastArrivals(counted, 300);
    expect(recent[0]!.id).toBe(newest);
    expect(recent).toHaveLength(300);
    expect(rows).toBeLessThan(700);
  });
});

/**
 * The guardrails' ledger (src/buffer/ledger.ts) on every store: the same answers from memory,
 * SQLite (two handles on one file, each with its own writer thread: two processes' worth of
 * connections) and Redis (two handles on one prefix), under a clock the test moves. The
 * concurrency clauses fire many reservations at once and count what was granted.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBuffer } from '../../src/buffer/buffer.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { openRedisBuffer } from '../../src/buffer/redis/store.js';
import { SqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { HOUR_MS, type AgentInstance } from '../../src/buffer/ledger.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const { run: redisRun } = await redisGate();

interface Pair {
  a: EventBuffer;
  b: EventBuffer;
  clock: { now: number };
  close(): Promise<void>;
}

const START = Date.parse('2026-12-05T10:00:00Z');

const stores: Record<string, () => Promise<Pair>> = {
  memory: async () => {
    const clock = { now: START };
    const a = new MemoryBuffer({ now: () => clock.now });
    return { a, b: a, clock, close: () => a.close() };
  },
  sqlite: async () => {
    const clock = { now: START };
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'events.db');
    const a = new SqliteBuffer({ file, now: () => clock.now });
    const b = new SqliteBuffer({ file, now: () => clock.now });
    return {
      a,
      b,
      clock,
      close: async () => {
        await a.close();
        await b.close();
        tmp.remove();
      },
    };
  },
};
if (redisRun) {
  stores.redis = async () => {
    const clock = { now: START };
    const prefix = uniquePrefix('ledger');
    const a = await openRedisBuffer({ url: REDIS_URL, prefix, now: () => clock.now });
    const b = await openRedisBuffer({ url: REDIS_URL, prefix, now: () => clock.now });
    return {
      a,
      b,
      clock,
      close: async () => {
        await a.close();
        await b.close();
        await deleteKeys(prefix);
      },
    };
  };
}

const DAY = '2026-12-05';

describe.each(Object.keys(stores))('ledger on %s', (name) => {
  let pair: Pair;
  afterEach(async () => pair?.close());

  it('grants spend while settled + reserved is below the limit, across handles', async () => {
    pair = await stores[name]!();
    const { a, b } = pair;
    const limits = { maxTokens: 1000, maxUsd: null };
    const first = await a.ledger.reserveSpend({
      day: DAY,
      key: 'r1',
      tokens: 600,
      usd: 0,
      ...limits,
    });
    expect(first.granted).toBe(true);
    const second = await b.ledger.reserveSpend({
      day: DAY,
      key: 'r2',
      tokens: 600,
      usd: 0,
      ...limits,
    });
    expect(second.granted).toBe(true);
    expect(second.totals.reservedTokens).toBe(600);
    // 1200 reserved ≥ 1000: refused, whichever handle asks.
    const third = await a.ledger.reserveSpend({
      day: DAY,
      key: 'r3',
      tokens: 1,
      usd: 0,
      ...limits,
    });
    expect(third.granted).toBe(false);
    // Settling with the real usage frees what was over-reserved.
    await a.ledger.settleSpend(DAY, 'r1', { tokens: 100, usd: 0 });
    await b.ledger.settleSpend(DAY, 'r2', { tokens: 150, usd: 0 });
    expect(await a.ledger.spend(DAY)).toMatchObject({ tokens: 250, reservedTokens: 0 });
    const fourth = await b.ledger.reserveSpend({
      day: DAY,
      key: 'r4',
      tokens: 10,
      usd: 0,
      ...limits,
    });
    expect(fourth.granted).toBe(true);
    // Another day starts from nothing.
    expect(await a.ledger.spend('2026-12-06')).toMatchObject({ tokens: 0, reservedTokens: 0 });
  });

  it('counts dollars too, and a settle of an unknown key just adds', async () => {
    pair = await stores[name]!();
    const { a } = pair;
    const q = { day: DAY, tokens: 10, maxTokens: null, maxUsd: 0.05 };
    expect((await a.ledger.reserveSpend({ ...q, key: 'x', usd: 0.04 })).granted).toBe(true);
    expect((await a.ledger.reserveSpend({ ...q, key: 'y', usd: 0.04 })).granted).toBe(true);
    expect((await a.ledger.reserveSpend({ ...q, key: 'z', usd: 0.001 })).granted).toBe(false);
    await a.ledger.settleSpend(DAY, 'x', { tokens: 5, usd: 0.01 });
    await a.ledger.settleSpend(DAY, 'never-reserved', { tokens: 5, usd: 0.002 });
    const totals = await a.ledger.spend(DAY);
    expect(totals.tokens).toBe(10);
    expect(totals.usd).toBeCloseTo(0.012, 9);
    expect(totals.reservedUsd).toBeCloseTo(0.04, 9);
  });

  it('grants exactly as many of 64 simultaneous reservations as the limit allows', async () => {
    pair = await stores[name]!();
    const { a, b } = pair;
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        (i % 2 ? a : b).ledger.reserveSpend({
          day: DAY,
          key: `k${i}`,
          tokens: 100,
          usd: 0,
          maxTokens: 1000,
          maxUsd: null,
        }),
      ),
    );
    expect(results.filter((r) => r.granted)).toHaveLength(10);
  });

  it('holds a per-hour slot cap across handles and at any concurrency', async () => {
    pair = await stores[name]!();
    const { a, b, clock } = pair;
    const grants = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).ledger.reserveSlot('confirm_payment', `evt_${i}`, 3, 60_000),
      ),
    );
    expect(grants.filter((g) => g.granted)).toHaveLength(3);
    const refused = grants.find((g) => !g.granted);
    // A reserved slot counts until its hold ends, plus the hour.
    expect(refused).toEqual({ granted: false, retryInMs: 60_000 + HOUR_MS });
    expect(await a.ledger.slotsUsed('confirm_payment')).toBe(3);
  });

  it('keeps a key its slot, gives back unconfirmed slots, and lets confirmed ones age out', async () => {
    pair = await stores[name]!();
    const { a, b, clock } = pair;
    expect(await a.ledger.reserveSlot('t', 'e1', 2, 60_000)).toEqual({ granted: true });
    expect(await b.ledger.reserveSlot('t', 'e1', 2, 60_000)).toEqual({ granted: true });
    expect(await a.ledger.reserveSlot('t', 'e2', 2, 60_000)).toEqual({ granted: true });
    expect((await a.ledger.reserveSlot('t', 'e3', 2, 60_000)).granted).toBe(false);
    // e2 decided not to dispatch: its slot is free again.
    await b.ledger.releaseSlot('t', 'e2');
    clock.now += 1_000;
    await a.ledger.confirmSlot('t', 'e1');
    // A confirmed slot is not given back.
    await a.ledger.releaseSlot('t', 'e1');
    expect(await b.ledger.reserveSlot('t', 'e3', 2, 60_000)).toEqual({ granted: true });
    await b.ledger.confirmSlot('t', 'e3');
    const refused = await a.ledger.reserveSlot('t', 'e4', 2, 60_000);
    expect(refused).toEqual({ granted: false, retryInMs: HOUR_MS });
    // An hour after e1's dispatch, its slot has left the window.
    clock.now += HOUR_MS;
    expect(await a.ledger.reserveSlot('t', 'e4', 2, 60_000)).toEqual({ granted: true });
    expect(await b.ledger.slotsUsed('t')).toBe(1);
  });

  it('grants a once-key to exactly one of many callers across handles, until it expires', async () => {
    pair = await stores[name]!();
    const { a, b, clock } = pair;
    const answers = await Promise.all(
      Array.from({ length: 32 }, (_, i) => (i % 2 ? a : b).ledger.once('warn:evt_1', 60_000)),
    );
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(await a.ledger.once('warn:evt_2', 60_000)).toBe(true);
    clock.now += 59_000;
    expect(await b.ledger.once('warn:evt_1', 60_000)).toBe(false);
    clock.now += 2_000;
    expect(await b.ledger.once('warn:evt_1', 60_000)).toBe(true);
    expect(await a.ledger.once('warn:evt_1', 60_000)).toBe(false);
  });

  it('lists the loops that reported recently, from any handle', async () => {
    pair = await stores[name]!();
    const { a, b, clock } = pair;
    const one: AgentInstance = {
      id: 'host:1:abc',
      host: 'host',
      pid: 1,
      state: 'running',
      reason: null,
      note: null,
      started: clock.now,
      since: clock.now,
      until: null,
      seen: clock.now,
    };
    await a.ledger.reportInstance(one);
    await b.ledger.reportInstance({
      ...one,
      id: 'host:2:def',
      pid: 2,
      state: 'paused',
      reason: 'breaker',
    });
    expect((await b.ledger.instances(15_000)).map((i) => i.id).sort()).toEqual([
      'host:1:abc',
      'host:2:def',
    ]);
    clock.now += 20_000;
    await b.ledger.reportInstance({ ...one, id: 'host:2:def', pid: 2, seen: clock.now });
    expect((await a.ledger.instances(15_000)).map((i) => i.id)).toEqual(['host:2:def']);
    await a.ledger.removeInstance('host:2:def');
    expect(await b.ledger.instances(60_000)).toHaveLength(1);
  });
});

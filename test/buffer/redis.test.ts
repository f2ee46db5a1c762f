import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEDUP_WINDOW_MS,
  type BufferChange,
  type BufferOptions,
  type EventBuffer,
} from '../../src/buffer/buffer.js';
import { openRedisBuffer, redactRedisUrl } from '../../src/buffer/redis/store.js';
import { StoreUnavailableError } from '../../src/errors.js';
import {
  deleteKeys,
  freePort,
  IN_CI,
  plainClient,
  privateRedis,
  REDIS_URL,
  redisGate,
  uniquePrefix,
} from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { incoming, runBufferContract } from './contract.js';
import { runParkedContract } from './parked-contract.js';

const { available, run, canSpawn, skipNote } = await redisGate();
/** `ss` (iproute2) reads a socket's keepalive timer. */
const hasSs = (() => {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

it.runIf(IN_CI)(`Redis answers at ${redactRedisUrl(REDIS_URL)} (required in CI)`, () => {
  expect(available, `no Redis at ${REDIS_URL}: .ci/run should have started one`).toBe(true);
});

function open(prefix: string, options: BufferOptions & { recentIdsMax?: number } = {}) {
  return openRedisBuffer({
    url: REDIS_URL,
    prefix,
    // In CI without Redis every test fails; let each fail quickly.
    connectTimeoutMs: available ? 5_000 : 500,
    ...options,
  });
}

describe.skipIf(!run)(`redis store${skipNote}`, () => {
  // In Redis, parked thin notifications are shared: another instance sees and removes them.
  runParkedContract('redis hash, two instances', async () => {
    const prefix = uniquePrefix('parked');
    const a = await open(prefix);
    const b = await open(prefix);
    return {
      store: a.parkedNotifications(),
      another: async () => b.parkedNotifications(),
      cleanup: async () => {
        await a.close();
        await b.close();
        await deleteKeys(prefix);
      },
    };
  });

  runBufferContract('redis', async (options) => {
    const prefix = uniquePrefix('contract');
    let buffer: EventBuffer = await open(prefix, options);
    return {
      buffer,
      reopen: async () => {
        await buffer.close();
        // A new client on the same prefix: what another instance, or a restarted one, sees.
        buffer = await open(prefix, options);
        return buffer;
      },
      cleanup: async () => {
        await buffer.close();
        await deleteKeys(prefix);
      },
    };
  });

  describe('redis buffer', () => {
    const cleanups: (() => Promise<unknown> | void)[] = [];
    afterEach(async () => {
      for (const fn of cleanups.splice(0).reverse()) await fn();
    });

    async function fresh(options: BufferOptions & { recentIdsMax?: number } = {}) {
      const prefix = uniquePrefix('redis');
      cleanups.push(() => deleteKeys(prefix));
      const buffer = await open(prefix, options);
      cleanups.push(() => buffer.close());
      return { prefix, buffer };
    }

    async function another(prefix: string, options: BufferOptions = {}) {
      const buffer = await open(prefix, options);
      cleanups.push(() => buffer.close());
      return buffer;
    }

    it.runIf(hasSs)(
      'probes idle connections, the listening one too, after 30 s (TCP keepalive)',
      async () => {
        const { buffer } = await fresh();
        const stop = buffer.watch(() => {});
        cleanups.push(stop);
        // The store's connection (redis/store.ts `client`) and the watch connection
        // (redis/watch.ts, the store's `changes.subscriber`).
        type Conn = { stream?: { localPort?: number } };
        const internals = buffer as unknown as { client: Conn; changes: { subscriber?: Conn } };
        const connections = () => ({
          client: internals.client,
          subscriber: internals.changes.subscriber,
        });
        await waitUntil(() => connections().subscriber?.stream?.localPort !== undefined);
        for (const [name, connection] of Object.entries(connections())) {
          const port = connection!.stream!.localPort!;
          const out = execFileSync(
            'ss',
            ['-tnoH', 'state', 'established', `( sport = :${port} )`],
            {
              encoding: 'utf8',
            },
          );
          // e.g. "timer:(keepalive,29sec,0)"; without the option the OS default shows 119min.
          const timer = /timer:\(keepalive,(?:(\d+)min)?(\d+(?:\.\d+)?)?(m?s)?ec/.exec(out);
          expect(timer, `${name}: ${out}`).not.toBeNull();
          expect(timer![1], `${name}: ${out}`).toBeUndefined();
        }
      },
    );

    it('catches a duplicate after the recent-ids cache evicted it, and one another instance stored', async () => {
      const { prefix, buffer } = await fresh({ recentIdsMax: 2 });
      for (let i = 1; i <= 5; i++) expect((await buffer.append(incoming(i))).status).toBe('queued');
      for (let i = 1; i <= 5; i++) {
        expect((await buffer.append(incoming(i))).status).toBe('duplicate');
      }
      const other = await another(prefix);
      await other.append(incoming(6));
      expect((await buffer.append(incoming(6))).status).toBe('duplicate');
      expect((await buffer.stats()).counts.pending).toBe(6);
    });

    it('dedups with SET NX on the id for the 7-day window, and remembers pruned ids', async () => {
      let clock = 1_790_000_000_000;
      const { prefix, buffer } = await fresh({ now: () => clock });
      await buffer.append(incoming(1));
      const client = plainClient();
      client.on('error', () => {});
      await client.connect();
      try {
        const ttl = await client.pttl(`${prefix}id:${incoming(1).id}`);
        expect(ttl).toBeGreaterThan(DEDUP_WINDOW_MS - 60_000);
        expect(ttl).toBeLessThanOrEqual(DEDUP_WINDOW_MS);
      } finally {
        client.disconnect();
      }
      await buffer.ack(incoming(1).id);
      clock += 10;
      expect(await buffer.prune(clock)).toBe(1);
      expect(await buffer.get(incoming(1).id)).toBeNull();
      // A fresh instance (empty fast path) still answers duplicate: the marker outlives the row.
      const other = await another(prefix, { now: () => clock });
      expect((await other.append(incoming(1))).status).toBe('duplicate');
    });

    it('keeps one sorted set per outcome, in step with the events: replay and prune empty it', async () => {
      let clock = 1_790_000_000_000;
      const { prefix, buffer } = await fresh({ now: () => clock });
      for (let i = 1; i <= 3; i++) await buffer.append(incoming(i));
      await buffer.ack(incoming(1).id, { by: 'cli:bob' });
      await buffer.ack(incoming(2).id, { by: 'cli:bob', outcome: 'superseded' });
      await buffer.ack(incoming(3).id, { by: 'cli:bob' });
      const client = plainClient();
      client.on('error', () => {});
      await client.connect();
      try {
        expect(await client.zrange(`${prefix}o:handled`, 0, -1)).toEqual([
          incoming(1).id,
          incoming(3).id,
        ]);
        expect(await client.hget(`${prefix}ev:${incoming(2).id}`, 'outcome')).toBe('superseded');
        await buffer.replay(incoming(3).id);
        expect(await client.zrange(`${prefix}o:handled`, 0, -1)).toEqual([incoming(1).id]);
        expect(await client.hexists(`${prefix}ev:${incoming(3).id}`, 'outcome')).toBe(0);
        clock += 10;
        expect(await buffer.prune(clock)).toBe(2);
        expect(await client.keys(`${prefix}o:*`)).toEqual([]);
      } finally {
        client.disconnect();
      }
    });

    it('finds the newest created from the events when the key is missing (an older layout)', async () => {
      const { prefix, buffer } = await fresh();
      await buffer.append({ ...incoming(1), created: 1_786_000_300 });
      await buffer.append({ ...incoming(2), created: 1_786_000_100 });
      const client = plainClient();
      client.on('error', () => {});
      await client.connect();
      try {
        await client.del(`${prefix}newest_created`);
        expect(await buffer.newestCreated()).toBe(1_786_000_300);
        expect(await client.get(`${prefix}newest_created`)).toBe('1786000300');
      } finally {
        client.disconnect();
      }
    });

    it('keeps deployments with different prefixes apart', async () => {
      const a = await fresh();
      const b = await fresh();
      expect((await a.buffer.append(incoming(1))).status).toBe('queued');
      expect((await b.buffer.append(incoming(1))).status).toBe('queued');
      await a.buffer.ack(incoming(1).id);
      expect((await b.buffer.get(incoming(1).id))?.status).toBe('pending');
    });

    it("reports other instances' changes with their ids, and its own once", async () => {
      const { prefix, buffer } = await fresh();
      const other = await another(prefix);
      const seen: BufferChange[] = [];
      const stop = buffer.watch((c) => seen.push(c));
      try {
        // The subscription is live once a change made elsewhere comes through.
        let n = 0;
        await waitUntil(async () => {
          await other.append(incoming(++n, 'charge.refunded'));
          return seen.length > 0;
        });
        const appended = new Set(Array.from({ length: n }, (_, i) => incoming(i + 1).id));
        for (const change of seen) {
          expect(change).toEqual({
            kind: 'queued',
            id: change.id,
            type: 'charge.refunded',
            remote: true,
          });
          expect(appended.has(change.id!)).toBe(true);
        }
        // Late messages of the appends above may still arrive: leave those out from here on.
        const later = () => seen.filter((c) => !(c.kind === 'queued' && appended.has(c.id!)));
        seen.length = 0;
        await other.ack(incoming(n).id);
        await buffer.append(incoming(1000));
        await waitUntil(() => later().length >= 2);
        await new Promise((r) => setTimeout(r, 300));
        // The other instance's ack came through once; our own append was announced once.
        expect(later().map((c) => `${c.kind}:${c.id}`)).toEqual(
          expect.arrayContaining([`acked:${incoming(n).id}`, `queued:${incoming(1000).id}`]),
        );
        expect(later()).toHaveLength(2);
        // Only the other instance's change is marked remote: the process that made a change is
        // the one that acts on it alone (notifications).
        expect(later().find((c) => c.kind === 'acked')?.remote).toBe(true);
        expect(later().find((c) => c.kind === 'queued')?.remote).toBeUndefined();
      } finally {
        stop();
      }
    });

    it('claims a nacked event again in arrival order once its retry time comes', async () => {
      let clock = 1_790_000_000_000;
      const { buffer } = await fresh({ now: () => clock });
      await buffer.append(incoming(1));
      await buffer.append(incoming(2, 'charge.refunded'));
      await buffer.append(incoming(3));
      const [a] = await buffer.claim({ owner: 'a', leaseMs: 1000 });
      await buffer.nack(incoming(1).id, {
        token: a!.leaseOwner!,
        reason: 'later',
        retryInMs: 5000,
      });
      expect((await buffer.claim({ owner: 'a', leaseMs: 1000 }))[0]?.id).toBe(incoming(2).id);
      clock += 5000;
      const types = ['charge.dispute.created'];
      const next = await buffer.claim({ owner: 'a', leaseMs: 1000, limit: 5, types });
      expect(next.map((e) => e.id)).toEqual([incoming(1).id, incoming(3).id]);
      expect(next[0]).toMatchObject({ attempts: 1, retryAt: clock, lastError: 'later' });
    });

    it('never hands one event to two instances claiming at once', async () => {
      const { prefix, buffer } = await fresh();
      const others = await Promise.all([another(prefix), another(prefix), another(prefix)]);
      for (let i = 1; i <= 60; i++) await buffer.append(incoming(i));
      const all = [buffer, ...others];
      const claimed = (
        await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            all[i % all.length]!.claim({ owner: `w${i}`, leaseMs: 60_000, limit: 2 }),
          ),
        )
      ).flat();
      const ids = claimed.map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toHaveLength(60);
      expect((await buffer.stats()).counts).toMatchObject({ pending: 0, claimed: 60 });
    });

    it('refuses to open when Redis does not answer, naming the URL without its password', async () => {
      const port = await freePort();
      const error = await openRedisBuffer({
        url: `redis://user:s3cret@127.0.0.1:${port}`,
        prefix: uniquePrefix(),
        connectTimeoutMs: 1_000,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toContain(`127.0.0.1:${port}`);
      expect((error as Error).message).not.toContain('s3cret');
    });

    it('closes its connections cleanly', async () => {
      const { prefix } = await fresh();
      const buffer = await open(prefix);
      const stop = buffer.watch(() => {});
      await buffer.append(incoming(1));
      stop();
      await buffer.close();
      await buffer.close();
      expect((await buffer.health()).ok).toBe(false);
      await expect(buffer.get(incoming(1).id)).rejects.toBeInstanceOf(StoreUnavailableError);
    });

    it.runIf(canSpawn)(
      'fails fast while Redis is down and resumes when it is back, losing nothing',
      async () => {
        const tmp = tempDir('sem-redis-');
        cleanups.push(tmp.remove);
        const server = await privateRedis(tmp.dir);
        cleanups.push(() => server.kill());
        const states: string[] = [];
        const buffer = await openRedisBuffer({
          url: server.url,
          prefix: uniquePrefix('outage'),
          onConnectionChange: (state) => states.push(state),
        });
        cleanups.push(() => buffer.close());
        const seen: BufferChange[] = [];
        const stop = buffer.watch((c) => seen.push(c));
        cleanups.push(stop);
        for (let i = 1; i <= 20; i++) await buffer.append(incoming(i));
        await buffer.claim({ owner: 'a', leaseMs: 60_000 });

        await server.kill();
        await waitUntil(async () => !(await buffer.health()).ok);
        await expect(buffer.append(incoming(21))).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(buffer.stats()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(buffer.claim({ owner: 'b', leaseMs: 1000 })).rejects.toBeInstanceOf(
          StoreUnavailableError,
        );
        // An id it already stored is still answered from the fast path.
        expect((await buffer.append(incoming(3))).status).toBe('duplicate');

        await server.start();
        await waitUntil(async () => (await buffer.health()).ok);
        expect(states).toEqual(['lost', 'restored']);
        expect((await buffer.append(incoming(21))).status).toBe('queued');
        const stats = await buffer.stats();
        expect(stats.counts).toMatchObject({ pending: 20, claimed: 1 });
        // The watcher heard that it may have missed something, then hears changes again.
        await waitUntil(() => seen.some((c) => c.kind === 'external'));
      },
    );

    it.runIf(canSpawn)(
      'finds the primary through Sentinel and follows a failover, keeping what was replicated',
      async () => {
        const tmp = tempDir('sem-sentinel-');
        cleanups.push(tmp.remove);
        const dirs = ['primary', 'replica', 'sentinel'].map((name) => {
          const dir = path.join(tmp.dir, name);
          fs.mkdirSync(dir);
          return dir;
        });
        // No 5 s wait for more replicas before the first sync (Redis 7's default).
        const primary = await privateRedis(dirs[0]!, { args: ['--repl-diskless-sync-delay', '0'] });
        cleanups.push(() => primary.kill());
        const replica = await privateRedis(dirs[1]!, {
          args: ['--replicaof', '127.0.0.1', String(primary.port)],
        });
        cleanups.push(() => replica.kill());
        const config = path.join(dirs[2]!, 'sentinel.conf');
        fs.writeFileSync(
          config,
          [
            `sentinel monitor mymaster 127.0.0.1 ${primary.port} 1`,
            'sentinel down-after-milliseconds mymaster 1000',
            'sentinel failover-timeout mymaster 5000',
            '',
          ].join('\n'),
        );
        const sentinel = await privateRedis(dirs[2]!, { config, args: ['--sentinel'] });
        cleanups.push(() => sentinel.kill());
        const admin = plainClient(sentinel.url);
        admin.on('error', () => {});
        await admin.connect();
        cleanups.push(() => void admin.disconnect());
        // Sentinel has seen the replica in sync (else it refuses to promote it: NOGOODSLAVE).
        await waitUntil(async () => {
          const replicas = (await admin.call('SENTINEL', 'REPLICAS', 'mymaster')) as string[][];
          return replicas.some((flat) => {
            const info = new Map<string, string>();
            for (let i = 0; i + 1 < flat.length; i += 2) info.set(flat[i]!, flat[i + 1]!);
            return info.get('flags') === 'slave' && info.get('master-link-status') === 'ok';
          });
        });

        const prefix = uniquePrefix('sentinel');
        const url = `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster`;
        const buffer = await openRedisBuffer({ url, prefix });
        cleanups.push(() => buffer.close());
        expect((await buffer.append(incoming(1))).status).toBe('queued');
        const onPrimary = plainClient(primary.url);
        onPrimary.on('error', () => {});
        await onPrimary.connect();
        cleanups.push(() => void onPrimary.disconnect());
        // Replication is asynchronous: only what reached the replica survives its promotion.
        expect(await onPrimary.call('WAIT', '1', '5000')).toBe(1);

        // Sentinel may still judge the replica too fresh to promote: ask again until it agrees.
        await waitUntil(async () => {
          try {
            return (await admin.call('SENTINEL', 'FAILOVER', 'mymaster')) === 'OK';
          } catch {
            return false;
          }
        });
        await waitUntil(
          async () =>
            (
              (await admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')) as string[]
            )[1] === String(replica.port),
        );
        // The buffer's connection (named stripe-events-mcp) is on the new primary. (A fresh
        // client: Sentinel disconnects the clients of the replica it promotes.)
        const onNewPrimary = plainClient(replica.url);
        onNewPrimary.on('error', () => {});
        await onNewPrimary.connect();
        cleanups.push(() => void onNewPrimary.disconnect());
        await waitUntil(async () => {
          try {
            const clients = String(await onNewPrimary.call('CLIENT', 'LIST'));
            return clients.includes('name=stripe-events-mcp');
          } catch {
            return false;
          }
        });
        await waitUntil(async () => (await buffer.health()).ok);
        await waitUntil(async () => {
          try {
            return (await buffer.append(incoming(2))).status === 'queued';
          } catch {
            return false;
          }
        });
        // Both events are on the new primary, read there directly.
        const onNew = await openRedisBuffer({ url: replica.url, prefix });
        cleanups.push(() => onNew.close());
        expect(await onNew.get(incoming(1).id)).toMatchObject({ status: 'pending' });
        expect(await onNew.get(incoming(2).id)).toMatchObject({ status: 'pending' });
      },
    );
  });
});

async function waitUntil(check: () => boolean | Promise<boolean>, deadlineMs = 20_000) {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not met within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A frozen Redis (SIGSTOP: the TCP connection stays up, nothing answers) must not hold webhook
 * deliveries or /healthz past the documented 5 s command timeout, and the server must carry on
 * once Redis runs again. The built `serve --store redis` runs against a private redis-server
 * of this test's own; the machine's shared Redis is never stopped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BufferChange } from '../../src/buffer/buffer.js';
import { openRedisBuffer } from '../../src/buffer/redis/store.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { privateRedis, redisGate, uniquePrefix } from '../helpers/redis.js';
import { newSecret, signatureHeader } from '../helpers/sign.js';
import { killLeftovers, startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';
import { incoming } from './contract.js';

const { canSpawn } = await redisGate();

/** The documented command timeout (5 s) plus a margin for a loaded machine. */
const BOUND_MS = 6_000;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Timed {
  status: number;
  ms: number;
  body: { status?: string; error?: { code?: string } };
}

async function timed(url: string, init?: RequestInit): Promise<Timed> {
  const started = performance.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const body = (await res.json()) as Timed['body'];
  return { status: res.status, ms: performance.now() - started, body };
}

function deliver(server: ServeHandle, secret: string): Promise<Timed> {
  const payload = JSON.stringify(buildTestEvent('charge.dispute.created'));
  return timed(server.webhookUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'stripe-signature': signatureHeader(payload, secret),
    },
    body: payload,
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!canSpawn)(
  `serve --store redis with Redis frozen${canSpawn ? '' : ' (skipped: no redis-server binary)'}`,
  () => {
    it('answers every webhook and /healthz within the bound, and queues again after SIGCONT', async () => {
      const tmp = tempDir('sem-redis-frozen-');
      cleanups.push(tmp.remove);
      const redis = await privateRedis(tmp.dir, { args: ['--appendonly', 'no'] });
      cleanups.push(() => redis.kill());
      const secret = newSecret();
      const server = await startServe({
        dataDir: tmp.dir,
        env: { STRIPE_WEBHOOK_SECRET: secret, REDIS_URL: redis.url },
        args: ['--store', 'redis', '--redis-prefix', uniquePrefix('frozen')],
      });

      const before = await deliver(server, secret);
      expect(before).toMatchObject({ status: 200, body: { status: 'queued' } });
      expect((await timed(`${server.url}/healthz`)).status).toBe(200);

      redis.freeze();
      let thawed = false;
      cleanups.push(() => {
        if (!thawed) redis.thaw();
      });
      // Waves a second apart: a delivery that arrives while an earlier one still waits on the
      // frozen connection must not wait for that one's timeout before its own clock starts.
      const answers: Promise<Timed>[] = [];
      const health: Promise<Timed>[] = [];
      for (let wave = 0; wave < 3; wave++) {
        for (let i = 0; i < 3; i++) answers.push(deliver(server, secret));
        health.push(timed(`${server.url}/healthz`));
        await sleep(1_000);
      }
      const frozen = await Promise.all(answers);
      const checks = await Promise.all(health);

      for (const answer of frozen) {
        expect(answer.status, JSON.stringify(answer)).toBe(503);
        expect(answer.body.error?.code).toBe('store_unavailable');
      }
      for (const check of checks) expect(check.status, JSON.stringify(check)).toBe(503);
      const ms = (list: Timed[]) => list.map((t) => Math.round(t.ms)).join(', ');
      const slowest = Math.max(...frozen.map((a) => a.ms), ...checks.map((c) => c.ms));
      expect(
        slowest,
        `answers while frozen, in ms: webhooks ${ms(frozen)}; /healthz ${ms(checks)}`,
      ).toBeLessThan(BOUND_MS);

      redis.thaw();
      thawed = true;
      const again = await waitFor(async () => {
        const answer = await deliver(server, secret);
        return answer.status === 200 ? answer : undefined;
      }, 'a webhook to be queued again after SIGCONT');
      expect(again.body.status).toBe('queued');
      await waitFor(
        async () => (await timed(`${server.url}/healthz`)).status === 200,
        '/healthz to answer 200 again',
      );
      expect(server.child.exitCode).toBeNull();
      // The timeout dropped the frozen connection (so later calls failed at once), and said so.
      const messages = server.logs().map((r) => `${String(r.level)} ${String(r.msg)}`);
      expect(messages).toContainEqual(
        expect.stringMatching(
          /^warn Redis at .* did not answer within 5 s: dropped the connection/,
        ),
      );
      expect(messages).toContainEqual(expect.stringMatching(/^info reconnected to Redis/));
      expect(server.stderr()).not.toContain(secret);
    }, 60_000);

    it('fails at once after the first timeout, through a long freeze and reconnect attempts', async () => {
      const tmp = tempDir('sem-redis-frozen-');
      cleanups.push(tmp.remove);
      const redis = await privateRedis(tmp.dir, { args: ['--appendonly', 'no'] });
      cleanups.push(() => redis.kill());
      const timeoutMs = 500;
      const buffer = await openRedisBuffer({
        url: redis.url,
        prefix: uniquePrefix('frozen'),
        commandTimeoutMs: timeoutMs,
      });
      cleanups.push(() => buffer.close());
      // A watcher, its subscription live: another instance's append reaches it.
      const changes: BufferChange[] = [];
      cleanups.push(buffer.watch((change) => changes.push(change)));
      const other = await openRedisBuffer({ url: redis.url, prefix: buffer.prefix });
      cleanups.push(() => other.close());
      await waitFor(async () => {
        await other.append(incoming(`evt_other_${changes.length}`));
        await sleep(100);
        return changes.some((c) => c.kind === 'queued');
      }, 'the watcher to see another instance append');
      expect((await buffer.append(incoming('evt_before'))).status).toBe('queued');

      redis.freeze();
      let thawed = false;
      cleanups.push(() => {
        if (!thawed) redis.thaw();
      });
      // Many timeouts long: the reconnect attempts reach the frozen server too.
      const end = performance.now() + 10 * timeoutMs;
      const took: number[] = [];
      let n = 0;
      while (performance.now() < end) {
        let started = performance.now();
        await expect(buffer.append(incoming(`evt_frozen_${n++}`))).rejects.toBeInstanceOf(
          StoreUnavailableError,
        );
        took.push(performance.now() - started);
        started = performance.now();
        expect((await buffer.health()).ok).toBe(false);
        took.push(performance.now() - started);
        await sleep(50);
      }
      // Only the first call waited for the timeout (plus a generous margin, never a multiple of
      // it): it dropped the connection, and every later one failed without waiting.
      expect(took[0]).toBeLessThan(timeoutMs + 1_000);
      const waited = took.filter((ms) => ms >= timeoutMs);
      expect(waited.length, `call durations in ms: ${took.map(Math.round).join(', ')}`).toBe(1);

      redis.thaw();
      thawed = true;
      await waitFor(async () => {
        try {
          return (await buffer.append(incoming('evt_after'))).status === 'queued';
        } catch {
          return false;
        }
      }, 'an append to succeed after SIGCONT');
      expect((await buffer.health()).ok).toBe(true);
      expect(await buffer.get('evt_before')).not.toBeNull();
      // The subscription started over with the connection, and its watcher was told that changes
      // may have been missed meanwhile, so it re-reads what it shows.
      await waitFor(
        () => changes.some((c) => c.kind === 'external'),
        'an external change after the subscription came back',
      );
    });
  },
);

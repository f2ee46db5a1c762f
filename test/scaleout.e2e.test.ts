/**
 * Scale-out end to end: several built `serve` processes (`node dist/cli.js serve --store redis`)
 * on one Redis, real HTTP, events signed with stripe-node, the `events` CLI as a third process.
 * The outage test runs a private redis-server of its own; the machine's shared Redis is never
 * stopped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBuffer } from '../src/buffer/buffer.js';
import { openRedisBuffer } from '../src/buffer/redis/store.js';
import { buildTestEvent } from '../src/stripe/fixtures.js';
import { ownObject } from './helpers/own-object.js';
import { deleteKeys, privateRedis, REDIS_URL, redisGate, uniquePrefix } from './helpers/redis.js';
import { newSecret, signatureHeader } from './helpers/sign.js';
import { killLeftovers, runCli, startServe, waitFor, type ServeHandle } from './helpers/spawn.js';
import { tempDir } from './helpers/tmp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { decideFirstAction, startFakeAnthropic } from './helpers/fake-anthropic.js';

const { run, canSpawn, skipNote } = await redisGate();
if (!run) console.warn(`test/scaleout.e2e.test.ts: scale-out${skipNote}`);

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Deployment {
  prefix: string;
  secret: string;
  url: string;
}

function deployment(url = REDIS_URL): Deployment {
  const prefix = uniquePrefix('scaleout');
  cleanups.push(() => deleteKeys(prefix, url).catch(() => 0));
  return { prefix, secret: newSecret(), url };
}

/** One `serve` instance of the deployment, on its own port and data dir. */
async function instance(
  d: Deployment,
  extra: { args?: string[]; env?: Record<string, string> } = {},
): Promise<ServeHandle> {
  const tmp = tempDir('sem-scaleout-');
  cleanups.push(tmp.remove);
  return startServe({
    dataDir: tmp.dir,
    env: { STRIPE_WEBHOOK_SECRET: d.secret, REDIS_URL: d.url, ...extra.env },
    args: ['--store', 'redis', '--redis-prefix', d.prefix, ...(extra.args ?? [])],
  });
}

/** The `events` CLI against the deployment's store. */
function events(d: Deployment, args: string[]) {
  return runCli(['events', ...args, '--store', 'redis', '--redis-prefix', d.prefix], {
    env: { REDIS_URL: d.url },
  });
}

function signed(secret: string, type = 'charge.dispute.created') {
  const event = ownObject(buildTestEvent(type));
  const payload = JSON.stringify(event, null, 2);
  return { id: String(event.id), payload, header: signatureHeader(payload, secret) };
}

interface Answer {
  status: number;
  body: { status?: string; id?: string; error?: { code?: string } };
  retryAfter: string | null;
}

async function deliver(server: ServeHandle, e: { payload: string; header: string }) {
  const res = await fetch(server.webhookUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': e.header },
    body: e.payload,
  });
  const body = (await res.json()) as Answer['body'];
  return { status: res.status, body, retryAfter: res.headers.get('retry-after') } as Answer;
}

async function health(server: ServeHandle) {
  const res = await fetch(`${server.url}/healthz`);
  return {
    status: res.status,
    body: (await res.json()) as {
      status: string;
      pending?: number;
      counts?: Record<string, number>;
      store: { ok: boolean; kind: string };
    },
  };
}

describe.skipIf(!run)(`scale-out on Redis${skipNote}`, () => {
  it('queues once an event delivered 40 times concurrently to two instances', async () => {
    const d = deployment();
    const [a, b] = await Promise.all([instance(d), instance(d)]);
    const e = signed(d.secret);
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => deliver(i % 2 === 0 ? a : b, e)),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(40).fill(200));
    expect(answers.filter((r) => r.body.status === 'queued')).toHaveLength(1);
    expect(answers.filter((r) => r.body.status === 'duplicate')).toHaveLength(39);
    for (const server of [a, b]) {
      const h = await health(server);
      expect(h.status).toBe(200);
      expect(h.body).toMatchObject({ store: { ok: true, kind: 'redis' }, pending: 1 });
    }
  });

  it('lists and acks through the other instance and the CLI an event one instance received', async () => {
    const d = deployment();
    const [a, b] = await Promise.all([instance(d), instance(d)]);
    const e = signed(d.secret, 'invoice.payment_failed');
    expect((await deliver(a, e)).body).toMatchObject({ status: 'queued', id: e.id });
    expect((await health(b)).body.counts).toMatchObject({ pending: 1, acked: 0 });

    const listed = await events(d, ['list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const summaries = JSON.parse(listed.stdout) as {
      id: string;
      status: string;
      tool_call: { name: string };
    }[];
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({
      id: e.id,
      status: 'pending',
      tool_call: { name: 'retry_failed_payment' },
    });

    const acked = await events(d, ['ack', e.id, '--json', '--note', 'done elsewhere']);
    expect(acked.code, acked.stderr).toBe(0);
    expect(JSON.parse(acked.stdout)).toEqual({ id: e.id, status: 'acked' });
    for (const server of [a, b]) {
      expect((await health(server)).body.counts).toMatchObject({ pending: 0, acked: 1 });
    }
    // Stripe's retry lands on the other instance: still a duplicate.
    expect((await deliver(b, e)).body.status).toBe('duplicate');
    const shown = await events(d, ['show', e.id, '--json']);
    const history = (JSON.parse(shown.stdout) as { history: { kind: string; note?: string }[] })
      .history;
    expect(history.map((h) => h.kind)).toEqual(['received', 'acked']);
    expect(history[1]?.note).toBe('done elsewhere');
  });

  it("notifies an MCP session on one instance of another instance's event", async () => {
    const d = deployment();
    const [a, b] = await Promise.all([instance(d), instance(d)]);
    const client = new Client({ name: 'scaleout-test', version: '1.0.0' });
    const updated: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updated.push(n.params.uri);
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${b.url}/mcp`)));
    cleanups.push(() => client.close());
    await client.subscribeResource({ uri: 'stripe-events://pending' });
    const e = signed(d.secret, 'charge.refunded');
    expect((await deliver(a, e)).body.status).toBe('queued');
    await waitFor(() => updated.includes('stripe-events://pending'), 'the session on B to hear A');
    const result = await client.callTool({ name: 'list_pending_events', arguments: {} });
    const listed = (result.structuredContent as { events: { id: string }[] }).events;
    expect(listed.map((x) => x.id)).toEqual([e.id]);
  });

  it('with agent loops on both instances, every event is dispatched exactly once', async () => {
    const d = deployment();
    // A model that takes 100 ms, as a real one takes longer: with instant answers one instance
    // could drain all 30 events before the other claimed any.
    const api = await startFakeAnthropic(async (req) => ({
      ...(await decideFirstAction(req)),
      delayMs: 100,
    }));
    cleanups.push(() => api.close());
    const calls = new Map<string, number>();
    const handler = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const key = String((JSON.parse(body) as { idempotency_key: string }).idempotency_key);
        calls.set(key, (calls.get(key) ?? 0) + 1);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => handler.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => handler.close(() => r())));
    const cfgDir = tempDir('sem-scaleout-cfg-');
    cleanups.push(cfgDir.remove);
    const configFile = path.join(cfgDir.dir, 'agent.json');
    const url = `http://127.0.0.1:${(handler.address() as AddressInfo).port}/actions`;
    fs.writeFileSync(
      configFile,
      JSON.stringify({ dispatch: { type: 'http', url, secret: 'a-long-enough-test-secret' } }),
    );
    const agentArgs = {
      args: ['--agent', '--config', configFile, '--concurrency', '3'],
      env: { ANTHROPIC_API_KEY: 'test-key', ANTHROPIC_BASE_URL: api.url },
    };
    const [a, b] = await Promise.all([instance(d, agentArgs), instance(d, agentArgs)]);
    const sent = Array.from({ length: 30 }, (_, i) =>
      signed(d.secret, i % 2 ? 'charge.refunded' : 'charge.dispute.created'),
    );
    await Promise.all(sent.map((e, i) => deliver(i % 2 ? a : b, e)));
    await waitFor(
      async () => (await health(a)).body.counts?.acked === 30,
      'all 30 events to be acked',
    );
    expect(calls.size).toBe(30);
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
    // Both instances took part.
    const owners = new Set<string>();
    for (const e of sent) {
      const shown = await events(d, ['show', e.id, '--json']);
      const history = (JSON.parse(shown.stdout) as { history: { kind: string; note?: string }[] })
        .history;
      const claim = history.find((h) => h.kind === 'claimed');
      if (claim?.note) owners.add(claim.note.split(':')[1] ?? '');
    }
    expect(owners.size).toBe(2);
  });

  it('after kill -9 of an instance mid-work, the other reclaims its claims when the lease expires', async () => {
    const d = deployment();
    const [a, b] = await Promise.all([instance(d), instance(d)]);
    const buffers: EventBuffer[] = [];
    const open = async () => {
      const buffer = await openRedisBuffer({ url: d.url, prefix: d.prefix });
      buffers.push(buffer);
      return buffer;
    };
    cleanups.push(() => Promise.all(buffers.map((buffer) => buffer.close())));

    // A's worker claims work (a buffer in this process stands in for it), while webhooks keep
    // arriving at A; then A dies.
    const first = Array.from({ length: 10 }, () => signed(d.secret));
    for (const e of first) expect((await deliver(a, e)).body.status).toBe('queued');
    const workerA = await open();
    const claimed = await workerA.claim({ owner: 'instance-a', leaseMs: 2_000, limit: 4 });
    expect(claimed).toHaveLength(4);

    const queued: string[] = first.map((e) => e.id);
    let stop = false;
    const stream = (async () => {
      while (!stop) {
        const e = signed(d.secret);
        try {
          const answer = await deliver(a, e);
          if (answer.body.status === 'queued') queued.push(e.id);
        } catch {
          return; // A is gone: this request got no answer
        }
      }
    })();
    await waitFor(() => queued.length >= 20, 'A to queue more events');
    a.child.kill('SIGKILL');
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
    stop = true;
    await stream;
    await workerA.close();

    // B's lease sweep puts the dead worker's events back to pending, counting the attempt.
    await waitFor(
      async () => (await health(b)).body.counts?.claimed === 0,
      "B's sweep to recover the expired leases",
      30_000,
    );
    const counts = (await health(b)).body.counts!;
    expect(counts.claimed).toBe(0);
    // The one request in flight when A died may be stored without its answer having arrived.
    expect(counts.pending! - queued.length).toBeGreaterThanOrEqual(0);
    expect(counts.pending! - queued.length).toBeLessThanOrEqual(1);
    const workerB = await open();
    const reclaimed = await workerB.claim({ owner: 'instance-b', leaseMs: 60_000, limit: 10 });
    expect(reclaimed.map((e) => e.id)).toEqual(first.map((e) => e.id));
    expect(reclaimed.slice(0, 4).map((e) => e.attempts)).toEqual([1, 1, 1, 1]);
    expect(reclaimed.slice(4).every((e) => e.attempts === 0)).toBe(true);
    const history = await workerB.history(first[0]!.id);
    expect(history.map((h) => h.kind)).toEqual(['received', 'claimed', 'lease_expired', 'claimed']);

    // Everything A answered `queued` before it died is there, once.
    const listed = await events(d, ['list', '--json']);
    const ids = (JSON.parse(listed.stdout) as { id: string }[]).map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(queued));
  });

  it.runIf(canSpawn)(
    'answers 503 while Redis is down, recovers when it is back, and loses nothing it queued',
    async () => {
      const tmp = tempDir('sem-scaleout-redis-');
      cleanups.push(tmp.remove);
      const redis = await privateRedis(tmp.dir);
      cleanups.push(() => redis.kill());
      const d = deployment(redis.url);
      const [a, b] = await Promise.all([instance(d), instance(d)]);
      const servers = [a, b];

      // Deliveries to both instances, round robin, for the whole test; each refused event is
      // delivered again, as Stripe does.
      const queued = new Set<string>();
      const refused: Answer[] = [];
      const refusedIds = new Set<string>();
      // Refused, then a duplicate when delivered again: Redis ran the write, the answer was lost.
      const storedAnyway = new Set<string>();
      const backlog: ReturnType<typeof signed>[] = [];
      let stop = false;
      let n = 0;
      const load = (async () => {
        while (!stop) {
          const e = backlog.shift() ?? signed(d.secret);
          const answer = await deliver(servers[n++ % 2]!, e);
          if (answer.status === 200 && answer.body.status === 'queued') queued.add(e.id);
          else if (answer.status === 503) {
            refused.push(answer);
            refusedIds.add(e.id);
            backlog.push(e);
            await new Promise((r) => setTimeout(r, 20));
          } else if (answer.body.status === 'duplicate' && refusedIds.has(e.id)) {
            storedAnyway.add(e.id);
          } else {
            throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
          }
        }
      })();
      try {
        await waitFor(() => queued.size >= 30, 'events queued before the outage');

        await redis.kill();
        for (const server of servers) {
          const down = await waitFor(async () => {
            const h = await health(server);
            return h.status === 503 ? h : undefined;
          }, '/healthz to answer 503 during the outage');
          expect(down.body).toMatchObject({ status: 'unavailable', store: { ok: false } });
        }
        await waitFor(() => refused.length >= 10, 'webhooks refused during the outage');
        for (const answer of refused) {
          expect(answer.body.error?.code).toBe('store_unavailable');
          expect(Number(answer.retryAfter)).toBeGreaterThan(0);
        }
        const queuedBeforeRestart = queued.size;

        await redis.start();
        for (const server of servers) {
          await waitFor(
            async () => (await health(server)).status === 200,
            '/healthz to recover without a restart',
          );
        }
        await waitFor(
          () => queued.size >= queuedBeforeRestart + 30 && backlog.length === 0,
          'deliveries to be queued again after the outage',
        );
      } finally {
        stop = true;
        await load;
      }
      // Neither server restarted; each logged the outage and the recovery.
      for (const server of servers) {
        expect(server.child.exitCode).toBeNull();
        const messages = server.logs().map((r) => `${String(r.level)} ${String(r.msg)}`);
        expect(messages).toContainEqual(
          expect.stringMatching(/^warn lost the connection to Redis/),
        );
        expect(messages).toContainEqual(expect.stringMatching(/^info reconnected to Redis/));
        expect(server.stderr()).not.toContain(d.secret);
      }

      // Everything answered `queued` survived the kill (appendfsync always), exactly once.
      const listed = await events(d, ['list', '--json']);
      expect(listed.code, listed.stderr).toBe(0);
      const ids = (JSON.parse(listed.stdout) as { id: string }[]).map((s) => s.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect([...queued].filter((id) => !ids.includes(id))).toEqual([]);
      expect(ids.filter((id) => !queued.has(id) && !storedAnyway.has(id))).toEqual([]);
    },
  );
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createMCPClient,
  experimental_createMCPEventWebhook as createMCPEventWebhook,
  type Experimental_MCPEvent as MCPEvent,
  type Experimental_MCPEventStore as MCPEventStore,
  type Experimental_MCPEventSubscription as MCPEventSubscription,
} from '@ai-sdk/mcp';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openSqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { e2eScope, type Cleanups } from '../helpers/e2e.js';
import { newSecret } from '../helpers/sign.js';
import { startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';
import { execFileSync } from 'node:child_process';
import { REPO_ROOT } from '../helpers/spawn.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';

/**
 * MCP Events end to end with a client nobody here wrote: the AI SDK's MCP client subscribes, and
 * its own webhook handler (which verifies the Standard Webhooks signature) receives the
 * deliveries of a real `serve` process. Every callback is on 127.0.0.1.
 */

const { cleanups, tmp } = e2eScope();
const redis = await redisGate();
const DISPUTE = 'charge.dispute.created';

beforeAll(() => {
  execFileSync(process.execPath, [`${REPO_ROOT}/node_modules/typescript/bin/tsc`, '-p', '.'], {
    cwd: REPO_ROOT,
  });
}, 120_000);

/** The AI SDK's subscription store, in memory (the application's job in real use). */
function memoryStore(): MCPEventStore & { subs: Map<string, MCPEventSubscription> } {
  const subs = new Map<string, MCPEventSubscription>();
  return {
    subs,
    async get(key) {
      return subs.get(key);
    },
    async getById(id) {
      return [...subs.values()].find((s) => s.id === id);
    },
    async set(sub) {
      subs.set(sub.key, sub);
    },
    async update(key, patch) {
      const sub = subs.get(key);
      if (sub) subs.set(key, { ...sub, ...patch } as MCPEventSubscription);
    },
    async delete(key) {
      subs.delete(key);
    },
  } as MCPEventStore & { subs: Map<string, MCPEventSubscription> };
}

interface Receiver {
  url: string;
  store: ReturnType<typeof memoryStore>;
  events: MCPEvent[];
  terminated: unknown[];
  /** Every request that reached the receiver, verified or not. */
  requests: number;
}

/** The AI SDK's webhook handler behind a node:http server on loopback. */
async function receiver(cleanups: Cleanups): Promise<Receiver> {
  const store = memoryStore();
  const out: Receiver = { url: '', store, events: [], terminated: [], requests: 0 };
  const handler = createMCPEventWebhook({
    store,
    onEvent: async ({ event }) => {
      out.events.push(event);
    },
    onTerminated: async ({ termination }) => {
      out.terminated.push(termination);
    },
  });
  const server = http.createServer((req, res) => {
    out.requests += 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string') headers.set(k, v);
      }
      const request = new Request(`http://127.0.0.1${req.url}`, {
        method: req.method,
        headers,
        body: Buffer.concat(chunks),
      });
      void handler(request).then(async (response) => {
        res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
        res.end(Buffer.from(await response.arrayBuffer()));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  out.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return out;
}

async function sendStripeEvent(
  server: ServeHandle,
  secret: string,
  type = DISPUTE,
): Promise<string> {
  const event = buildTestEvent(type);
  const payload = JSON.stringify(event);
  const res = await fetch(server.webhookUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret }),
    },
    body: payload,
  });
  expect(res.status).toBe(200);
  return String(event.id);
}

async function aiClient(server: ServeHandle, store: MCPEventStore) {
  const client = await createMCPClient({
    transport: { type: 'http', url: `${server.url}/mcp` },
    experimental_events: { store },
  });
  cleanups.push(() => client.close());
  return client;
}

/** The official SDK client, for poll (the AI SDK's client speaks webhooks only). */
async function sdkClient(server: ServeHandle): Promise<Client> {
  const client = new Client({ name: 'events-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  cleanups.push(() => client.close());
  return client;
}

const PollResult = z.object({
  events: z.array(
    z.object({
      eventId: z.string(),
      name: z.string(),
      timestamp: z.string(),
      data: z.record(z.string(), z.unknown()),
    }),
  ),
  cursor: z.string(),
  truncated: z.boolean(),
  hasMore: z.boolean(),
  nextPollMs: z.number(),
});

type EventFrame = { method: string; params: Record<string, unknown> };

/** Collects the `notifications/events/*` frames an `events/stream` pushes to this client. */
function eventFrames(sdk: Client): EventFrame[] {
  const frames: EventFrame[] = [];
  sdk.fallbackNotificationHandler = async (n) => {
    if (n.method.startsWith('notifications/events/')) frames.push(n as EventFrame);
  };
  return frames;
}

describe('MCP Events with the AI SDK client', () => {
  it('lists event types, delivers a queued Stripe event by signed webhook, resumes after a restart, replays by poll, stops on unsubscribe', async () => {
    const dataDir = tmp();
    const secret = newSecret();
    const env = { STRIPE_WEBHOOK_SECRET: secret };
    const args = ['--events-allow-loopback'];
    let server = await startServe({ dataDir, env, args });
    const hook = await receiver(cleanups);
    let client = await aiClient(server, hook.store);

    const listed = await client.experimental_events.list();
    const names = listed.events.map((e) => e.name);
    expect(names).toContain(DISPUTE);
    expect(names).toContain('stripe.event');
    const def = listed.events.find((e) => e.name === DISPUTE)!;
    expect(def.delivery).toEqual(expect.arrayContaining(['webhook', 'poll', 'push']));
    expect(Object.keys((def.inputSchema as { properties: object }).properties)).toEqual(
      expect.arrayContaining(['livemode', 'tools', 'min_amount']),
    );

    const sub = await client.experimental_events.subscribe({
      name: DISPUTE,
      arguments: { livemode: false },
      delivery: { mode: 'webhook', url: hook.url, allowInsecureLocalhost: true },
      ttlMs: 10 * 60_000,
    });
    expect(sub.id).toMatch(/^sub_/);
    expect(sub.truncated).toBe(false);
    const startCursor = sub.cursor;
    expect(startCursor).toEqual(expect.any(String));

    const first = await sendStripeEvent(server, secret);
    await waitFor(() => hook.events.some((e) => e.eventId === first), 'the first occurrence');
    const occurrence = hook.events[0]!;
    expect(occurrence.name).toBe(DISPUTE);
    const data = occurrence.data as Record<string, unknown>;
    expect(data.event_id).toBe(first);
    expect(data.tool).toBe('handle_dispute');
    expect(typeof data.amount).toBe('number');
    expect(data.amount_display).toMatch(/\d/);
    expect(String(data.untrusted_notice)).toContain('untrusted');

    // Restart: the subscription is in the store, the next event still arrives, none twice.
    await client.close();
    await server.stop();
    server = await startServe({ dataDir, env, args });
    client = await aiClient(server, hook.store);
    const second = await sendStripeEvent(server, secret);
    await waitFor(
      () => hook.events.some((e) => e.eventId === second),
      'the occurrence after a restart',
    );
    expect(hook.events.map((e) => e.eventId)).toEqual([first, second]);

    // Poll from the cursor the subscription started at: both, in order.
    const sdk = await sdkClient(server);
    const polled = await sdk.request(
      {
        method: 'events/poll',
        params: { name: DISPUTE, arguments: { livemode: false }, cursor: startCursor },
      },
      PollResult,
    );
    expect(polled.events.map((e) => e.eventId)).toEqual([first, second]);
    expect(polled.truncated).toBe(false);
    const again = await sdk.request(
      {
        method: 'events/poll',
        params: { name: DISPUTE, arguments: { livemode: false }, cursor: polled.cursor },
      },
      PollResult,
    );
    expect(again.events).toEqual([]);

    // Unsubscribe stops delivery: a second subscription (another callback) shows the sweep ran.
    const other = await receiver(cleanups);
    const otherClient = await aiClient(server, other.store);
    await otherClient.experimental_events.subscribe({
      name: DISPUTE,
      arguments: { livemode: false },
      delivery: { mode: 'webhook', url: other.url, allowInsecureLocalhost: true },
    });
    await client.experimental_events.unsubscribe({ id: sub.id });
    const third = await sendStripeEvent(server, secret);
    await waitFor(() => other.events.some((e) => e.eventId === third), 'the other subscription');
    expect(hook.events.map((e) => e.eventId)).toEqual([first, second]);
  }, 90_000);

  it('pushes occurrences on an events/stream request from its cursor', async () => {
    const secret = newSecret();
    const server = await startServe({ dataDir: tmp(), env: { STRIPE_WEBHOOK_SECRET: secret } });
    const sdk = await sdkClient(server);
    const polled = await sdk.request(
      { method: 'events/poll', params: { name: DISPUTE, arguments: {}, cursor: null } },
      PollResult,
    );
    const before = await sendStripeEvent(server, secret);
    const frames = eventFrames(sdk);
    const abort = new AbortController();
    const stream = sdk
      .request(
        {
          method: 'events/stream',
          params: { name: DISPUTE, arguments: {}, cursor: polled.cursor },
        },
        z.object({}).passthrough(),
        { signal: abort.signal, timeout: 60_000 },
      )
      .catch(() => undefined);
    const after = await sendStripeEvent(server, secret);
    const events = () => frames.filter((f) => f.method === 'notifications/events/event');
    await waitFor(() => events().length === 2, 'two pushed occurrences');
    expect(frames[0]!.method).toBe('notifications/events/active');
    expect(events().map((f) => f.params.eventId)).toEqual([before, after]);
    expect(events()[1]!.params._meta).toMatchObject({
      'io.modelcontextprotocol/subscriptionId': expect.anything(),
    });
    abort.abort();
    await stream;
  }, 60_000);

  it('ends a subscription that is not refreshed, with a terminated message', async () => {
    const server = await startServe({
      dataDir: tmp(),
      env: { STRIPE_WEBHOOK_SECRET: newSecret() },
      args: ['--events-allow-loopback'],
    });
    const hook = await receiver(cleanups);
    const client = await aiClient(server, hook.store);
    const sub = await client.experimental_events.subscribe({
      name: 'stripe.event',
      delivery: { mode: 'webhook', url: hook.url, allowInsecureLocalhost: true },
      ttlMs: 1_000,
    });
    expect(Date.parse(sub.refreshBefore!)).toBeLessThanOrEqual(Date.now() + 1_000);
    const url = [...hook.store.subs.values()][0]!.delivery.url;
    await waitFor(() => hook.terminated.length > 0, 'the terminated message');
    expect(hook.terminated[0]).toMatchObject({ type: 'terminated' });
    // Gone on the server too: the same principal's events/unsubscribe finds nothing.
    const sdk = await sdkClient(server);
    await expect(
      sdk.request(
        {
          method: 'events/unsubscribe',
          params: { name: 'stripe.event', arguments: {}, delivery: { url } },
        },
        z.object({}),
      ),
    ).rejects.toThrow(/No such subscription/);
  }, 60_000);

  it('refuses loopback callbacks at events/subscribe without --events-allow-loopback, sending nothing', async () => {
    const server = await startServe({
      dataDir: tmp(),
      env: { STRIPE_WEBHOOK_SECRET: newSecret() },
    });
    const hook = await receiver(cleanups);
    const client = await aiClient(server, hook.store);
    await expect(
      client.experimental_events.subscribe({
        name: DISPUTE,
        delivery: { mode: 'webhook', url: hook.url, allowInsecureLocalhost: true },
      }),
    ).rejects.toThrow(/https|loopback/);
    const port = new URL(hook.url).port;
    for (const url of [
      `https://127.0.0.1:${port}/hooks`,
      `https://[::1]:${port}/hooks`,
      `https://localhost:${port}/hooks`,
      `https://[::ffff:127.0.0.1]:${port}/hooks`,
    ]) {
      await expect(
        client.experimental_events.subscribe({ name: DISPUTE, delivery: { mode: 'webhook', url } }),
      ).rejects.toThrow(/loopback|refused/);
    }
    expect(hook.requests).toBe(0);
  }, 60_000);
});

describe.runIf(redis.run)('MCP Events on Redis with two instances', () => {
  it('delivers each occurrence once per subscription, in order, whichever instance queued it', async () => {
    const prefix = uniquePrefix('events');
    cleanups.push(() => deleteKeys(prefix).then(() => undefined));
    const secret = newSecret();
    const start = () =>
      startServe({
        dataDir: tmp(),
        env: { STRIPE_WEBHOOK_SECRET: secret, REDIS_URL },
        args: ['--store', 'redis', '--redis-prefix', prefix, '--events-allow-loopback'],
      });
    const [a, b] = await Promise.all([start(), start()]);
    const hook = await receiver(cleanups);
    const client = await aiClient(a, hook.store);
    await client.experimental_events.subscribe({
      name: 'stripe.event',
      delivery: { mode: 'webhook', url: hook.url, allowInsecureLocalhost: true },
    });
    const sent: string[] = [];
    for (let i = 0; i < 12; i++) sent.push(await sendStripeEvent(i % 2 ? b : a, secret));
    // A last one: deliveries to one subscription go in order, so once it is in, any second
    // delivery of an earlier one would be in too.
    sent.push(await sendStripeEvent(b, secret));
    await waitFor(() => hook.events.some((e) => e.eventId === sent.at(-1)), 'the last occurrence');
    expect(hook.events.map((e) => e.eventId)).toEqual(sent);
  }, 90_000);
});

describe('MCP Events: the queue happenings as event types', () => {
  const HELD = 'queue.call_awaiting_approval';

  /** Holds a queued event for approval as the agent loop does, from another process's store. */
  async function holdForApproval(dataDir: string, id: string): Promise<void> {
    const store = openSqliteBuffer(dataDir, {});
    try {
      const [claimed] = await store.claim({ owner: 'agent:test', leaseMs: 600_000 });
      expect(claimed!.id).toBe(id);
      await store.hold(id, claimed!.leaseOwner!, 'amount over the approval threshold', [
        {
          kind: 'decision',
          model: 'fake',
          outcome: 'decided',
          tool_call: { name: 'handle_dispute', input: { action: 'accept_dispute' } },
        },
      ]);
    } finally {
      await store.close();
    }
  }

  it('polls (SDK client) and receives by webhook (AI SDK client) a call awaiting approval, and resumes from a cursor', async () => {
    const dataDir = tmp();
    const secret = newSecret();
    const server = await startServe({
      dataDir,
      env: { STRIPE_WEBHOOK_SECRET: secret },
      args: ['--events-allow-loopback'],
    });
    const sdk = await sdkClient(server);
    const hook = await receiver(cleanups);
    const client = await aiClient(server, hook.store);

    const listed = await client.experimental_events.list();
    expect(listed.events.map((e) => e.name)).toEqual(
      expect.arrayContaining([HELD, 'queue.event_dead', 'queue.agent_paused']),
    );

    const head = await sdk.request(
      { method: 'events/poll', params: { name: HELD, arguments: {}, cursor: null } },
      PollResult,
    );
    expect(head.events).toEqual([]);
    await client.experimental_events.subscribe({
      name: HELD,
      arguments: { livemode: false },
      delivery: { mode: 'webhook', url: hook.url, allowInsecureLocalhost: true },
    });

    const first = await sendStripeEvent(server, secret);
    await holdForApproval(dataDir, first);

    const polled = await sdk.request(
      { method: 'events/poll', params: { name: HELD, arguments: {}, cursor: head.cursor } },
      PollResult,
    );
    expect(polled.events).toHaveLength(1);
    const data = polled.events[0]!.data;
    expect(polled.events[0]!.name).toBe(HELD);
    expect(data).toMatchObject({ happening: 'held', event_id: first, tool: 'handle_dispute' });
    expect(String(data.amount_display)).toMatch(/\d/);
    expect(String(data.reason)).toContain('amount over the approval threshold');
    expect(data.proposed_call).toMatchObject({ name: 'handle_dispute' });

    // The AI SDK's webhook handler verified and received the same happening.
    await waitFor(
      () => hook.events.some((e) => (e.data as { event_id?: string }).event_id === first),
      'the held call by webhook',
    );
    expect(hook.events.map((e) => e.name)).toEqual([HELD]);

    // Resume from the poll's cursor: only what came after, none twice. (Another object: a second
    // dispute about the same one would wait behind the held one.)
    const second = await sendStripeEvent(server, secret, 'invoice.payment_failed');
    await holdForApproval(dataDir, second);
    const resumed = await sdk.request(
      { method: 'events/poll', params: { name: HELD, arguments: {}, cursor: polled.cursor } },
      PollResult,
    );
    expect(resumed.events.map((e) => e.data.event_id)).toEqual([second]);
    // From the first cursor again: both, in order.
    const all = await sdk.request(
      { method: 'events/poll', params: { name: HELD, arguments: {}, cursor: head.cursor } },
      PollResult,
    );
    expect(all.events.map((e) => e.data.event_id)).toEqual([first, second]);
    await waitFor(() => hook.events.length === 2, 'the second held call by webhook');
    expect(hook.events.map((e) => (e.data as { event_id: string }).event_id)).toEqual([
      first,
      second,
    ]);

    // A Stripe type's cursor is not a position of a queue type: refused, not misread.
    await expect(
      sdk.request(
        { method: 'events/poll', params: { name: DISPUTE, arguments: {}, cursor: all.cursor } },
        PollResult,
      ),
    ).rejects.toThrow(/not of charge\.dispute\.created/);
  }, 90_000);

  it('pushes the agent pause on an events/stream of queue.agent_paused', async () => {
    const dataDir = tmp();
    const server = await startServe({ dataDir, env: { STRIPE_WEBHOOK_SECRET: newSecret() } });
    const sdk = await sdkClient(server);
    const frames = eventFrames(sdk);
    const abort = new AbortController();
    const stream = sdk
      .request(
        { method: 'events/stream', params: { name: 'queue.agent_paused', arguments: {} } },
        z.object({}).passthrough(),
        { signal: abort.signal, timeout: 60_000 },
      )
      .catch(() => undefined);
    await waitFor(
      () => frames.some((f) => f.method === 'notifications/events/active'),
      'the stream',
    );
    // Paused by another process on the store (as `agent pause` would): the stream hears of it.
    const store = openSqliteBuffer(dataDir, {});
    await store.setAgentPause({
      paused: true,
      reason: 'manual',
      by: 'cli:ops',
      note: 'refund spike',
      since: Date.now(),
      until: null,
    });
    await store.close();
    const events = () => frames.filter((f) => f.method === 'notifications/events/event');
    await waitFor(() => events().length === 1, 'the pushed pause');
    expect(events()[0]!.params).toMatchObject({
      name: 'queue.agent_paused',
      data: { happening: 'paused', reason: 'manual', by: 'cli:ops' },
    });
    expect(String((events()[0]!.params.data as { note: string }).note)).toContain('refund spike');
    abort.abort();
    await stream;
  }, 60_000);
});

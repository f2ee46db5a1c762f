import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer } from '../../src/app.js';
import type { IncomingEvent } from '../../src/buffer/buffer.js';
import { loadServeConfig } from '../../src/config/config.js';
import { postWebhook, newSecret, signatureHeader } from '../helpers/sign.js';
import { CLI, jsonLines, killLeftovers, startServe, waitFor } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { ChannelFeed } from '../../src/mcp/channel.js';
import { createLogger } from '../../src/logger.js';
import {
  connectInMemory,
  freePort,
  hostileDispute,
  incoming,
  INJECTION,
  newClient,
  onlyInsideFences,
  openStore,
  silent,
  type Cleanups,
} from './helpers.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killLeftovers();
});

const METHOD = 'notifications/claude/channel';
const IDENTIFIER = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Received {
  content: string;
  meta: Record<string, unknown>;
  at: number;
}

/** Collects the channel notifications a client receives (a method the SDK does not know). */
function channelInbox(client: Client): Received[] {
  const received: Received[] = [];
  client.fallbackNotificationHandler = async (n) => {
    if (n.method !== METHOD) return;
    const params = n.params as { content: string; meta: Record<string, unknown> };
    received.push({ content: params.content, meta: params.meta, at: Date.now() });
  };
  return received;
}

function dataDir(): string {
  const tmp = tempDir('sem-channel-');
  cleanups.push(tmp.remove);
  return tmp.dir;
}

/** The built binary over stdio, spawned in / like Claude Code does. */
async function startStdio(dir: string, options: { port?: number; secret: string }) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'stdio', '--port', String(options.port ?? 0)],
    cwd: '/',
    env: {
      ...getDefaultEnvironment(),
      STRIPE_EVENTS_DATA_DIR: dir,
      STRIPE_WEBHOOK_SECRET: options.secret,
      LOG_LEVEL: 'info',
    },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const client = newClient('channel-test');
  const channel = channelInbox(client);
  await client.connect(transport);
  cleanups.push(() => client.close());
  const ready = await waitFor(
    () => jsonLines(stderr).find((r) => r.msg === 'mcp stdio session ready'),
    'the stdio session to be ready',
  );
  return {
    client,
    channel,
    stderr: () => stderr,
    webhook: typeof ready.webhook === 'string' ? ready.webhook : null,
  };
}

async function post(webhook: string, e: IncomingEvent, secret: string): Promise<void> {
  const res = await postWebhook(webhook.replace(/\/stripe\/webhook$/, ''), e.payload, {
    'stripe-signature': signatureHeader(e.payload, secret),
  });
  expect(res.status).toBe(200);
}

function expectWellFormedMeta(meta: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(meta)) {
    expect(key).toMatch(IDENTIFIER);
    expect(typeof value).toBe('string');
  }
}

describe('Claude Code channel over stdio (the built binary)', () => {
  it('declares the capability, explains it in the instructions, and pushes a webhook within a second', async () => {
    const secret = newSecret();
    const s = await startStdio(dataDir(), { secret });
    expect(s.client.getServerCapabilities()?.experimental).toEqual({ 'claude/channel': {} });
    const instructions = s.client.getInstructions() ?? '';
    for (const tool of ['get_event', 'ack_event', 'nack_event', 'approve_action', 'replay_event']) {
      expect(instructions).toContain(tool);
    }
    expect(instructions).toMatch(/<channel> message/);
    expect(instructions).toMatch(/never grants permission/);

    const e = hostileDispute();
    const sentAt = Date.now();
    await post(s.webhook!, e, secret);
    const got = await waitFor(() => s.channel[0], 'the channel notification');
    expect(got.at - sentAt).toBeLessThan(1000);
    expect(s.channel).toHaveLength(1);

    expectWellFormedMeta(got.meta);
    expect(got.meta).toMatchObject({
      event_id: e.id,
      event_type: 'charge.dispute.created',
      tool: 'handle_dispute',
      status: 'pending',
      count: '1',
    });
    expect(got.meta.amount).toMatch(/^\d+$/);
    expect(got.meta.currency).toMatch(/^[a-z]{3}$/);
    expect(got.content).toContain('handle_dispute');
    expect(got.content).toContain(e.id);
    expect(got.content).toMatch(/get_event.*ack_event/s);
    // The customer's text reaches the model only inside the nonce fences, never in attributes.
    expect(onlyInsideFences(got.content, INJECTION)).toBe(true);
    expect(JSON.stringify(got.meta)).not.toContain('IGNORE');
    expect(JSON.stringify(got.meta)).not.toContain('untrusted');
  });

  it("an attached stdio process (the port held by serve) delivers the other process's event", async () => {
    const secret = newSecret();
    const dir = dataDir();
    const port = await freePort();
    const serve = await startServe({
      dataDir: dir,
      args: ['--port', String(port)],
      env: { STRIPE_WEBHOOK_SECRET: secret },
    });
    cleanups.push(async () => void (await serve.stop()));
    const s = await startStdio(dir, { port, secret });
    expect(s.webhook).toBeNull();
    expect(s.stderr()).toMatch(/is in use .*attached/);

    const e = incoming('invoice.payment_failed');
    await post(serve.webhookUrl, e, secret);
    const got = await waitFor(() => s.channel[0], 'the attached process to push the event');
    expectWellFormedMeta(got.meta);
    expect(got.meta).toMatchObject({
      event_id: e.id,
      event_type: 'invoice.payment_failed',
      tool: 'retry_failed_payment',
      status: 'pending',
    });
    expect(got.content).toContain('retry_failed_payment');
  });

  it('a burst of 100 events becomes at most 20 notifications that count them all', async () => {
    const secret = newSecret();
    const s = await startStdio(dataDir(), { secret });
    const events = Array.from({ length: 100 }, () => incoming('charge.refunded'));
    for (let i = 0; i < events.length; i += 10) {
      await Promise.all(events.slice(i, i + 10).map((e) => post(s.webhook!, e, secret)));
    }
    const total = () => s.channel.reduce((n, r) => n + Number(r.meta.count), 0);
    await waitFor(() => total() >= 100, 'every event to be counted', 60_000);
    expect(total()).toBe(100);
    expect(s.channel.length).toBeLessThanOrEqual(20);
    const counted = s.channel.find((r) => Number(r.meta.count) > 1);
    expect(counted?.content).toMatch(new RegExp(`^${counted?.meta.count} Stripe events`));
    expect(counted?.content).toMatch(/…and \d+ more/);
    for (const r of s.channel) expectWellFormedMeta(r.meta);
  });
});

describe('Claude Code channel (in memory)', () => {
  it('announces a decision that starts awaiting approval and an event that goes dead', async () => {
    const store = openStore(cleanups, { maxAttempts: 1 });
    const c = await connectInMemory(store, cleanups);
    const channel = channelInbox(c.client);

    const held = hostileDispute();
    await store.buffer.append(held);
    await waitFor(() => channel.length === 1, 'the pending notification');
    const [claimed] = await store.buffer.claim({ owner: 'agent', leaseMs: 60_000 });
    const call = store.catalog.toolCall(held.type, held.payload)!;
    await store.buffer.hold(held.id, claimed!.leaseOwner!, `needs a person: ${INJECTION}`, [
      {
        kind: 'decision',
        tool_call: { name: call.name, input: { ...call.input, action: 'accept' } },
      },
    ]);
    const approval = await waitFor(
      () => channel.find((r) => r.meta.status === 'awaiting_approval'),
      'the approval notification',
    );
    expect(approval.meta).toMatchObject({ event_id: held.id, tool: 'handle_dispute' });
    expect(approval.content).toContain('approve_action');
    expect(approval.content).toContain('(action: accept)');
    expect(onlyInsideFences(approval.content, INJECTION)).toBe(true);
    expectWellFormedMeta(approval.meta);

    const dying = incoming('invoice.payment_failed');
    await store.buffer.append(dying);
    const [claim] = await store.buffer.claim({
      owner: 'agent',
      leaseMs: 60_000,
      types: [dying.type],
    });
    await store.buffer.nack(dying.id, { reason: 'sink said 500', token: claim!.leaseOwner! });
    const dead = await waitFor(
      () => channel.find((r) => r.content.includes(dying.id) && /\bdead\b/.test(r.content)),
      'the dead notification',
    );
    // The pending notice for `dying` and its death may share one notification (one per second).
    expect(dead.content).toContain(dying.id);
    expectWellFormedMeta(dead.meta);
  });
});

describe('Claude Code channel: amounts', () => {
  it('keeps the raw amount and currency attributes and adds the amount in its currency', async () => {
    const store = openStore(cleanups);
    const c = await connectInMemory(store, cleanups);
    const channel = channelInbox(c.client);
    const e = incoming('charge.dispute.created', {
      'data.object.amount': 50_000,
      'data.object.currency': 'jpy',
    });
    await store.buffer.append(e);
    const got = await waitFor(() => channel[0], 'the pending notification');
    expectWellFormedMeta(got.meta);
    expect(got.meta).toMatchObject({ amount: '50000', currency: 'jpy', amount_display: '¥50,000' });
    // The facts in the text say what the integer means.
    expect(got.content).toContain('amount: 50000 (= ¥50,000 jpy)');
  });
});

describe('Claude Code channel over Streamable HTTP', () => {
  it('every session gets its own channel notification, by the same code path', async () => {
    const tmp = tempDir('sem-channel-http-');
    cleanups.push(tmp.remove);
    const secret = newSecret();
    const config = loadServeConfig(
      { port: '0', dataDir: tmp.dir },
      { STRIPE_WEBHOOK_SECRET: secret },
    );
    const server = await startServer(config, { logger: silent, notice: () => {} });
    cleanups.push(() => server.close());
    const sessions = [];
    for (let i = 0; i < 2; i++) {
      const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
      const client = newClient(`channel-http-${i}`);
      const channel = channelInbox(client);
      await client.connect(transport);
      cleanups.push(() => client.close());
      expect(client.getServerCapabilities()?.experimental).toEqual({ 'claude/channel': {} });
      const sessionId = transport.sessionId!;
      await waitFor(() => server.mcp.hasEventStream(sessionId), 'the GET event stream');
      sessions.push(channel);
    }
    const e = hostileDispute();
    await post(`${server.url}/stripe/webhook`, e, secret);
    for (const channel of sessions) {
      const got = await waitFor(() => channel[0], 'each session to be told');
      expect(got.meta).toMatchObject({ event_id: e.id, tool: 'handle_dispute', count: '1' });
      expect(onlyInsideFences(got.content, INJECTION)).toBe(true);
    }
  });
});

describe('channel feed', () => {
  it('never announces again an event it counted in "…and N more", when a rescan follows', async () => {
    const buffer = new MemoryBuffer();
    const pushed: { found: number; more: number }[] = [];
    const feed = new ChannelFeed(buffer, createLogger({ level: 'silent' }), () => [
      { channel: { push: (found, more) => pushed.push({ found: found.length, more }) } },
    ]);
    feed.start();
    // Let the start-up pending count land before the burst.
    await new Promise((r) => setTimeout(r, 10));
    const burst = Array.from({ length: 50 }, () => incoming('charge.refunded'));
    for (const e of burst) await buffer.append(e);
    // One round: the 50 queued changes, then a commit the feed cannot attribute (as when the
    // poll sees this process's own commit before the writer's answer): a rescan.
    feed.observe([
      ...burst.map((e) => ({ kind: 'queued' as const, id: e.id, type: e.type })),
      { kind: 'external' as const },
    ]);
    const total = () => pushed.reduce((n, p) => n + p.found + p.more, 0);
    await waitFor(() => total() >= 50, 'the burst to be announced or counted');
    await new Promise((r) => setTimeout(r, 400));
    expect(total()).toBe(50);
    feed.stop();
  });
});

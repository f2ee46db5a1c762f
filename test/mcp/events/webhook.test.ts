import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebhookSubscription } from '../../../src/buffer/subscriptions.js';
import { MemoryBuffer } from '../../../src/buffer/memory.js';
import { createCatalog } from '../../../src/catalog/catalog.js';
import { createLogger } from '../../../src/logger.js';
import { encodeEventsCursor } from '../../../src/mcp/events/cursor.js';
import { headPosition } from '../../../src/mcp/events/read.js';
import { ANY_EVENT } from '../../../src/mcp/events/types.js';
import { backoffMs, RETRY_FOR_MS, WebhookDeliverer } from '../../../src/mcp/events/webhook.js';
import { buildTestEvent } from '../../../src/stripe/fixtures.js';
import { waitFor } from '../../helpers/spawn.js';

/** The deliverer on a memory store with a clock the test moves; the callback on 127.0.0.1. */

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

interface Hit {
  id: string;
  body: Record<string, unknown>;
}

async function callback(
  answer: (n: number, hit: Hit) => number,
): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const hit = {
        id: String(req.headers['webhook-id']),
        body: JSON.parse(body) as Record<string, unknown>,
      };
      hits.push(hit);
      res.writeHead(answer(hits.length, hit)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits };
}

async function setup(answer: (n: number, hit: Hit) => number, refreshInMs: number | null = null) {
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const buffer = new MemoryBuffer({ now });
  const catalog = createCatalog();
  const deliverer = new WebhookDeliverer({
    buffer,
    catalog,
    redact: [],
    logger: createLogger({ level: 'silent' }),
    allow: { loopback: true, privateRanges: false },
    now,
    sweepMs: 60_000,
  });
  closers.push(async () => {
    await deliverer.stop();
    await buffer.close();
  });
  const cb = await callback(answer);
  const reader = { buffer, catalog, redact: [], now };
  const sub: WebhookSubscription = {
    id: 'sub_test',
    principal: 'loopback',
    name: ANY_EVENT,
    arguments: '{}',
    url: cb.url,
    secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}`,
    cursor: encodeEventsCursor(await headPosition(reader, ANY_EVENT)),
    refreshBefore: refreshInMs === null ? null : clock + refreshInMs,
    failures: 0,
    nextAttemptAt: clock,
    lastError: null,
    lastDeliveryAt: null,
    createdAt: clock,
  };
  await buffer.subscriptions.put(sub);
  const append = async (type = 'charge.dispute.created') => {
    const event = buildTestEvent(type);
    await buffer.append({
      id: String(event.id),
      type,
      created: Number(event.created),
      livemode: false,
      objectId: null,
      payload: JSON.stringify(event),
    });
    return String(event.id);
  };
  const advance = (ms: number) => (clock += ms);
  const get = () => buffer.subscriptions.get('sub_test');
  /** Runs the deliverer until the sweeps settle. */
  const settle = async () => {
    deliverer.kick();
    await deliverer.idle();
  };
  return { buffer, deliverer, cb, append, advance, sub, now, get, settle };
}

describe('webhook delivery', () => {
  it('retries a failed occurrence with backoff, in order, and sends the next only after it', async () => {
    const t = await setup((n) => (n <= 2 ? 503 : 204));
    const first = await t.append();
    const second = await t.append();
    await t.settle();
    expect(t.cb.hits.map((h) => h.id)).toEqual([first]);
    expect(await t.get()).toMatchObject({ failures: 1, lastError: 'http_5xx' });
    // Not before the backoff, however often it is kicked.
    t.advance(backoffMs(1) - 1);
    await t.settle();
    await t.settle();
    expect(t.cb.hits.length).toBe(1);
    t.advance(1);
    await t.settle();
    expect(t.cb.hits.length).toBe(2);
    expect(await t.get()).toMatchObject({ failures: 2 });
    expect(backoffMs(2)).toBe(2 * backoffMs(1));
    t.advance(backoffMs(2));
    await t.settle();
    expect(t.cb.hits.map((h) => h.id)).toEqual([first, first, first, second]);
    expect(await t.get()).toMatchObject({ failures: 0, lastError: null });
  });

  it('gives an occurrence up after RETRY_FOR_MS, retrying for hours, then sends the next', async () => {
    let stuck = '';
    const t = await setup((_n, hit) => (hit.id === stuck ? 500 : 204));
    stuck = await t.append();
    const next = await t.append();
    const began = t.now();
    let guard = 0;
    while (!t.cb.hits.some((h) => h.id === next) && guard++ < 300) {
      const s = await t.get();
      if (s) t.advance(Math.max(0, s.nextAttemptAt - t.now()));
      await t.settle();
    }
    const attempts = t.cb.hits.filter((h) => h.id === stuck).length;
    expect(attempts).toBeGreaterThan(50);
    expect(t.now() - began).toBeGreaterThanOrEqual(RETRY_FOR_MS);
    expect(t.cb.hits.at(-1)!.id).toBe(next);
  });

  it('does not retry a 413', async () => {
    let big = '';
    const t = await setup((_n, hit) => (hit.id === big ? 413 : 204));
    big = await t.append();
    const next = await t.append();
    await t.settle();
    await t.settle();
    expect(t.cb.hits.map((h) => h.id)).toEqual([big, next]);
  });

  it('ends a subscription the receiver answers 410 for, and one not refreshed in time with terminated', async () => {
    const gone = await setup(() => 410);
    await gone.append();
    gone.deliverer.start();
    await waitFor(
      async () => (await gone.buffer.subscriptions.get('sub_test')) === null,
      'removal on 410',
    );

    const late = await setup(() => 204, 5_000);
    late.advance(5_001);
    late.deliverer.start();
    await waitFor(() => late.cb.hits.length === 1, 'the terminated body');
    expect(late.cb.hits[0]!.body).toMatchObject({ type: 'terminated', error: { code: -32011 } });
    expect(late.cb.hits[0]!.id).toMatch(/^msg_terminated_/);
    expect(await late.buffer.subscriptions.get('sub_test')).toBeNull();
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { startServer } from '../../src/app.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import { loadServeConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import {
  backfill,
  parseSince,
  resumeSince,
  RETENTION_SECONDS,
  startPeriodicBackfill,
  typeChunks,
} from '../../src/ingress/backfill.js';
import { createStripeClient, loadStripeApiSettings } from '../../src/stripe/client.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { openSqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { tempDir } from '../helpers/tmp.js';
import { makeEvents, startFakeStripe, type FakeStripe } from '../helpers/fake-stripe.js';

const silent = createLogger({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const MAPPED = ['charge.dispute.created', 'invoice.payment_failed', 'charge.refunded'];
const UNMAPPED = ['charge.succeeded', 'customer.created'];

async function fake(events: Record<string, unknown>[]): Promise<FakeStripe> {
  const f = await startFakeStripe({ events });
  cleanups.push(() => f.close());
  return f;
}

function client(f: FakeStripe, key = f.key) {
  return createStripeClient({ secretKey: key, apiBase: f.url, maxNetworkRetries: 0 });
}

function store() {
  const tmp = tempDir('sem-backfill-');
  const buffer = openSqliteBuffer(tmp.dir);
  cleanups.push(tmp.remove);
  cleanups.push(() => buffer.close());
  return buffer;
}

function query(f: FakeStripe, n: number) {
  return Object.fromEntries(f.requests[n]!.query);
}

describe('backfill (stripe-node against a fake Events API over HTTP)', () => {
  it('walks three pages; events also received by webhook are stored once; a second run adds nothing', async () => {
    const tmp = tempDir('sem-backfill-');
    cleanups.push(tmp.remove);
    const secret = newSecret();
    const config = loadServeConfig(
      { port: '0', dataDir: tmp.dir },
      { STRIPE_WEBHOOK_SECRET: secret },
    );
    const server = await startServer(config, { logger: silent, notice: () => {} });
    cleanups.push(() => server.close());

    const events = makeEvents(MAPPED, 250);
    // Ten of them arrived by webhook before the backfill (signed, through the real route).
    for (const e of events.slice(100, 110)) {
      const payload = JSON.stringify(e);
      const res = await postWebhook(server.url, payload, {
        'stripe-signature': signatureHeader(payload, secret),
      });
      expect(res.body.status).toBe('queued');
    }
    const f = await fake(events);
    const progress: number[] = [];
    const counts = await backfill({
      stripe: client(f),
      buffer: server.buffer,
      catalog: server.catalog,
      since: parseSince('24h'),
      onProgress: (c) => progress.push(c.fetched),
    });
    expect(counts).toMatchObject({ fetched: 250, queued: 240, duplicate: 10, ignored: 0 });
    expect(progress.at(-1)).toBe(250);
    expect(f.requests).toHaveLength(3);
    expect((await server.buffer.stats()).counts.pending).toBe(250);

    // The key, the catalog's types and the page size are sent; pages follow starting_after.
    const catalogTypes = createCatalog().types();
    for (const r of f.requests) expect(r.authorization).toBe(`Bearer ${f.key}`);
    const first = query(f, 0);
    expect(first.limit).toBe('100');
    expect(Number(first['created[gte]'])).toBeGreaterThan(Date.now() / 1000 - 86_400 - 5);
    expect(f.requests[0]!.query.getAll('types[0]')).toEqual([catalogTypes[0]]);
    const sentTypes = [...f.requests[0]!.query]
      .filter(([k]) => k.startsWith('types['))
      .map(([, v]) => v);
    expect(sentTypes.sort()).toEqual([...catalogTypes].sort());
    expect(query(f, 1).starting_after).toBe(events[99]!.id);
    expect(query(f, 2).starting_after).toBe(events[199]!.id);

    // The stored payload is the event as the API returned it.
    const stored = await server.buffer.get(events[0]!.id as string);
    expect(JSON.parse(stored!.payload)).toEqual(events[0]);
    expect(stored!.objectId).toBe((events[0]!.data as any).object.id);

    const again = await backfill({
      stripe: client(f),
      buffer: server.buffer,
      catalog: server.catalog,
      since: parseSince('24h'),
    });
    expect(again).toMatchObject({ fetched: 250, queued: 0, duplicate: 250 });
    expect((await server.buffer.stats()).counts.pending).toBe(250);
  });

  it('counts types the catalog does not map as ignored and stores nothing of them', async () => {
    const f = await fake(makeEvents([...MAPPED, ...UNMAPPED], 50));
    const buffer = store();
    const counts = await backfill({
      stripe: client(f),
      buffer,
      catalog: createCatalog(),
      since: parseSince('1h'),
      types: [...MAPPED, ...UNMAPPED],
    });
    expect(counts).toMatchObject({ fetched: 50, queued: 30, ignored: 20, duplicate: 0 });
    expect((await buffer.stats()).counts.pending).toBe(30);
  });

  it('skips events whose envelope the webhook would refuse, counted as ignored (issue #15)', async () => {
    const events = makeEvents(MAPPED, 6);
    let deep: unknown = {};
    for (let i = 0; i < 100; i++) deep = { deep };
    events[1] = { ...events[1], deep };
    events[3] = { ...events[3], data: { object: [] } };
    const f = await fake(events);
    const buffer = store();
    const counts = await backfill({
      stripe: client(f),
      buffer,
      catalog: createCatalog(),
      since: parseSince('1h'),
    });
    expect(counts).toMatchObject({ fetched: 6, queued: 4, ignored: 2 });
    expect(await buffer.get(events[1]!.id as string)).toBeNull();
    expect(await buffer.get(events[3]!.id as string)).toBeNull();
  });

  it('splits more than 20 catalog types over several requests', async () => {
    const extra = Object.fromEntries(
      Array.from({ length: 15 }, (_, i) => [`test.extra_${i}.created`, { tool: `extra_${i}` }]),
    );
    const catalog = createCatalog(extra);
    expect(catalog.types().length).toBe(27);
    expect(typeChunks(catalog.types()).map((c) => c.length)).toEqual([20, 7]);
    const f = await fake(makeEvents(MAPPED, 5));
    const counts = await backfill({
      stripe: client(f),
      buffer: store(),
      catalog,
      since: parseSince('1h'),
    });
    expect(counts.queued).toBe(5);
    expect(f.requests).toHaveLength(2);
    const sent = f.requests.map((r) => [...r.query].filter(([k]) => k.startsWith('types[')).length);
    expect(sent).toEqual([20, 7]);
  });

  it('walks forward from an event id with ending_before, oldest first', async () => {
    const events = makeEvents(MAPPED, 230);
    const f = await fake(events);
    const buffer = store();
    const cursor = events[200]!.id as string;
    const counts = await backfill({
      stripe: client(f),
      buffer,
      catalog: createCatalog(),
      since: parseSince(cursor),
    });
    expect(counts.queued).toBe(200);
    expect(query(f, 0).ending_before).toBe(cursor);
    expect(query(f, 0)['created[gte]']).toBeUndefined();
    expect(query(f, 1).ending_before).toBe(events[100]!.id);
    // Stored in the order Stripe created them.
    const page = await buffer.list({ limit: 3 });
    expect(page.events.map((e) => e.id)).toEqual(
      events
        .slice(197, 200)
        .reverse()
        .map((e) => e.id),
    );
  });

  it('walks on after rate limits (429) with backoff', async () => {
    const f = await fake(makeEvents(MAPPED, 150));
    const buffer = store();
    const stripe = client(f);
    const catalog = createCatalog();
    f.rateLimitNext(2);
    const started = Date.now();
    const counts = await backfill({
      stripe,
      buffer,
      catalog,
      since: parseSince('1h'),
      rateLimitBackoffMs: 20,
    });
    expect(counts).toMatchObject({ fetched: 150, queued: 150 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect(f.requests).toHaveLength(4);

    // A rate limit in the middle of the walk: it starts again after the last event handled.
    const f2 = await fake(makeEvents(MAPPED, 150));
    let served = 0;
    const onProgress = () => {
      if (++served === 100) f2.rateLimitNext(1);
    };
    const c2 = await backfill({
      stripe: client(f2),
      buffer: store(),
      catalog,
      since: parseSince('1h'),
      rateLimitBackoffMs: 5,
      onProgress,
    });
    expect(c2).toMatchObject({ fetched: 150, queued: 150, duplicate: 0 });
    expect(query(f2, 2).starting_after).toBe(f2.events[99]!.id);

    // Past the retries, the rate limit is the error.
    f.rateLimitNext(10);
    await expect(
      backfill({
        stripe,
        buffer,
        catalog,
        since: parseSince('1h'),
        rateLimitRetries: 1,
        rateLimitBackoffMs: 1,
      }),
    ).rejects.toMatchObject({ statusCode: 429 });
  });

  it("stripe-node's own retries (maxNetworkRetries) honour Stripe-Should-Retry on a 429", async () => {
    const f = await fake(makeEvents(MAPPED, 3));
    const http = await import('node:http');
    // A proxy in front of the fake: the first answer is a 429 that asks for a retry.
    let first = true;
    const proxy = http.createServer((req, res) => {
      if (first) {
        first = false;
        res.writeHead(429, { 'content-type': 'application/json', 'stripe-should-retry': 'true' });
        res.end(JSON.stringify({ error: { type: 'rate_limit_error', message: 'slow down' } }));
        return;
      }
      fetch(f.url + req.url, { headers: { authorization: req.headers.authorization ?? '' } }).then(
        async (r) => {
          res.writeHead(r.status, { 'content-type': 'application/json' });
          res.end(await r.text());
        },
      );
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => proxy.close(() => r())));
    const port = (proxy.address() as { port: number }).port;
    const stripe = createStripeClient({ secretKey: f.key, apiBase: `http://127.0.0.1:${port}` });
    const counts = await backfill({
      stripe,
      buffer: store(),
      catalog: createCatalog(),
      since: parseSince('1h'),
      rateLimitRetries: 0,
    });
    expect(counts.queued).toBe(3);
  });

  it('rejects with Stripe’s error for a wrong key', async () => {
    const f = await fake(makeEvents(MAPPED, 3));
    await expect(
      backfill({
        stripe: client(f, 'sk_test_wrong'),
        buffer: store(),
        catalog: createCatalog(),
        since: parseSince('1h'),
      }),
    ).rejects.toMatchObject({ statusCode: 401, message: expect.stringMatching(/Invalid API Key/) });
  });

  it('clamps a start older than 30 days and asks only for what Stripe keeps', async () => {
    const now = Date.now();
    const since = parseSince('45d', now);
    expect(since).toEqual({
      kind: 'created',
      gte: Math.ceil(now / 1000) - RETENTION_SECONDS,
      clamped: true,
    });
    expect(parseSince('2020-01-01T00:00Z', now)).toMatchObject({ clamped: true });
    const events = makeEvents(MAPPED, 3);
    const old = buildTestEvent('charge.refunded', { now: new Date(now - 40 * 86_400_000) });
    const f = await fake([...events, old]);
    const counts = await backfill({
      stripe: client(f),
      buffer: store(),
      catalog: createCatalog(),
      since,
    });
    expect(counts.fetched).toBe(3);
    expect(Number(query(f, 0)['created[gte]'])).toBe(since.kind === 'created' ? since.gte : -1);
  });

  it('stores nothing in a dry run, but tells new from already stored', async () => {
    const events = makeEvents(MAPPED, 20);
    const f = await fake(events);
    const buffer = store();
    await backfill({
      stripe: client(f),
      buffer,
      catalog: createCatalog(),
      since: parseSince('1h'),
      types: [MAPPED[0]!],
    });
    const before = (await buffer.stats()).counts.pending;
    const counts = await backfill({
      stripe: client(f),
      buffer,
      catalog: createCatalog(),
      since: parseSince('1h'),
      dryRun: true,
    });
    expect(counts).toMatchObject({ fetched: 20, duplicate: before, queued: 20 - before });
    expect((await buffer.stats()).counts.pending).toBe(before);
  });

  it('parses --since', () => {
    const now = Date.parse('2026-11-20T12:00:00Z');
    const s = now / 1000;
    expect(parseSince('24h', now)).toEqual({ kind: 'created', gte: s - 86_400, clamped: false });
    expect(parseSince('30m', now)).toMatchObject({ gte: s - 1800 });
    expect(parseSince('7d', now)).toMatchObject({ gte: s - 7 * 86_400 });
    expect(parseSince('2026-11-01T00:00Z', now)).toMatchObject({
      gte: Date.parse('2026-11-01T00:00Z') / 1000,
    });
    expect(parseSince('evt_1Abc', now)).toEqual({ kind: 'after_event', id: 'evt_1Abc' });
    for (const bad of ['yesterday', '', '5y', '2026-13-45']) {
      expect(() => parseSince(bad, now), bad).toThrow(ConfigError);
    }
    expect(() => parseSince('2027-01-01T00:00Z', now)).toThrow(/future/);
  });

  it('resumes from the newest stored event less an overlap, else 24 h back', async () => {
    const now = Date.now();
    const buffer = store();
    expect(await resumeSince(buffer, now)).toMatchObject({
      gte: Math.floor(now / 1000) - 86_400,
    });
    const events = makeEvents(MAPPED, 3, now - 3 * 3600_000);
    const f = await fake(events);
    await backfill({
      stripe: client(f),
      buffer,
      catalog: createCatalog(),
      since: parseSince('1d'),
    });
    expect(await resumeSince(buffer, now)).toMatchObject({
      gte: (events[0]!.created as number) - 3600,
    });
  });

  it('reads STRIPE_SECRET_KEY and STRIPE_API_BASE, refusing bad values without showing the key', () => {
    expect(loadStripeApiSettings({})).toEqual({ secretKey: null, apiBase: null });
    expect(
      loadStripeApiSettings({
        STRIPE_SECRET_KEY: 'sk_test_abc',
        STRIPE_API_BASE: 'http://127.0.0.1:12111',
      }),
    ).toEqual({ secretKey: 'sk_test_abc', apiBase: 'http://127.0.0.1:12111' });
    expect(() => loadStripeApiSettings({ STRIPE_API_BASE: 'localhost:12111' })).toThrow(
      /STRIPE_API_BASE/,
    );
    expect(() => loadStripeApiSettings({ STRIPE_API_BASE: 'ftp://x' })).toThrow(ConfigError);
    let message = '';
    try {
      loadStripeApiSettings({ STRIPE_SECRET_KEY: 'pk_test_secretpart123' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/STRIPE_SECRET_KEY/);
    expect(message).not.toContain('secretpart123');
  });

  it('a periodic backfill logs a failure as a warning and never throws', async () => {
    const f = await fake(makeEvents(MAPPED, 3));
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', write: (l) => lines.push(l) });
    const key = 'sk_test_wrongkey_do_not_print';
    const running = startPeriodicBackfill({
      stripe: client(f, key),
      buffer: store(),
      catalog: createCatalog(),
      logger,
      secretKey: key,
      intervalMs: null,
    });
    await running.firstRun;
    await running.stop();
    const warn = lines.map((l) => JSON.parse(l)).find((r) => r.level === 'warn');
    expect(warn?.msg).toMatch(/backfill failed/);
    expect(warn?.reason).toMatch(/Invalid API Key/);
    expect(lines.join('')).not.toContain(key);
  });
  it('backfills again every --backfill-interval, and stops cleanly', async () => {
    const f = await fake(makeEvents(MAPPED, 3));
    const running = startPeriodicBackfill({
      stripe: client(f),
      buffer: store(),
      catalog: createCatalog(),
      logger: silent,
      secretKey: f.key,
      intervalMs: 30,
    });
    await running.firstRun;
    const deadline = Date.now() + 5000;
    while (f.requests.length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await running.stop();
    const after = f.requests.length;
    expect(after).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 100));
    expect(f.requests.length).toBe(after);
  });

  it('serve settings: on by default with a key, off without; the flags are checked', () => {
    const dataDir = '/tmp/unused';
    expect(loadServeConfig({ dataDir }, {}).backfillOnStart).toBe(false);
    const withKey = loadServeConfig({ dataDir }, { STRIPE_SECRET_KEY: 'sk_test_x' });
    expect(withKey).toMatchObject({ backfillOnStart: true, backfillIntervalMs: null });
    expect(
      loadServeConfig(
        { dataDir, backfillOnStart: false, backfillInterval: '15' },
        { STRIPE_SECRET_KEY: 'sk_test_x' },
      ),
    ).toMatchObject({ backfillOnStart: false, backfillIntervalMs: 15 * 60_000 });
    expect(() => loadServeConfig({ dataDir, backfillOnStart: true }, {})).toThrow(
      /STRIPE_SECRET_KEY/,
    );
    expect(() =>
      loadServeConfig({ dataDir, backfillInterval: 'hourly' }, { STRIPE_SECRET_KEY: 'sk_test_x' }),
    ).toThrow(/--backfill-interval/);
  });
});

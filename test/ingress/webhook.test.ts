import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app.js';
import { loadServeConfig, type ServeFlags } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { newSecret, postWebhook, rotationHeader, signatureHeader } from '../helpers/sign.js';
import { tempDir } from '../helpers/tmp.js';

const silent = createLogger({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Started {
  server: RunningServer;
  url: string;
  secret: string;
  dataDir: string;
}

async function start(
  flags: ServeFlags = {},
  secrets: string[] = [newSecret()],
  dataDir?: string,
): Promise<Started> {
  let dir = dataDir;
  if (!dir) {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    dir = tmp.dir;
  }
  const config = loadServeConfig(
    { port: '0', dataDir: dir, ...flags },
    { STRIPE_WEBHOOK_SECRET: secrets.join(',') },
  );
  const server = await startServer(config, { logger: silent, notice: () => {} });
  cleanups.push(() => server.close());
  return { server, url: server.url, secret: secrets[0]!, dataDir: dir };
}

function event(type = 'charge.dispute.created'): { id: string; payload: string } {
  const e = buildTestEvent(type);
  return { id: e.id as string, payload: JSON.stringify(e, null, 2) };
}

async function send(s: Started, payload: string, secret = s.secret) {
  return postWebhook(s.url, payload, { 'stripe-signature': signatureHeader(payload, secret) });
}

async function pending(s: Started): Promise<number> {
  return (await s.server.buffer.stats()).counts.pending;
}

describe('POST /stripe/webhook', () => {
  it('queues a mapped event, then answers duplicate, and ignores an unmapped type', async () => {
    const s = await start();
    const e = event();
    const first = await send(s, e.payload);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ received: true, status: 'queued', id: e.id });
    expect((await send(s, e.payload)).body).toEqual({
      received: true,
      status: 'duplicate',
      id: e.id,
    });
    const other = event('invoice.paid');
    expect((await send(s, other.payload)).body).toEqual({
      received: true,
      status: 'ignored',
      id: other.id,
    });
    expect(await s.server.buffer.get(other.id)).toBeNull();
    // Stored byte for byte as received.
    expect((await s.server.buffer.get(e.id))?.payload).toBe(e.payload);
  });

  it('queues every catalog type', async () => {
    const s = await start();
    for (const entry of s.server.catalog.entries()) {
      const res = await send(s, event(entry.type).payload);
      expect(res.body.status, entry.type).toBe('queued');
    }
    expect(await pending(s)).toBe(s.server.catalog.entries().length);
  });

  it.each([
    ['missing_signature', (p: string, secret: string) => ({}) as Record<string, string>],
    ['malformed_signature', () => ({ 'stripe-signature': 'garbage' })],
    ['malformed_signature', () => ({ 'stripe-signature': `t=${Math.floor(Date.now() / 1000)}` })],
    ['invalid_signature', (p: string) => ({ 'stripe-signature': signatureHeader(p, newSecret()) })],
    [
      'invalid_signature',
      (p: string, secret: string) => ({ 'stripe-signature': signatureHeader(p + ' ', secret) }),
    ],
    [
      'stale_timestamp',
      (p: string, secret: string) => ({
        'stripe-signature': signatureHeader(p, secret, Math.floor(Date.now() / 1000) - 301),
      }),
    ],
  ])('answers 400 %s and stores nothing', async (code, headers) => {
    const s = await start();
    const e = event();
    const res = await postWebhook(s.url, e.payload, headers(e.payload, s.secret));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect(typeof res.body.error.message).toBe('string');
    expect(await s.server.buffer.get(e.id)).toBeNull();
    expect(await pending(s)).toBe(0);
  });

  it('answers 400 for a validly signed body that is not JSON or not an event', async () => {
    const s = await start();
    const notJson = '{"id": "evt_1", truncated';
    expect((await send(s, notJson)).body.error.code).toBe('invalid_json');
    const notEvent = JSON.stringify({ hello: 'world' });
    expect((await send(s, notEvent)).body.error.code).toBe('invalid_event');
    const thin = JSON.stringify({
      id: 'evt_test_65R9Ijk8',
      object: 'v2.core.event',
      type: 'v1.charge.dispute.created',
      created: new Date().toISOString(),
    });
    const res = await send(s, thin);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('thin_event_unsupported');
    expect(await pending(s)).toBe(0);
  });

  it('accepts a fresh signature within the tolerance and a future timestamp', async () => {
    const s = await start({ tolerance: '60' });
    const e = event();
    const now = Math.floor(Date.now() / 1000);
    const ok = await postWebhook(s.url, e.payload, {
      'stripe-signature': signatureHeader(e.payload, s.secret, now - 30),
    });
    expect(ok.body.status).toBe('queued');
    const late = event();
    const stale = await postWebhook(s.url, late.payload, {
      'stripe-signature': signatureHeader(late.payload, s.secret, now - 90),
    });
    expect(stale.body.error.code).toBe('stale_timestamp');
  });

  it('verifies the raw bytes of a JSON content-type body (no JSON parser runs first)', async () => {
    const s = await start();
    const e = buildTestEvent('charge.refunded');
    // Odd but valid formatting: a parse-and-reserialise would change these bytes and the HMAC.
    const payload = JSON.stringify(e, null, 7).replace(/": /g, '":   ') + '\n\n';
    const res = await postWebhook(s.url, payload, {
      'stripe-signature': signatureHeader(payload, s.secret),
      'content-type': 'application/json; charset=utf-8',
    });
    expect(res.body.status).toBe('queued');
    expect((await s.server.buffer.get(e.id as string))?.payload).toBe(payload);
  });

  describe('secret rotation', () => {
    it('accepts a header with one v1 per secret when only the new secret is configured', async () => {
      const oldSecret = newSecret();
      const s = await start({}, [newSecret()]);
      const e = event();
      const t = Math.floor(Date.now() / 1000);
      const res = await postWebhook(s.url, e.payload, {
        'stripe-signature': rotationHeader(e.payload, [oldSecret, s.secret], t),
      });
      expect(res.body.status).toBe('queued');
    });

    it('accepts a header with one v1 per secret when only the old secret is configured', async () => {
      const newOne = newSecret();
      const s = await start();
      const e = event();
      const t = Math.floor(Date.now() / 1000);
      const res = await postWebhook(s.url, e.payload, {
        'stripe-signature': rotationHeader(e.payload, [s.secret, newOne], t),
      });
      expect(res.body.status).toBe('queued');
    });

    it('accepts events signed with any configured secret', async () => {
      const [a, b] = [newSecret(), newSecret()];
      const s = await start({}, [a, b]);
      expect((await send(s, event().payload, a)).body.status).toBe('queued');
      expect((await send(s, event().payload, b)).body.status).toBe('queued');
      expect((await send(s, event().payload, newSecret())).status).toBe(400);
    });
  });

  it('queues exactly one of 50 concurrent deliveries of one event', async () => {
    const s = await start();
    const e = event();
    const answers = await Promise.all(Array.from({ length: 50 }, () => send(s, e.payload)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.filter((a) => a.body.status === 'queued')).toHaveLength(1);
    expect(answers.filter((a) => a.body.status === 'duplicate')).toHaveLength(49);
    expect(await pending(s)).toBe(1);
  });

  it('keeps events across a restart and still answers duplicate', async () => {
    const s1 = await start();
    const e = event();
    await send(s1, e.payload);
    await s1.server.close();
    const s2 = await start({}, [s1.secret], s1.dataDir);
    expect((await send(s2, e.payload)).body.status).toBe('duplicate');
    expect(await s2.server.buffer.get(e.id)).toMatchObject({ status: 'pending' });
  });

  it('answers 413 over --max-body and stores nothing', async () => {
    const s = await start({ maxBody: '4kb' });
    const e = buildTestEvent('charge.dispute.created');
    (e as { padding?: string }).padding = 'x'.repeat(5000);
    const payload = JSON.stringify(e);
    const res = await send(s, payload);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    expect(await pending(s)).toBe(0);
  });

  it('accepts a body of 1.5 MiB under the default limit', async () => {
    const s = await start();
    const e = buildTestEvent('charge.dispute.created');
    (e as { padding?: string }).padding = 'é'.repeat(750 * 1024);
    const payload = JSON.stringify(e);
    expect((await send(s, payload)).body.status).toBe('queued');
  });

  it('answers 503 with Retry-After at --max-pending, still answers duplicates, and recovers', async () => {
    const s = await start({ maxPending: '2' });
    const [a, b, c] = [event(), event(), event()];
    await send(s, a.payload);
    await send(s, b.payload);
    const full = await send(s, c.payload);
    expect(full.status).toBe(503);
    expect(full.body.error.code).toBe('buffer_full');
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await send(s, a.payload)).body.status).toBe('duplicate');
    await s.server.buffer.ack(a.id);
    expect((await send(s, c.payload)).body.status).toBe('queued');
  });

  // The exact path is served ahead of Express's router; the spellings Express also matches reach
  // the same handler through it. Both must answer alike.
  it('answers alike on the exact path and the spellings only the Express router matches', async () => {
    const s = await start({ maxBody: '4kb' });
    for (const path of ['/stripe/webhook', '/stripe/webhook/', '/stripe/webhook?via=router']) {
      const e = event();
      const header = { 'stripe-signature': signatureHeader(e.payload, s.secret) };
      const queued = await postWebhook(s.url, e.payload, header, path);
      expect(queued.status, path).toBe(200);
      expect(queued.headers.get('content-type'), path).toBe('application/json; charset=utf-8');
      expect(queued.body, path).toEqual({ received: true, status: 'queued', id: e.id });
      expect((await postWebhook(s.url, e.payload, header, path)).body.status, path).toBe(
        'duplicate',
      );
      const forged = await postWebhook(
        s.url,
        e.payload,
        { 'stripe-signature': signatureHeader(e.payload, newSecret()) },
        path,
      );
      expect(forged.status, path).toBe(400);
      expect(forged.body.error.code, path).toBe('invalid_signature');
      const big = JSON.stringify({
        ...buildTestEvent('charge.dispute.created'),
        pad: 'x'.repeat(5000),
      });
      const tooLarge = await postWebhook(
        s.url,
        big,
        { 'stripe-signature': signatureHeader(big, s.secret) },
        path,
      );
      expect(tooLarge.status, path).toBe(413);
      expect(tooLarge.body.error.code, path).toBe('payload_too_large');
    }
    expect(await pending(s)).toBe(3);
  });

  it('answers 503 with Retry-After when the store is unavailable, and /healthz says so', async () => {
    const s = await start();
    await s.server.buffer.close();
    const res = await send(s, event().payload);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('store_unavailable');
    expect(res.headers.get('retry-after')).not.toBeNull();
    const health = await fetch(`${s.url}/healthz`);
    expect(health.status).toBe(503);
  });
});

describe('operations', () => {
  it('reports health with the pending count', async () => {
    const s = await start();
    await send(s, event().payload);
    const res = await fetch(`${s.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: 'ok',
      store: { ok: true, kind: 'sqlite' },
      pending: 1,
    });
  });

  it('exports Prometheus counters for every outcome', async () => {
    const s = await start();
    const e = event();
    await send(s, e.payload);
    await send(s, e.payload);
    await send(s, event('invoice.paid').payload);
    await send(s, event().payload, newSecret());
    const res = await fetch(`${s.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/^stripe_events_received_total 4$/m);
    expect(text).toMatch(/^stripe_events_queued_total\{type="charge.dispute.created"\} 1$/m);
    expect(text).toMatch(/^stripe_events_duplicate_total 1$/m);
    expect(text).toMatch(/^stripe_events_ignored_total 1$/m);
    expect(text).toMatch(/^stripe_events_rejected_total\{reason="invalid_signature"\} 1$/m);
    expect(text).toMatch(/^stripe_events_queue\{status="pending"\} 1$/m);
    expect(text).toMatch(/^stripe_events_ingest_duration_seconds_count\{status="queued"\} 1$/m);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const s = await start();
    const res = await fetch(`${s.url}/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});

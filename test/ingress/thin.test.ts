import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app.js';
import { loadServeConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { tempDir } from '../helpers/tmp.js';
import { startFakeStripe, type FakeStripe } from '../helpers/fake-stripe.js';
import { backfill, parseSince } from '../../src/ingress/backfill.js';
import { ParkedFile, PARKED_FILE } from '../../src/buffer/parked.js';
import { openRedisBuffer } from '../../src/buffer/redis/store.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';
import fs from 'node:fs';
import path from 'node:path';
import { createStripeClient } from '../../src/stripe/client.js';

/**
 * Thin event notifications (v2 event destinations) on POST /stripe/webhook, verified with
 * stripe-node's parseEventNotification; with a key, the snapshot event is fetched from a fake API.
 */
const cleanups: (() => Promise<void> | void)[] = [];
// The Redis case runs where Redis answers, and always in CI (failing there if it does not).
const redisUp = (await redisGate()).run;
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Started {
  server: RunningServer;
  dataDir: string;
  secret: string;
  logs: Record<string, any>[];
}

async function start(
  env: Record<string, string> = {},
  flags: { store?: string; redisPrefix?: string } = {},
): Promise<Started> {
  const tmp = tempDir('sem-thin-');
  cleanups.push(tmp.remove);
  const secret = newSecret();
  const config = loadServeConfig(
    { port: '0', dataDir: tmp.dir, backfillOnStart: false, ...flags },
    { STRIPE_WEBHOOK_SECRET: secret, ...env },
  );
  const logs: Record<string, any>[] = [];
  const logger = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l)) });
  const server = await startServer(config, { logger, notice: () => {} });
  cleanups.push(() => server.close());
  return { server, secret, logs, dataDir: tmp.dir };
}

async function fake(events: Record<string, unknown>[]): Promise<FakeStripe> {
  const f = await startFakeStripe({ events });
  cleanups.push(() => f.close());
  return f;
}

function thinFor(snapshot: Record<string, unknown>, type = `v1.${String(snapshot.type)}`) {
  return JSON.stringify({
    id: 'evt_test_65RaAtvtVXwRJoVZ23ilDd1Q27VZXSR25ZSOgwgxHJTYVBELra',
    object: 'v2.core.event',
    type,
    livemode: false,
    created: new Date().toISOString(),
    related_object: { id: 'dp_1', type: 'dispute', url: '/v1/disputes/dp_1' },
    reason: null,
    snapshot_event: snapshot.id,
  });
}

function send(s: Started, payload: string, secret = s.secret) {
  return postWebhook(s.server.url, payload, {
    'stripe-signature': signatureHeader(payload, secret),
  });
}

describe('thin events', () => {
  it('with a key: fetches the snapshot event and queues it, deduplicated with the snapshot webhook', async () => {
    const snapshot = buildTestEvent('charge.dispute.created');
    const f = await fake([snapshot]);
    const s = await start({ STRIPE_SECRET_KEY: f.key, STRIPE_API_BASE: f.url });
    const res = await send(s, thinFor(snapshot));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: true, status: 'queued', id: snapshot.id });
    expect(f.requests.map((r) => r.path)).toEqual([`/v1/events/${String(snapshot.id)}`]);
    expect(f.requests[0]!.authorization).toBe(`Bearer ${f.key}`);
    const stored = await s.server.buffer.get(snapshot.id as string);
    expect(stored).toMatchObject({ type: 'charge.dispute.created', status: 'pending' });
    expect(JSON.parse(stored!.payload)).toEqual(snapshot);

    // The same change delivered as a snapshot webhook, and the notification again: stored once.
    const again = await send(s, JSON.stringify(snapshot));
    expect(again.body.status).toBe('duplicate');
    expect((await send(s, thinFor(snapshot))).body.status).toBe('duplicate');
    expect((await s.server.buffer.stats()).counts.pending).toBe(1);
  });

  it('without a key: answers 200 needs_key, stores nothing and says so in the log', async () => {
    const s = await start();
    const snapshot = buildTestEvent('charge.dispute.created');
    const res = await send(s, thinFor(snapshot));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ received: true, status: 'needs_key' });
    expect((await s.server.buffer.stats()).counts.pending).toBe(0);
    const warn = s.logs.find((l) => l.level === 'warn' && /not queued/.test(l.msg));
    expect(warn).toMatchObject({ snapshot_event: snapshot.id });
  });

  it('without a key: records the notification, and the next backfill with a key queues its snapshot event', async () => {
    const s = await start();
    const snapshot = buildTestEvent('charge.dispute.created', {
      now: new Date(Date.now() - 5 * 86_400_000),
    });
    expect((await send(s, thinFor(snapshot))).body.status).toBe('needs_key');
    expect((await send(s, thinFor(snapshot))).body.status).toBe('needs_key');
    const parked = new ParkedFile(s.dataDir);
    expect((await parked.list()).map((p) => p.snapshot_event)).toEqual([snapshot.id]);

    // Five days old: outside a walk that starts an hour ago; only the record brings it in.
    const api = await fake([snapshot]);
    const stripe = createStripeClient({
      secretKey: api.key,
      apiBase: api.url,
      maxNetworkRetries: 0,
    });
    const counts = await backfill({
      stripe,
      buffer: s.server.buffer,
      catalog: s.server.catalog,
      parked,
      since: parseSince('1h'),
    });
    expect(counts.queued).toBe(1);
    expect(await s.server.buffer.get(snapshot.id as string)).toMatchObject({ status: 'pending' });
    expect(await parked.list()).toEqual([]);
    expect(api.requests.some((r) => r.path === `/v1/events/${String(snapshot.id)}`)).toBe(true);
  });

  it.runIf(redisUp)(
    'without a key, on Redis: records the notification in Redis, where another instance finds it',
    async () => {
      const prefix = uniquePrefix('thin');
      cleanups.push(() => void deleteKeys(prefix));
      const s = await start({ REDIS_URL }, { store: 'redis', redisPrefix: prefix });
      const snapshot = buildTestEvent('charge.dispute.created');
      expect((await send(s, thinFor(snapshot))).body.status).toBe('needs_key');
      expect(fs.existsSync(path.join(s.dataDir, PARKED_FILE))).toBe(false);
      const other = await openRedisBuffer({ url: REDIS_URL, prefix });
      cleanups.push(() => other.close());
      expect((await other.parkedNotifications().list()).map((p) => p.snapshot_event)).toEqual([
        snapshot.id,
      ]);
    },
  );

  it('refuses a thin event with a wrong signature (400) and fetches nothing', async () => {
    const snapshot = buildTestEvent('charge.dispute.created');
    const f = await fake([snapshot]);
    const s = await start({ STRIPE_SECRET_KEY: f.key, STRIPE_API_BASE: f.url });
    const res = await send(s, thinFor(snapshot), newSecret());
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_signature');
    expect(f.requests).toHaveLength(0);
  });

  it('ignores v2-only and unmapped thin events; a failed fetch is a 503 so Stripe retries', async () => {
    const snapshot = buildTestEvent('charge.dispute.created');
    const f = await fake([]);
    const s = await start({ STRIPE_SECRET_KEY: f.key, STRIPE_API_BASE: f.url });
    const ping = JSON.stringify({
      id: 'evt_test_ping',
      object: 'v2.core.event',
      type: 'v2.core.event_destination.ping',
      created: new Date().toISOString(),
      related_object: null,
    });
    expect((await send(s, ping)).body).toMatchObject({ status: 'ignored' });
    const unmapped = buildTestEvent('customer.created');
    expect((await send(s, thinFor(unmapped))).body).toMatchObject({ status: 'ignored' });
    // A snapshot_event that is not an event id is never put into a request path.
    const hostile = JSON.parse(thinFor(snapshot));
    hostile.snapshot_event = '../customers/cus_1';
    expect((await send(s, JSON.stringify(hostile))).status).toBe(400);
    expect(f.requests).toHaveLength(0);
    // The snapshot is not (yet) in the API: 503 + Retry-After, nothing stored.
    const missing = await send(s, thinFor(snapshot));
    expect(missing.status).toBe(503);
    expect(missing.headers.get('retry-after')).toBe('5');
    expect((await s.server.buffer.stats()).counts.pending).toBe(0);
  });
});

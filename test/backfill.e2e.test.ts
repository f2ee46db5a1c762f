import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newSecret, postWebhook, signatureHeader } from './helpers/sign.js';
import { killLeftovers, runCli, startServe, waitFor } from './helpers/spawn.js';
import { tempDir } from './helpers/tmp.js';
import { makeEvents, startFakeStripe, type FakeStripe } from './helpers/fake-stripe.js';

/** `node dist/cli.js backfill` and the start-up backfill of `serve`, against a fake Events API. */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const MAPPED = [
  'charge.dispute.created',
  'invoice.payment_failed',
  'customer.subscription.deleted',
];

async function fake(events: Record<string, unknown>[]): Promise<FakeStripe> {
  const f = await startFakeStripe({ events });
  cleanups.push(() => f.close());
  return f;
}

function dir(): string {
  const tmp = tempDir('sem-backfill-e2e-');
  cleanups.push(tmp.remove);
  return tmp.dir;
}

function env(f: FakeStripe, key = f.key) {
  return { STRIPE_SECRET_KEY: key, STRIPE_API_BASE: f.url };
}

async function stored(dataDir: string): Promise<{ id: string; status: string }[]> {
  const list = await runCli(['events', 'list', '--json', '--data-dir', dataDir]);
  expect(list.code, list.stderr).toBe(0);
  return JSON.parse(list.stdout);
}

describe('stripe-events-mcp backfill', () => {
  it('pulls three pages into the store, prints a summary, and adds nothing the second time', async () => {
    const f = await fake(makeEvents(MAPPED, 250));
    const dataDir = dir();
    const first = await runCli(['backfill', '--data-dir', dataDir], { env: env(f) });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(
      /^backfill since \S+: fetched 250, queued 250, duplicate 0, ignored 0\n$/,
    );
    expect(f.requests).toHaveLength(3);
    expect(f.requests.every((r) => r.authorization === `Bearer ${f.key}`)).toBe(true);
    // Not a TTY: no progress line.
    expect(first.stderr).not.toContain('\r');
    expect(await stored(dataDir)).toHaveLength(250);

    const second = await runCli(['backfill', '--since', '1h', '--data-dir', dataDir], {
      env: env(f),
    });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('fetched 250, queued 0, duplicate 250, ignored 0');
    expect(await stored(dataDir)).toHaveLength(250);
  });

  it('sends the --types filter and counts types the catalog does not map as ignored', async () => {
    const f = await fake(makeEvents([...MAPPED, 'charge.succeeded'], 40));
    const dataDir = dir();
    const r = await runCli(
      ['backfill', '--types', 'charge.dispute.created,charge.succeeded', '--data-dir', dataDir],
      { env: env(f) },
    );
    expect(r.code, r.stderr).toBe(0);
    const types = [...f.requests[0]!.query]
      .filter(([k]) => k.startsWith('types['))
      .map(([, v]) => v);
    expect(types).toEqual(['charge.dispute.created', 'charge.succeeded']);
    expect(r.stdout).toContain('fetched 20, queued 10, duplicate 0, ignored 10');
    expect(r.stderr).toMatch(/charge\.succeeded not in the catalog/);
  });

  it('--dry-run fetches and counts but stores nothing', async () => {
    const f = await fake(makeEvents(MAPPED, 30));
    const dataDir = dir();
    const r = await runCli(['backfill', '--dry-run', '--data-dir', dataDir], { env: env(f) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      'fetched 30, queued 30, duplicate 0, ignored 0; dry run: nothing stored',
    );
    expect(fs.existsSync(path.join(dataDir, 'events.db'))).toBe(false);
  });

  it('a rejected key exits 1 with Stripe’s message and never prints the key', async () => {
    const f = await fake(makeEvents(MAPPED, 3));
    const key = 'sk_test_not_the_right_key_4242';
    const r = await runCli(['backfill', '--data-dir', dir()], { env: env(f, key) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Stripe API error: Invalid API Key provided.*\(HTTP 401\)/);
    expect(r.stdout + r.stderr).not.toContain(key);
  });

  it('without STRIPE_SECRET_KEY, or with a bad STRIPE_API_BASE, exits 2 naming the setting', async () => {
    const none = await runCli(['backfill', '--data-dir', dir()], {
      env: { STRIPE_SECRET_KEY: undefined },
    });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/STRIPE_SECRET_KEY: is not set/);
    const bad = await runCli(['backfill', '--data-dir', dir()], {
      env: { STRIPE_SECRET_KEY: 'sk_test_x', STRIPE_API_BASE: '127.0.0.1:12111' },
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/STRIPE_API_BASE/);
    const since = await runCli(['backfill', '--since', 'last week', '--data-dir', dir()], {
      env: { STRIPE_SECRET_KEY: 'sk_test_x' },
    });
    expect(since.code).toBe(2);
    expect(since.stderr).toMatch(/--since/);
  });

  it('waits and walks on after a 429, and clamps --since to 30 days', async () => {
    const f = await fake(makeEvents(MAPPED, 120));
    f.rateLimitNext(1);
    const dataDir = dir();
    const r = await runCli(['backfill', '--since', '45d', '--data-dir', dataDir], { env: env(f) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/older than the 30 days Stripe keeps events; starting from/);
    expect(r.stdout).toContain('fetched 120, queued 120');
    const gte = Number(f.requests[0]!.query.get('created[gte]'));
    expect(Math.abs(gte - (Date.now() / 1000 - 30 * 86_400))).toBeLessThan(120);
  });
});

describe('start-up backfill of serve', () => {
  it('pulls the events missed while down, deduplicated with those received by webhook', async () => {
    const dataDir = dir();
    const secret = newSecret();
    const events = makeEvents(MAPPED, 150);
    const f = await fake(events);

    // First run without a key: five events arrive by webhook, nothing is pulled.
    const plain = await startServe({ dataDir, env: { STRIPE_WEBHOOK_SECRET: secret } });
    for (const e of events.slice(0, 5)) {
      const payload = JSON.stringify(e);
      const res = await postWebhook(plain.url, payload, {
        'stripe-signature': signatureHeader(payload, secret),
      });
      expect(res.body.status).toBe('queued');
    }
    await plain.stop();
    expect(f.requests).toHaveLength(0);

    // With a key, --no-backfill-on-start still pulls nothing.
    const off = await startServe({
      dataDir,
      env: { STRIPE_WEBHOOK_SECRET: secret, ...env(f) },
      args: ['--no-backfill-on-start'],
    });
    await off.stop();
    expect(f.requests).toHaveLength(0);

    // Restarted with a key: it backfills from the newest stored event.
    const s = await startServe({ dataDir, env: { STRIPE_WEBHOOK_SECRET: secret, ...env(f) } });
    const done = await waitFor(
      () => s.logs().find((l) => l.msg === 'backfill done'),
      'the backfill done log line',
    );
    expect(done).toMatchObject({ fetched: 150, queued: 145, duplicate: 5, ignored: 0 });
    const health = (await (await fetch(`${s.url}/healthz`)).json()) as { pending: number };
    expect(health.pending).toBe(150);
    expect(s.stderr()).not.toContain(f.key);
    await s.stop();
    expect(await stored(dataDir)).toHaveLength(150);
  });

  it('a failing start-up backfill is a warning; the server keeps serving', async () => {
    const f = await fake(makeEvents(MAPPED, 3));
    const s = await startServe({ dataDir: dir(), env: env(f, 'sk_test_wrong_key_999') });
    const warn = await waitFor(
      () => s.logs().find((l) => l.level === 'warn' && /backfill failed/.test(String(l.msg))),
      'the backfill warning',
    );
    expect(String(warn.reason)).toMatch(/Invalid API Key/);
    expect(s.stderr()).not.toContain('sk_test_wrong_key_999');
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    await s.stop();
  });
});

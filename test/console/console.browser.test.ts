/**
 * The operator console (issue #13) in a real browser: Debian's Chromium driven by playwright-core,
 * against the built server (`serve`, and `serve --agent` with the fake Anthropic API). Every page
 * the tests open records its requests: nothing may be asked of another origin.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { ownObject } from '../helpers/own-object.js';
import { startFakeAnthropic } from '../helpers/fake-anthropic.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { killLeftovers, startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';
import { sinkServer } from '../helpers/e2e.js';
import { tempDir } from '../helpers/tmp.js';

/** Generous: the bound the tests hold; the figures measured are logged beside it. */
const ON_SCREEN_MS = 10_000;
const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? path.join(os.tmpdir(), 'console-screenshots');
/** expect.poll waits 1 s by default: too tight for a loaded 2-core box. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: ON_SCREEN_MS });
const XSS = '<img src=x onerror="window.__pwned=1;alert(1)">';

let browser: Browser;
const cleanups: (() => Promise<void> | void)[] = [];
/** Per page: every URL it requested, and whether a dialog opened. */
const watched: { page: Page; origin: string; urls: string[]; dialogs: string[] }[] = [];

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  // Nothing from another origin, ever; no dialog (an injected alert) ever opened.
  for (const w of watched.splice(0)) {
    const foreign = w.urls.filter((u) => !u.startsWith(w.origin + '/'));
    expect(foreign, 'requests to another origin').toEqual([]);
    expect(w.dialogs).toEqual([]);
  }
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killLeftovers();
});

function tmp(): string {
  const t = tempDir();
  cleanups.push(t.remove);
  return t.dir;
}

async function openPage(origin: string, context?: BrowserContext): Promise<Page> {
  const ctx = context ?? (await browser.newContext());
  if (!context) cleanups.push(() => ctx.close());
  const page = await ctx.newPage();
  const w = { page, origin, urls: [] as string[], dialogs: [] as string[] };
  page.on('request', (r) => w.urls.push(r.url()));
  page.on('dialog', (d) => {
    w.dialogs.push(d.message());
    void d.dismiss();
  });
  watched.push(w);
  return page;
}

async function send(server: ServeHandle, secret: string, event: Record<string, unknown>) {
  const payload = JSON.stringify(event);
  const res = await postWebhook(server.url, payload, {
    'stripe-signature': signatureHeader(payload, secret),
  });
  expect(res.status).toBe(200);
  return String(event.id);
}

/** /healthz's counts (they need the bearer token when the server has one). */
async function counts(server: ServeHandle, token?: string): Promise<Record<string, number>> {
  const res = await fetch(`${server.url}/healthz`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return ((await res.json()) as { counts: Record<string, number> }).counts;
}

describe('the console on an open loopback server', () => {
  it('shows a webhook event without a reload, newest first, and takes an overview screenshot', async () => {
    const secret = newSecret();
    const server = await startServe({ dataDir: tmp(), env: { STRIPE_WEBHOOK_SECRET: secret } });
    await send(server, secret, buildTestEvent('invoice.payment_failed'));

    const page = await openPage(server.url);
    const res = await page.goto(server.url + '/');
    expect(page.url()).toBe(`${server.url}/console`);
    const headers = res!.headers();
    expect(headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(headers['content-security-policy']).not.toMatch(/unsafe-inline/);
    expect(headers['x-content-type-options']).toBe('nosniff');
    await page.locator('#live-state.on').waitFor();

    const id = await send(server, secret, buildTestEvent('charge.dispute.created'));
    const sent = Date.now();
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor({ timeout: ON_SCREEN_MS });
    console.info(`live update: webhook event on screen ${Date.now() - sent} ms after it was sent`);
    // Newest first: the new event heads the table; the counts followed.
    expect(await page.locator('table.queue tbody tr').first().getAttribute('data-id')).toBe(id);
    await poll(() => page.locator('[data-count="pending"]').textContent()).toBe('2');
    await poll(() => page.locator('svg.chart rect.rec').count()).toBeGreaterThan(0);
    // The chart catches up too (it is recomputed at most every 2 s, and the page asks again).
    await poll(() => page.locator('#chart .legend').textContent()).toMatch(/received \(2\)/);

    fs.mkdirSync(SHOTS, { recursive: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: path.join(SHOTS, 'overview.png'), fullPage: true });
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('shows customer-written markup as text: nothing runs, nothing loads, no dialog', async () => {
    const secret = newSecret();
    const server = await startServe({ dataDir: tmp(), env: { STRIPE_WEBHOOK_SECRET: secret } });
    const event = buildTestEvent('charge.dispute.created');
    const dispute = (event.data as { object: { evidence: Record<string, unknown> } }).object;
    dispute.evidence.customer_name = XSS;
    dispute.evidence.product_description = '<script>window.__pwned=2</script>';
    const id = await send(server, secret, event);

    const page = await openPage(server.url);
    await page.goto(`${server.url}/console`);
    await page.getByRole('link', { name: id }).click();
    await page.waitForURL(`${server.url}/console/event/${id}`);
    // Shown literally, as the customer typed it.
    await poll(() => page.getByText(XSS, { exact: true }).count()).toBeGreaterThan(0);
    await poll(() =>
      page.getByText('<script>window.__pwned=2</script>', { exact: true }).count(),
    ).toBeGreaterThan(0);
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: path.join(SHOTS, 'event.png'), fullPage: false });
    await page.getByText('Raw payload').click();
    await poll(() => page.locator('#raw pre').textContent()).toContain(XSS.replace(/"/g, '\\"'));
    // The payload's markup never became elements.
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();

    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('replays a dead event with its Replay button; a pending event offers Ack, not Replay', async () => {
    const dataDir = tmp();
    const secret = newSecret();
    // A dead event, made in the store before the server starts.
    const store = openSqliteBuffer(dataDir, {});
    const dead = buildTestEvent('charge.dispute.created');
    await store.append({
      id: String(dead.id),
      type: 'charge.dispute.created',
      created: Number(dead.created),
      livemode: false,
      objectId: null,
      payload: JSON.stringify(dead),
    });
    for (let i = 0; i < 5; i++)
      await store.nack(String(dead.id), { reason: 'handler down', by: 'test' });
    expect((await store.get(String(dead.id)))!.status).toBe('dead');
    await store.close();
    const server = await startServe({ dataDir, env: { STRIPE_WEBHOOK_SECRET: secret } });

    const page = await openPage(server.url);
    await page.goto(`${server.url}/console/event/${dead.id}`);
    await poll(() => page.getByRole('button', { name: 'Ack' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Replay' }).click();
    await poll(() => page.locator('#flash').textContent()).toMatch(/pending again/);
    await poll(() => page.locator('#summary .chip').textContent()).toBe('pending');
    await poll(() => page.locator('.timeline').textContent()).toMatch(/replayed/);
    expect((await counts(server)).pending).toBe(1);
    // Pending now: Ack (with an optional note) is offered, Replay is not.
    await page.getByLabel('Note').fill('handled by hand');
    await page.getByRole('button', { name: 'Ack' }).click();
    await poll(() => page.locator('#summary .chip').textContent()).toBe('handled by hand');
    await poll(() => page.locator('.timeline').textContent()).toMatch(/handled by hand/);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('shows the newest of 10 000 stored events on the first load', async () => {
    const dataDir = tmp();
    const store = openSqliteBuffer(dataDir, {});
    const N = 10_000;
    let newest = '';
    for (let start = 0; start < N; start += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, N - start) }, (_, k) => {
          const i = start + k;
          const id = `evt_bulk${String(i).padStart(6, '0')}`;
          newest = id;
          return store.append({
            id,
            type: i % 3 === 0 ? 'invoice.payment_failed' : 'charge.dispute.created',
            created: 1_700_000_000 + i,
            livemode: false,
            objectId: `dp_bulk${String(i).padStart(6, '0')}`,
            payload: JSON.stringify({
              id,
              object: 'event',
              type: 'charge.dispute.created',
              data: { object: {} },
            }),
          });
        }),
      );
    }
    await store.close();
    const server = await startServe({ dataDir, env: { STRIPE_WEBHOOK_SECRET: newSecret() } });

    const page = await openPage(server.url);
    const started = Date.now();
    await page.goto(`${server.url}/console`);
    await page.locator(`tr[data-id="${newest}"]`).waitFor({ timeout: ON_SCREEN_MS });
    console.info(`10 000 events: the newest on screen ${Date.now() - started} ms after opening`);
    expect(await page.locator('table.queue tbody tr').first().getAttribute('data-id')).toBe(newest);
    // Paging on: the next page starts right below this one.
    await page.getByRole('link', { name: 'Older' }).click();
    await page.waitForURL(/through=/);
    const first = await page.locator('table.queue tbody tr').first().getAttribute('data-id');
    expect(first).toBe(`evt_bulk${String(N - 51).padStart(6, '0')}`);
    // Search reads the newest 5 000 arrivals, and says so; an event id is found at any age.
    const search = async (q: string) => {
      const t0 = Date.now();
      await page.goto(`${server.url}/console?q=${encodeURIComponent(q)}`);
      await page.locator('#search-bound').waitFor();
      console.info(`search of 10 000 events for ${q}: ${Date.now() - t0} ms`);
      return page.locator('table.queue tbody tr[data-id]').count();
    };
    expect(await search(`dp_bulk${String(N - 10).padStart(6, '0')}`)).toBe(1);
    expect(await page.locator('#search-bound').textContent()).toMatch(
      /newest 5,000 arrivals .*older events were not searched, except by event id/,
    );
    expect(await search('dp_bulk000001')).toBe(0);
    expect(await search('evt_bulk000001')).toBe(1);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('the console with the agent, approvals and MCP_AUTH_TOKEN', () => {
  const TOKEN = 'console-test-token-0123456789abcdef';

  /** An http sink endpoint answering `status`; `ids` are the event ids of the calls it got. */
  async function handlerServer(status = 200): Promise<{ url: string; ids: string[] }> {
    const sink = await sinkServer(cleanups, status);
    return {
      url: sink.url,
      get ids() {
        return sink.bodies.map((b) => String(b.event_id));
      },
    };
  }

  async function agentServer(held: number, handlerStatus = 200) {
    const api = await startFakeAnthropic();
    cleanups.push(() => api.close());
    const handler = await handlerServer(handlerStatus);
    const secret = newSecret();
    const config = path.join(tmp(), 'agent.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        dispatch: { type: 'http', url: handler.url, secret: 'a-long-enough-test-secret' },
        approval: { tools: ['handle_dispute'] },
      }),
    );
    const server = await startServe({
      dataDir: tmp(),
      env: {
        STRIPE_WEBHOOK_SECRET: secret,
        ANTHROPIC_API_KEY: 'k',
        ANTHROPIC_BASE_URL: api.url,
        MCP_AUTH_TOKEN: TOKEN,
      },
      args: ['--agent', '--config', config],
    });
    const ids: string[] = [];
    for (let i = 0; i < held; i++) {
      // Disputes about objects of their own: events about one object wait in order.
      ids.push(await send(server, secret, ownObject(buildTestEvent('charge.dispute.created'))));
    }
    await waitFor(
      async () => (await counts(server, TOKEN)).awaiting_approval === held,
      `${held} held calls`,
    );
    return { server, handler, ids };
  }

  async function signIn(origin: string): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext();
    cleanups.push(() => context.close());
    const page = await openPage(origin, context);
    await page.goto(`${origin}/console`);
    await page.getByLabel('Token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('table.queue').waitFor();
    return { page, context };
  }

  it('shows nothing before sign-in, refuses a wrong token, and keeps the session in an HttpOnly SameSite=Strict cookie', async () => {
    const { server, ids } = await agentServer(1);
    const context = await browser.newContext();
    cleanups.push(() => context.close());
    const page = await openPage(server.url, context);
    const first = await page.goto(`${server.url}/console`);
    expect(first!.status()).toBe(401);
    const before =
      (await page.content()) + (await page.goto(`${server.url}/console/event/${ids[0]}`))!.status();
    expect(before).not.toContain(ids[0]);
    expect(before).toMatch(/401$/);
    expect((await fetch(`${server.url}/console/live`)).status).toBe(401);

    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await poll(() => page.getByRole('alert').textContent()).toMatch(/not the token/);
    expect(await page.content()).not.toContain(ids[0]);

    await page.getByLabel('Token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`tr[data-id="${ids[0]}"]`).waitFor();
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(cookie!.value).not.toContain(TOKEN);
    expect(await page.locator('#agent-state').textContent()).toBe('running');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('Approve dispatches the held call to the sink once; Reject needs a Reason and dispatches nothing', async () => {
    const { server, handler, ids } = await agentServer(2);
    const { page } = await signIn(server.url);
    const [approved, rejected] = ids as [string, string];

    // Another console, open on the overview, follows along.
    const { page: other } = await signIn(server.url);
    await other.locator('#live-state.on').waitFor();

    await page.goto(`${server.url}/console/event/${approved}`);
    await page.getByRole('checkbox', { name: /I approve/ }).check();
    await page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => page.locator('#flash').textContent()).toMatch(/Approved .*dispatched/);
    await poll(() => page.locator('#summary .chip').textContent()).toBe('approved');
    expect(handler.ids).toEqual([approved]);
    await poll(() => other.locator(`tr[data-id="${approved}"] .chip`).textContent()).toBe(
      'approved',
    );
    // A second approval is refused in words, and dispatches nothing more.
    const again = await page.evaluate(async (id) => {
      const res = await fetch(`/console/event/${id}/approve`, {
        method: 'POST',
        headers: { Accept: 'application/json' },
      });
      return { status: res.status, body: (await res.json()) as { message: string } };
    }, approved);
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/not awaiting approval/);
    expect(handler.ids).toEqual([approved]);

    await page.goto(`${server.url}/console/event/${rejected}`);
    await page.getByRole('button', { name: 'Reject' }).click();
    // The Reason is required: nothing was sent.
    expect((await counts(server, TOKEN)).awaiting_approval).toBe(1);
    await page.getByLabel('Reason').fill('evidence is thin; refund instead');
    await page.getByRole('button', { name: 'Reject' }).click();
    await poll(() => page.locator('#flash').textContent()).toMatch(/Rejected/);
    await poll(() => page.locator('#summary .chip').textContent()).toBe('rejected');
    await poll(() => page.locator('.timeline').textContent()).toMatch(
      /evidence is thin; refund instead/,
    );
    await poll(() => page.locator('#decision').textContent()).toMatch(/Rejected by\s*console:/);
    expect(handler.ids).toEqual([approved]);

    // Approved and rejected read differently on the queue: other words, another colour.
    const chip = (id: string) => other.locator(`tr[data-id="${id}"] .chip`);
    await poll(() => chip(rejected).textContent()).toBe('rejected');
    const look = (id: string) =>
      chip(id).evaluate((el) => ({
        outcome: el.getAttribute('data-outcome'),
        // No DOM types in the test's tsconfig: the page's own function, untyped.
        background: (globalThis as any).getComputedStyle(el).backgroundColor as string,
      }));
    const [a, r] = [await look(approved), await look(rejected)];
    expect(a.outcome).toBe('approved');
    expect(r.outcome).toBe('rejected');
    expect(a.background).not.toBe(r.background);
    // Neither is the plain green of a bare "acked".
    const ackedGreen = 'rgb(19, 115, 51)';
    expect([a.background, r.background]).not.toContain(ackedGreen);
    // The queue's Outcome filter lists only the calls that ended so.
    await other.getByLabel('Outcome').selectOption('rejected');
    await other.getByRole('button', { name: 'Filter' }).click();
    await other.waitForURL(/outcome=rejected/);
    await poll(() =>
      other.locator('table.queue tbody tr').evaluateAll((rows) => rows.map((t) => t.dataset.id)),
    ).toEqual([rejected]);
    expect(await other.locator('table.queue caption').textContent()).toMatch(/ended rejected/);
    await other.getByLabel('Outcome').selectOption('approved');
    await other.getByRole('button', { name: 'Filter' }).click();
    await other.waitForURL(/outcome=approved/);
    await poll(() =>
      other.locator('table.queue tbody tr').evaluateAll((rows) => rows.map((t) => t.dataset.id)),
    ).toEqual([approved]);

    await page.setViewportSize({ width: 1280, height: 1000 });
    await page.screenshot({ path: path.join(SHOTS, 'event-rejected.png'), fullPage: true });
    await other.setViewportSize({ width: 1280, height: 900 });
    await other.screenshot({ path: path.join(SHOTS, 'overview-agent.png'), fullPage: true });
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it("refuses the console's own approve request replayed from another Origin (403), changing nothing", async () => {
    const { server, handler, ids } = await agentServer(1);
    const { page } = await signIn(server.url);
    const id = ids[0]!;
    let captured: { url: string; headers: Record<string, string>; body: string | null } | null =
      null;
    await page.route('**/approve', async (route) => {
      const req = route.request();
      captured = { url: req.url(), headers: await req.allHeaders(), body: req.postData() };
      await route.abort();
    });
    await page.goto(`${server.url}/console/event/${id}`);
    await page.getByRole('checkbox', { name: /I approve/ }).check();
    await page.getByRole('button', { name: 'Approve' }).click();
    await waitFor(() => captured ?? undefined, 'the approve request');
    const request = captured!;
    expect(request.headers.cookie).toMatch(/sem_console=/);
    expect(request.headers.origin).toBe(server.url);

    const replay = (origin: string) =>
      fetch(request.url, {
        method: 'POST',
        headers: { ...request.headers, origin },
        body: request.body ?? undefined,
      });
    const evil = await replay('http://evil.example');
    expect(evil.status).toBe(403);
    expect((await counts(server, TOKEN)).awaiting_approval).toBe(1);
    expect(handler.ids).toEqual([]);
    // The same request from the console's own origin is the one that works.
    const own = await replay(server.url);
    expect(own.status).toBe(200);
    expect(handler.ids).toEqual([id]);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('reads amounts in their currency on the queue and on the approval card; a currency without a threshold waits', async () => {
    const api = await startFakeAnthropic();
    cleanups.push(() => api.close());
    const handler = await handlerServer();
    const secret = newSecret();
    const config = path.join(tmp(), 'agent.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        dispatch: { type: 'http', url: handler.url, secret: 'a-long-enough-test-secret' },
        // $500.00; no threshold for jpy, so a yen call waits whatever its size.
        approval: { amount_over: { usd: 50_000 } },
      }),
    );
    const server = await startServe({
      dataDir: tmp(),
      env: {
        STRIPE_WEBHOOK_SECRET: secret,
        ANTHROPIC_API_KEY: 'k',
        ANTHROPIC_BASE_URL: api.url,
        MCP_AUTH_TOKEN: TOKEN,
      },
      args: ['--agent', '--config', config],
    });
    const dispute = (amount: number, currency: string) => {
      const event = ownObject(buildTestEvent('charge.dispute.created'));
      const object = (event.data as { object: Record<string, unknown> }).object;
      object.amount = amount;
      object.currency = currency;
      return event;
    };
    const usd = await send(server, secret, dispute(412_000, 'usd'));
    const jpy = await send(server, secret, dispute(50_000, 'jpy'));
    const small = await send(server, secret, dispute(12_900, 'usd'));
    await waitFor(async () => {
      const c = await counts(server, TOKEN);
      return c.awaiting_approval === 2 && c.acked === 1;
    }, 'two held calls and one dispatched');
    // Under the USD threshold: dispatched without a person.
    expect(handler.ids).toEqual([small]);

    const { page } = await signIn(server.url);
    const amountOf = (id: string) => page.locator(`tr[data-id="${id}"] td.amount`).textContent();
    await poll(() => amountOf(usd)).toBe('$4,120.00');
    await poll(() => amountOf(jpy)).toBe('¥50,000');
    await poll(() => amountOf(small)).toBe('$129.00');
    expect(await page.locator('table.queue thead').textContent()).toContain('Amount');
    expect(await page.locator('table.queue').textContent()).not.toContain('412000');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: path.join(SHOTS, 'overview-amounts.png'), fullPage: true });

    await page.goto(`${server.url}/console/event/${usd}`);
    const card = page.locator('#actions .approval');
    await poll(() => card.locator('.amount').textContent()).toBe('$4,120.00');
    expect(await card.textContent()).toContain('handle_dispute');
    expect(await card.locator('.why').textContent()).toBe(
      '$4,120.00 is over the $500.00 threshold for usd',
    );
    // The facts read in dollars, the integer beside them; the summary says the amount too.
    expect(await page.locator('#toolcall').textContent()).toContain('$4,120.00 (412000)');
    expect(await page.locator('#summary').textContent()).toContain('$4,120.00');

    await page.goto(`${server.url}/console/event/${jpy}`);
    await poll(() => card.locator('.amount').textContent()).toBe('¥50,000');
    expect(await card.locator('.why').textContent()).toBe(
      'no approval threshold is set for jpy: held (set approval.amount_over.jpy)',
    );
    expect(await page.locator('#toolcall').textContent()).toContain('¥50,000 (50000)');
    await page.setViewportSize({ width: 1280, height: 1000 });
    await page.screenshot({ path: path.join(SHOTS, 'approval-jpy.png'), fullPage: true });
    // Approving it from the card dispatches the yen call as decided.
    await page.getByRole('checkbox', { name: /I approve/ }).check();
    await page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => page.locator('#summary .chip').textContent()).toBe('approved');
    expect(handler.ids).toEqual([small, jpy]);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('refuses a form that a page on another local port posts to Approve while a person is signed in (403), changing nothing', async () => {
    const { server, handler, ids } = await agentServer(1);
    const { context } = await signIn(server.url);
    const id = ids[0]!;
    // The other page: another local HTTP server on the same host, another port. Every port of a
    // host is the same site, so SameSite=Strict lets its form post carry the session cookie.
    const action = `${server.url}/console/event/${id}/approve`;
    const evil = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<!doctype html><form method="post" action="${action}"><input type="hidden" name="reason" value="x"></form>` +
          '<script>document.forms[0].submit()</script>',
      );
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          evil.closeAllConnections();
          evil.close(() => resolve());
        }),
    );
    const evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    expect(evilOrigin).not.toBe(server.url);

    // Not openPage: this page's requests go to another origin on purpose.
    const page = await context.newPage();
    const posted = page.waitForResponse((r) => r.url() === action);
    await page.goto(`${evilOrigin}/`);
    const res = await posted;
    const sent = await res.request().allHeaders();
    expect(sent.cookie, 'the session cookie went along').toMatch(/sem_console=/);
    expect(sent.origin).toBe(evilOrigin);
    expect(res.status()).toBe(403);
    await poll(() => page.locator('main').textContent()).toMatch(
      /Origin .* not this console.*Nothing was changed/,
    );
    expect((await counts(server, TOKEN)).awaiting_approval).toBe(1);
    expect(handler.ids).toEqual([]);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('says so when the handler fails on Approve, and the call keeps waiting', async () => {
    const { server, handler, ids } = await agentServer(1, 500);
    const { page } = await signIn(server.url);
    const id = ids[0]!;
    await page.goto(`${server.url}/console/event/${id}`);
    await page.getByRole('checkbox', { name: /I approve/ }).check();
    await page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => page.locator('#flash.error').textContent()).toMatch(
      /dispatch failed.*still waits for approval/,
    );
    // The http sink's own retries, all for this call.
    expect(handler.ids.length).toBeGreaterThan(0);
    expect(new Set(handler.ids)).toEqual(new Set([id]));
    await poll(() => page.locator('#summary .chip').textContent()).toBe('awaiting approval');
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(1);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('failures as sentences, the console on a phone, and search (issue #20: 9, 10)', () => {
  const TOKEN = 'console-phone-token-0123456789abcdef';
  const SENTENCE =
    'the model chose action "nuke_it_from_orbit"; allowed: accept, submit_evidence, escalate_to_human (4 tries)';
  /** What the agent stores as the invalid decision's note: long, technical, no spaces to wrap at. */
  const DETAIL = Array.from(
    { length: 4 },
    (_, i) =>
      `request ${i + 1}: handle_dispute(${JSON.stringify({ action: 'nuke_it_from_orbit', rationale: 'r'.repeat(300) })}) → action: Invalid option: expected one of "accept"|"submit_evidence"|"escalate_to_human" [invalid_value]`,
  ).join('\n');
  /** A last_error as the agent wrote it before this change: one raw zod array, 600+ characters. */
  const RAW = `invalid decision: Error: ${JSON.stringify([
    {
      code: 'invalid_enum_value',
      options: ['refund_proactively', 'keep_and_monitor', 'escalate_to_human'],
      received: 'nuke_it_from_orbit',
      path: ['action'],
      message: 'x'.repeat(400),
    },
  ])} (after 4 request(s))`;
  const LONG_ID = 'evt_1QxPhoneLayoutCheckAbCdEfGhIjKlMnOpQrStUv';
  const OLD_ID = 'evt_1QxRawZodErrorFromBeforeAbCdEfGhIjKl';

  /** A dispute event, dead after three attempts the way the agent leaves it (or with `raw`). */
  async function deadEvent(dataDir: string, id: string, raw?: string) {
    const store = openSqliteBuffer(dataDir, {});
    const event: Record<string, any> = { ...buildTestEvent('charge.dispute.created'), id };
    await store.append({
      id,
      type: 'charge.dispute.created',
      created: Number(event.created),
      livemode: false,
      objectId: String(event.data.object.id),
      payload: JSON.stringify(event),
    });
    // Nacked until the store's max attempts make it dead, each attempt as the agent records it.
    while ((await store.get(id))!.status !== 'dead') {
      await store.nack(id, {
        by: 'test',
        reason: raw ?? SENTENCE,
        record: [
          {
            kind: 'decision',
            model: 'claude-test',
            usage: { input_tokens: 900, output_tokens: 60 },
            latency_ms: 1200,
            outcome: 'invalid',
            note: raw ?? DETAIL,
          },
        ],
      });
    }
    expect((await store.get(id))!.status).toBe('dead');
    await store.close();
  }

  /** `serve --agent` with a token and approvals for disputes, over a store with two dead events. */
  async function phoneServer() {
    const dataDir = tmp();
    await deadEvent(dataDir, LONG_ID);
    await deadEvent(dataDir, OLD_ID, RAW);
    const api = await startFakeAnthropic();
    cleanups.push(() => api.close());
    const sink = await sinkServer(cleanups, 200);
    const secret = newSecret();
    const config = path.join(tmp(), 'agent.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        dispatch: { type: 'http', url: sink.url, secret: 'a-long-enough-test-secret' },
        approval: { tools: ['handle_dispute'] },
      }),
    );
    const server = await startServe({
      dataDir,
      env: {
        STRIPE_WEBHOOK_SECRET: secret,
        ANTHROPIC_API_KEY: 'k',
        ANTHROPIC_BASE_URL: api.url,
        MCP_AUTH_TOKEN: TOKEN,
      },
      args: ['--agent', '--config', config],
    });
    return { server, secret };
  }

  async function signedIn(origin: string, viewport: { width: number; height: number }) {
    const context = await browser.newContext({ viewport });
    cleanups.push(() => context.close());
    const page = await openPage(origin, context);
    await page.goto(`${origin}/console`);
    await page.getByLabel('Token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('table.queue').waitFor();
    return page;
  }

  /** The page's widths as the browser lays it out (the test's tsconfig has no DOM types). */
  const widths = (page: Page): Promise<{ doc: number; body: number; viewport: number }> =>
    page.evaluate(() => {
      const { document, innerWidth } = globalThis as any;
      return {
        doc: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
        viewport: innerWidth,
      };
    });

  it("shows a dead event's last error once, as a sentence, with the detail collapsed; long text never widens a page", async () => {
    const { server } = await phoneServer();
    const page = await signedIn(server.url, { width: 1280, height: 900 });
    for (const id of [LONG_ID, OLD_ID]) await page.locator(`tr[data-id="${id}"]`).waitFor();
    // The raw error of an older event no longer widens the overview.
    const overview = await widths(page);
    expect(overview.doc).toBeLessThanOrEqual(overview.viewport);
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'overview-errors.png'), fullPage: true });

    await page.goto(`${server.url}/console/event/${LONG_ID}`);
    await poll(() => page.locator('#summary .last-error .text').textContent()).toBe(SENTENCE);
    // Once on the page: not in the facts, the decision or the history (their nacks point up).
    const count = (text: string) =>
      page.evaluate(
        (t) => ((globalThis as any).document.body.textContent as string).split(t).length - 1,
        text,
      );
    expect(await count(SENTENCE)).toBe(1);
    expect(await page.locator('.timeline').textContent()).toContain('the last error, shown above');
    // The detail is in the history, collapsed, and bounded in width when opened.
    const detail = page.locator('.timeline details.detail').first();
    expect(await detail.locator('pre').isVisible()).toBe(false);
    await detail.locator('summary').click();
    await poll(() => detail.locator('pre').textContent()).toContain('request 4: handle_dispute(');
    let w = await widths(page);
    expect(w.body).toBeLessThanOrEqual(w.viewport);
    expect(w.doc).toBeLessThanOrEqual(w.viewport);
    await page.screenshot({ path: path.join(SHOTS, 'event-dead.png'), fullPage: true });

    // The same at a phone's width, and for the event whose last error is a raw zod array.
    await page.setViewportSize({ width: 390, height: 844 });
    w = await widths(page);
    expect(w.doc).toBeLessThanOrEqual(390);
    await page.goto(`${server.url}/console/event/${OLD_ID}`);
    expect(await count(RAW)).toBe(1);
    w = await widths(page);
    expect(w.doc).toBeLessThanOrEqual(390);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('fits every page in 390 px with no sideways scroll: sign-in, queue, approvals, event pages, search', async () => {
    const { server, secret } = await phoneServer();
    const held = await send(server, secret, buildTestEvent('charge.dispute.created'));
    await waitFor(
      async () => (await counts(server, TOKEN)).awaiting_approval === 1,
      'the held dispute',
    );
    const phone = { width: 390, height: 844 };
    const context = await browser.newContext({ viewport: phone });
    cleanups.push(() => context.close());
    const page = await openPage(server.url, context);
    const fits = async (name: string) => {
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, `phone-${name}.png`), fullPage: true });
      const w = await widths(page);
      expect(w.doc, `${name}: scrollWidth`).toBeLessThanOrEqual(390);
    };

    await page.goto(`${server.url}/console`);
    await page.getByLabel('Token').waitFor();
    await fits('sign-in');
    await page.getByLabel('Token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`tr[data-id="${LONG_ID}"]`).waitFor();
    await fits('queue');
    // The id is cut with an ellipsis on one line, the whole of it in the link's title.
    const link = page.locator(`tr[data-id="${LONG_ID}"] td.id a`);
    expect(await link.getAttribute('title')).toBe(LONG_ID);
    const box = await link.evaluate((a) => {
      const style = (globalThis as any).getComputedStyle(a);
      return {
        height: a.getBoundingClientRect().height,
        line: parseFloat(style.lineHeight) || 20,
        overflow: style.textOverflow as string,
      };
    });
    expect(box.overflow).toBe('ellipsis');
    expect(box.height).toBeLessThan(box.line * 1.5);

    await page.goto(`${server.url}/console?status=awaiting_approval`);
    await page.locator(`tr[data-id="${held}"]`).waitFor();
    await fits('approvals');
    await page.goto(`${server.url}/console/event/${held}`);
    await page.locator('#actions .approval').waitFor();
    expect(await page.getByRole('button', { name: 'Approve' }).isVisible()).toBe(true);
    await fits('event-approval');
    await page.goto(`${server.url}/console/event/${LONG_ID}`);
    await page.locator('.timeline details.detail summary').first().click();
    await fits('event-dead');
    await page.getByText('Raw payload').click();
    await fits('event-dead-raw');
    await page.goto(`${server.url}/console/event/${OLD_ID}`);
    await fits('event-raw-error');
    await page.goto(`${server.url}/console?q=${encodeURIComponent('maya.okafor@example.com')}`);
    await page.locator('#search-bound').waitFor();
    await fits('search');
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('finds an event by its id, its object id, its customer id or email; the query shows as text', async () => {
    const secret = newSecret();
    const server = await startServe({ dataDir: tmp(), env: { STRIPE_WEBHOOK_SECRET: secret } });
    // The one to find, among others of the same shape that must not match.
    const invoice = buildTestEvent('invoice.payment_failed');
    const object = (invoice.data as { object: Record<string, unknown> }).object;
    object.id = 'in_1PhoneSearchTarget0001';
    object.customer = 'cus_PhoneSearch0001';
    object.customer_email = 'Ada.Lovelace@Example.org';
    object.charge = 'ch_3PhoneSearchCharge01';
    const target = await send(server, secret, invoice);
    for (const type of ['invoice.payment_failed', 'charge.dispute.created']) {
      await send(server, secret, buildTestEvent(type));
    }
    const page = await openPage(server.url);
    await page.goto(`${server.url}/console`);
    await page.locator(`tr[data-id="${target}"]`).waitFor();

    const search = async (query: string) => {
      await page.getByLabel('Find an event').fill(query);
      await page.getByRole('button', { name: 'Search' }).click();
      await page.waitForURL(/\?q=/);
      await page.locator('#search-bound').waitFor();
      return page
        .locator('table.queue tbody tr[data-id]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    };
    expect(await search(target)).toEqual([target]);
    expect(await search('in_1PhoneSearchTarget0001')).toEqual([target]);
    expect(await search('cus_PhoneSearch0001')).toEqual([target]);
    expect(await search('ch_3PhoneSearchCharge01')).toEqual([target]);
    // An email whatever its case, and with the spaces a paste brings.
    expect(await search('  ada.lovelace@example.ORG ')).toEqual([target]);
    expect(await page.locator('#search-bound').textContent()).toMatch(
      /^Searched every stored event \(3\)\./,
    );
    expect(await page.getByLabel('Find an event').inputValue()).toBe('ada.lovelace@example.ORG');
    // A fixture's customer matches every event of its shape but the target.
    expect((await search('cus_RvK8mQ2xLp7Tna')).length).toBe(1);
    expect(await search('cus_nobody')).toEqual([]);
    await poll(() => page.locator('table.queue tbody').textContent()).toMatch(/No events/);

    // Echoed as text: in the field and the caption, never as markup.
    const rows = await search(XSS);
    expect(rows).toEqual([]);
    expect(await page.getByLabel('Find an event').inputValue()).toBe(XSS);
    expect(await page.locator('table.queue caption').textContent()).toContain(XSS);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

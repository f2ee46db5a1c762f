/**
 * Issue #20, "the edges hold", at the console: state changes only from the console's own origin
 * (not any loopback origin: every port of a host is the same site, so SameSite=Strict lets another
 * local port's form post carry the session cookie), and a rate-limited sign-in with bounded
 * memory. Real HTTP servers on port 0; the browser's side is in console.browser.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app.js';
import { loadServeConfig } from '../../src/config/config.js';
import type { ConsoleBackend } from '../../src/console/backend.js';
import { createConsole } from '../../src/console/router.js';
import { clientKey, SIGN_IN_LIMIT, SignInLimiter } from '../../src/console/sign-in-limit.js';
import { requestSource } from '../../src/http-guard.js';
import { createLogger } from '../../src/logger.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'edges-test-token-0123456789abcdef0123';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with exactly these headers (fetch would add its own), optionally from `from`. */
function request(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    from?: string;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? 'POST',
        headers: options.headers ?? {},
        ...(options.from ? { localAddress: options.from } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const FORM = 'application/x-www-form-urlencoded';

function logLines(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'info',
    write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { logger, lines };
}

describe('console state changes come from its own origin only', () => {
  async function server(env: Record<string, string> = {}) {
    const tmp = tempDir('sem-console-edges-');
    cleanups.push(tmp.remove);
    const secret = newSecret();
    const config = loadServeConfig(
      { port: '0', dataDir: tmp.dir },
      { STRIPE_WEBHOOK_SECRET: secret, MCP_AUTH_TOKEN: TOKEN, ...env },
    );
    const { logger, lines } = logLines();
    const running: RunningServer = await startServer(config, { logger, notice: () => {} });
    cleanups.push(() => running.close());
    const url = running.url;
    const login = await request(`${url}/console/login`, {
      headers: { 'content-type': FORM, origin: url },
      body: `token=${TOKEN}`,
    });
    expect(login.status).toBe(303);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const pending = async () => {
      const event = buildTestEvent('invoice.payment_failed');
      const payload = JSON.stringify(event);
      const res = await postWebhook(url, payload, {
        'stripe-signature': signatureHeader(payload, secret),
      });
      expect(res.status).toBe(200);
      return String(event.id);
    };
    /** Posts Ack for `id` with the session cookie and exactly `headers` besides. */
    const ack = (id: string, headers: Record<string, string>) =>
      request(`${url}/console/event/${id}/ack`, {
        headers: { 'content-type': FORM, accept: 'application/json', cookie, ...headers },
        body: 'note=',
      });
    const status = async (id: string) => (await running.buffer.get(id))!.status;
    return { url, port: Number(new URL(url).port), lines, pending, ack, status };
  }

  it('refuses a signed-in change from another local port, or from nowhere it says (403), changing nothing', async () => {
    const s = await server();
    const id = await s.pending();
    const other = s.port === 65535 ? 65534 : s.port + 1;
    const refused: [string, Record<string, string>, RegExp][] = [
      ['another port on 127.0.0.1', { origin: `http://127.0.0.1:${other}` }, /its Origin is/],
      ['localhost on another port', { origin: `http://localhost:${other}` }, /its Origin is/],
      ['[::1] on another port', { origin: `http://[::1]:${other}` }, /its Origin is/],
      ['the right port over https', { origin: `https://127.0.0.1:${s.port}` }, /its Origin is/],
      ['Origin: null', { origin: 'null' }, /its Origin is "null"/],
      ['no Origin, Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }, /same-site/],
      ['no Origin, Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, /cross-site/],
      [
        'no Origin, a Referer on another port',
        { referer: `http://127.0.0.1:${other}/console/event/${id}` },
        /its Referer is http:\/\/127\.0\.0\.1:\d+,/,
      ],
      [
        'a foreign Origin is not rescued by a same-origin Referer',
        { origin: `http://127.0.0.1:${other}`, referer: `${s.url}/console` },
        /its Origin is/,
      ],
      ['no Origin, Sec-Fetch-Site or Referer at all', {}, /must say where it comes from/],
    ];
    for (const [what, headers, words] of refused) {
      const res = await s.ack(id, headers);
      expect(res.status, what).toBe(403);
      const message = (JSON.parse(res.body) as { message: string }).message;
      expect(message, what).toMatch(words);
      expect(message, what).toMatch(/Nothing was changed/);
      expect(await s.status(id), what).toBe('pending');
    }
    // Sign-in is a change too: another port cannot sign a browser in (login CSRF).
    const login = await request(`${s.url}/console/login`, {
      headers: { 'content-type': FORM, origin: `http://127.0.0.1:${other}` },
      body: `token=${TOKEN}`,
    });
    expect(login.status).toBe(403);
    // Reads from another origin's script are refused as well; the console's own reads send none.
    const read = await request(`${s.url}/console`, {
      method: 'GET',
      headers: { origin: `http://127.0.0.1:${other}` },
    });
    expect(read.status).toBe(403);

    // Logged bounded, with the header that decided and never the cookie.
    const warned = s.lines.filter(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('console request refused'),
    );
    expect(warned.length).toBe(5);
    expect(warned[0]).toMatchObject({
      reason: 'origin_not_allowed',
      origin: `http://127.0.0.1:${other}`,
      method: 'POST',
    });
    expect(JSON.stringify(s.lines)).not.toContain('sem_console=');
  });

  it("accepts the console's own origin, and without an Origin a same-origin Sec-Fetch-Site or Referer", async () => {
    const s = await server();
    const accepted: [string, Record<string, string>][] = [
      ['its own Origin', { origin: s.url }],
      ['its own Origin in capitals', { origin: s.url.toUpperCase() }],
      ['no Origin, Sec-Fetch-Site: same-origin', { 'sec-fetch-site': 'same-origin' }],
      ['no Origin, a Referer of its own', { referer: `${s.url}/console/event/x?y=1` }],
      [
        'localhost, as the page was opened',
        { host: `localhost:${s.port}`, origin: `http://localhost:${s.port}` },
      ],
    ];
    for (const [what, headers] of accepted) {
      const id = await s.pending();
      const res = await s.ack(id, headers);
      expect(res.status, what).toBe(200);
      expect(await s.status(id), what).toBe('acked');
    }
  });

  it('accepts the origin and host of --public-url (PUBLIC_URL), and no other', async () => {
    const s = await server({ PUBLIC_URL: 'https://events.example.com' });
    const behindProxy = { host: 'events.example.com' };
    const id = await s.pending();
    expect((await s.ack(id, { ...behindProxy, origin: 'https://evil.example.com' })).status).toBe(
      403,
    );
    expect((await s.ack(id, { origin: 'http://events.example.com' })).status).toBe(403);
    expect(await s.status(id)).toBe('pending');
    expect((await s.ack(id, { ...behindProxy, origin: 'https://events.example.com' })).status).toBe(
      200,
    );
    expect(await s.status(id)).toBe('acked');
  });

  it('accepts an origin listed in MCP_ALLOWED_ORIGINS (a proxy serving the console over https)', async () => {
    const s = await server({ MCP_ALLOWED_ORIGINS: 'https://console.example.com' });
    const id = await s.pending();
    expect((await s.ack(id, { origin: 'https://console.example.com:8443' })).status).toBe(403);
    expect((await s.ack(id, { referer: 'https://console.example.com/console' })).status).toBe(200);
    expect(await s.status(id)).toBe('acked');
    const next = await s.pending();
    expect((await s.ack(next, { origin: 'https://console.example.com' })).status).toBe(200);
  });
});

describe('requestSource', () => {
  const own = 'http://127.0.0.1:8000';
  const none = () => false;
  it('lets a present header decide, in the order Origin, Sec-Fetch-Site, Referer', () => {
    expect(requestSource({ origin: 'http://127.0.0.1:8000' }, own, none).allowed).toBe(true);
    expect(requestSource({ origin: 'http://127.0.0.1:8001' }, own, none)).toMatchObject({
      allowed: false,
      why: 'foreign',
      header: 'origin',
    });
    expect(
      requestSource({ 'sec-fetch-site': 'cross-site', referer: `${own}/console` }, own, none),
    ).toMatchObject({ allowed: false, header: 'sec-fetch-site' });
    expect(requestSource({ referer: 'ftp://127.0.0.1:8000/' }, own, none).allowed).toBe(false);
    expect(requestSource({}, own, none)).toEqual({ allowed: false, why: 'unknown' });
    expect(
      requestSource({ origin: 'https://a.example' }, own, (o) => o === 'https://a.example'),
    ).toEqual({ allowed: true });
  });
});

describe('sign-in is rate-limited per client, in bounded memory', () => {
  /** A console on its own HTTP server, with the limiter's clock in the test's hands. */
  async function consoleServer(limit: { maxClients?: number } = {}) {
    const clock = { now: 1_800_000_000_000 };
    const { logger, lines } = logLines();
    const consoleUi = createConsole({
      // Sign-in reads nothing from the queue.
      backend: {} as ConsoleBackend,
      logger,
      host: '127.0.0.1',
      authToken: TOKEN,
      signInLimit: { now: () => clock.now, ...limit },
    });
    const app = express();
    app.use(consoleUi.router);
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          consoleUi.close();
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const signIn = (token: string, from = '127.0.0.1') =>
      request(`${url}/console/login`, {
        headers: { 'content-type': FORM, origin: url },
        body: `token=${encodeURIComponent(token)}`,
        from,
      });
    /** Writes the refusal log's pending summary now. */
    const flush = () => consoleUi.close();
    return { clock, lines, signIn, flush };
  }

  const MINUTE = 60_000;

  it(`answers 429 with Retry-After after ${SIGN_IN_LIMIT.failures} wrong tokens, refuses even the right one, and lets it in after the window`, async () => {
    const { clock, lines, signIn, flush } = await consoleServer();
    for (let i = 0; i < SIGN_IN_LIMIT.failures; i++) {
      expect((await signIn(`wrong-${i}`)).status, `guess ${i + 1}`).toBe(401);
      clock.now += MINUTE;
    }
    // Five minutes into the fifteen-minute window that began with the first wrong token.
    const limited = await signIn(TOKEN);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe(String(10 * 60));
    expect(limited.body).toMatch(
      /Too many wrong tokens from this address. Try again in 10 minutes/,
    );
    expect(limited.headers['set-cookie']).toBeUndefined();
    clock.now += 9 * MINUTE + 59_000;
    const still = await signIn(TOKEN);
    expect(still.status).toBe(429);
    expect(still.headers['retry-after']).toBe('1');

    // Another address is counted on its own.
    expect((await signIn(TOKEN, '127.0.0.2')).status).toBe(303);

    clock.now += 1_000;
    const after = await signIn(TOKEN);
    expect(after.status).toBe(303);
    expect(String(after.headers['set-cookie'])).toMatch(/^sem_console=/);

    // Logged bounded (the five wrong tokens one by one, the rest counted), never the token tried.
    flush();
    expect(lines.filter((l) => l.msg === 'console sign-in refused: wrong token')).toHaveLength(5);
    expect(
      lines.find((l) => l.msg === 'console requests refused (more, not logged one by one)'),
    ).toMatchObject({ count: 2, reasons: [{ reason: 'sign_in_limited', count: 2 }] });
    expect(JSON.stringify(lines)).not.toContain('wrong-0');
    expect(JSON.stringify(lines)).not.toContain(TOKEN);
  });

  it('counts attempts fired all at once: 100 parallel guesses get 5 answers', async () => {
    const { signIn } = await consoleServer();
    const statuses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => signIn(`wrong-${i}`).then((r) => r.status)),
    );
    expect(statuses.filter((x) => x === 401)).toHaveLength(SIGN_IN_LIMIT.failures);
    expect(statuses.filter((x) => x === 429)).toHaveLength(100 - SIGN_IN_LIMIT.failures);
  });

  it('forgets the failures of a client that signs in', async () => {
    const { signIn } = await consoleServer();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < SIGN_IN_LIMIT.failures - 1; i++) {
        expect((await signIn('wrong')).status).toBe(401);
      }
      expect((await signIn(TOKEN)).status, `round ${round}`).toBe(303);
    }
    for (let i = 0; i < SIGN_IN_LIMIT.failures; i++)
      expect((await signIn('wrong')).status).toBe(401);
    expect((await signIn(TOKEN)).status).toBe(429);
  });

  it('stays bounded with many distinct clients', async () => {
    const limiter = new SignInLimiter({ maxClients: 100, now: () => 0 });
    for (let i = 0; i < 5_000; i++) {
      for (let k = 0; k < SIGN_IN_LIMIT.failures; k++) limiter.attempt(`10.${i >> 8}.${i & 255}.1`);
      expect(limiter.size).toBeLessThanOrEqual(100);
    }
    // The newest are remembered, and limited.
    expect(limiter.retryAfter('10.19.135.1')).toBe(SIGN_IN_LIMIT.windowMs / 1000);
    expect(limiter.retryAfter('10.0.0.1')).toBe(0);

    // Over HTTP, from addresses of 127.0.0.0/8: with room for 3 clients, a limited client is
    // forgotten once 3 others have failed since (the price of the bound; 10 000 by default).
    const small = await consoleServer({ maxClients: 3 });
    for (let i = 0; i < SIGN_IN_LIMIT.failures; i++) await small.signIn('wrong', '127.0.0.2');
    expect((await small.signIn(TOKEN, '127.0.0.2')).status).toBe(429);
    for (let i = 3; i < 6; i++)
      expect((await small.signIn('wrong', `127.0.0.${i}`)).status).toBe(401);
    expect((await small.signIn(TOKEN, '127.0.0.2')).status).toBe(303);
    expect(SIGN_IN_LIMIT.maxClients).toBe(10_000);
    const big = new SignInLimiter({ now: () => 0 });
    for (let i = 0; i < 3 * SIGN_IN_LIMIT.maxClients; i++) big.attempt(`client-${i}`);
    expect(big.size).toBe(SIGN_IN_LIMIT.maxClients);
  });

  it('counts an IPv6 client by its /64, and IPv4-mapped addresses as IPv4', () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey(undefined)).toBe('unknown');
  });
});

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { killLeftovers, runCli, startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';

// Issue #15, the HTTP door: bounded slow/large bodies, envelope validation, verification over
// the bytes received, bounded rejection logs, and /metrics behind the token off loopback.

const cleanups: (() => Promise<unknown> | void)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killLeftovers();
});

interface Server {
  serve: ServeHandle;
  dataDir: string;
  secret: string;
  url: string;
}

async function serve(args: string[] = [], env: Record<string, string> = {}): Promise<Server> {
  const tmp = tempDir();
  cleanups.push(tmp.remove);
  const secret = newSecret();
  const handle = await startServe({
    dataDir: tmp.dir,
    args,
    env: { STRIPE_WEBHOOK_SECRET: secret, ...env },
  });
  cleanups.push(() => handle.stop());
  // A 0.0.0.0 bind logs that address; reach it over loopback.
  const url = handle.url.replace('//0.0.0.0:', '//127.0.0.1:');
  return { serve: handle, secret, url, dataDir: tmp.dir };
}

function event(type = 'charge.dispute.created'): { id: string; payload: string } {
  const e = buildTestEvent(type);
  return { id: e.id as string, payload: JSON.stringify(e) };
}

function send(s: Server, payload: string) {
  return postWebhook(s.url, payload, { 'stripe-signature': signatureHeader(payload, s.secret) });
}

/** A Stripe-Signature over the exact bytes, as Stripe signs what it sends. */
function signBytes(body: Buffer, secret: string): string {
  const t = Math.floor(Date.now() / 1000);
  const v1 = crypto.createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  return `t=${t},v1=${v1}`;
}

async function postBytes(s: Server, body: Buffer, signature: string) {
  const res = await fetch(`${s.url}/stripe/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': signature },
    body,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function pending(s: Server): Promise<number> {
  const res = await fetch(`${s.url}/healthz`);
  return ((await res.json()) as { pending: number }).pending;
}

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!kb) throw new Error('no VmRSS in /proc/<pid>/status');
  return Number(kb[1]) * 1024;
}

const MiB = 1024 * 1024;

/** A GET naming `host` in its Host header (fetch does not let a caller choose it). */
function getWithHost(
  url: string,
  host: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers: { ...headers, host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('slow and large bodies', () => {
  it('300 stalled 1 MiB bodies: RSS stays bounded, events still get in, and the stalls are closed', async () => {
    const s = await serve();
    const pid = s.serve.child.pid!;
    const port = Number(new URL(s.url).port);
    // Warm the server up so the baseline includes the first request's allocations.
    expect((await send(s, event().payload)).body.status).toBe('queued');
    const before = rssBytes(pid);

    const chunk = Buffer.alloc(MiB, 0x20);
    const head =
      'POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Stripe-Signature: t=1,v1=00\r\nContent-Length: ${2 * MiB}\r\n\r\n`;
    const opened = Date.now();
    const closedAt: number[] = [];
    const sockets = await Promise.all(
      Array.from(
        { length: 300 },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const socket = net.connect(port, '127.0.0.1', () => {
              socket.write(head);
              socket.write(chunk);
              resolve(socket);
            });
            socket.resume(); // read the answer (and the end), whatever it is
            socket.on('error', () => {}); // a reset after a 503 is an answer too
            socket.on('close', () => closedAt.push(Date.now()));
            socket.once('error', reject);
          }),
      ),
    );
    cleanups.push(() => sockets.forEach((socket) => socket.destroy()));
    // The peak while the server reads what it will read of the 300 MiB (a loaded machine may
    // take seconds: sample for a while rather than once).
    let peak = 0;
    for (let i = 0; i < 40; i++) {
      peak = Math.max(peak, rssBytes(pid));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const grown = peak - before;
    expect(grown, `RSS grew by ${Math.round(grown / MiB)} MiB`).toBeLessThanOrEqual(150 * MiB);

    // A signed event still gets in, and promptly.
    const started = Date.now();
    const e = event();
    const res = await send(s, e.payload);
    const took = Date.now() - started;
    expect(res.body.status).toBe('queued');
    expect(took, `the signed event took ${took} ms`).toBeLessThan(1_000);

    // Every stalled connection is closed by the server (--request-timeout 30 s).
    const deadline = Date.now() + 40_000;
    while (closedAt.length < 300 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(closedAt.length, 'stalled connections closed by the server').toBe(300);
    const slowest = Math.max(...closedAt) - opened;
    expect(slowest, `the last stall was closed after ${slowest} ms`).toBeLessThanOrEqual(35_000);
    console.info(
      `300 stalled bodies: RSS +${Math.round(grown / MiB)} MiB, a signed event in ${took} ms, the last stall closed after ${slowest} ms`,
    );
  }, 90_000);

  it('answers 503 + Retry-After past --max-body-memory, and closes a silent connection after --headers-timeout', async () => {
    const s = await serve([
      '--max-body',
      '1mb',
      '--max-body-memory',
      '2mb',
      '--headers-timeout',
      '1',
      '--request-timeout',
      '3',
    ]);
    const port = Number(new URL(s.url).port);
    const stall = () =>
      new Promise<{ socket: net.Socket; answer: Promise<string> }>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(
            `POST /stripe/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: ${MiB}\r\n\r\n{"id":`,
          );
          resolve({ socket, answer });
        });
        let text = '';
        socket.on('error', () => {});
        socket.on('data', (d) => (text += d.toString()));
        const answer = new Promise<string>((done) => socket.on('close', () => done(text)));
      });
    const a = await stall();
    const b = await stall();
    const c = await stall();
    cleanups.push(() => [a, b, c].forEach((x) => x.socket.destroy()));
    const third = await c.answer;
    expect(third).toMatch(/^HTTP\/1\.1 503 /);
    expect(third).toMatch(/\r\nretry-after: \d+\r\n/i);
    expect(third).toContain('server_busy');
    // The two admitted ones are cut at --request-timeout, not held for ever.
    await expect(Promise.all([a.answer, b.answer])).resolves.toHaveLength(2);
    // A small event is never starved by large stalled ones.
    expect((await send(s, event().payload)).body.status).toBe('queued');

    const silent = net.connect(port, '127.0.0.1');
    silent.resume();
    silent.on('error', () => {});
    const silentClosed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      silent.on('close', () => resolve(Date.now() - t0));
    });
    expect(await silentClosed).toBeLessThan(10_000);
  }, 60_000);

  it('closes connections past --max-connections at once, and takes new ones once others close', async () => {
    const s = await serve(['--max-connections', '3']);
    const port = Number(new URL(s.url).port);
    const open = () =>
      new Promise<{ socket: net.Socket; closed: Promise<number> }>((resolve) => {
        const t0 = Date.now();
        const socket = net.connect(port, '127.0.0.1', () => resolve({ socket, closed }));
        socket.resume();
        socket.on('error', () => {});
        const closed = new Promise<number>((done) =>
          socket.on('close', () => done(Date.now() - t0)),
        );
      });
    const held = [await open(), await open(), await open()];
    cleanups.push(() => held.forEach((h) => h.socket.destroy()));
    const extra = await open();
    // Closed by the server well before --headers-timeout (10 s) would have.
    expect(await extra.closed).toBeLessThan(5_000);
    held.forEach((h) => h.socket.destroy());
    await Promise.all(held.map((h) => h.closed));
    await waitFor(
      async () => (await send(s, event().payload).catch(() => null))?.body.status === 'queued',
      'a new connection to be taken once the others closed',
    );
  });

  it('refuses a bad limit setting with exit 2 naming it', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const bad = await runCli([
      'serve',
      '--port',
      '0',
      '--data-dir',
      tmp.dir,
      '--headers-timeout',
      '40',
      '--request-timeout',
      '30',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--headers-timeout/);
  });
});

describe('the envelope is validated at the door', () => {
  const base = () => buildTestEvent('charge.dispute.created') as Record<string, any>;
  const cases: [string, () => string][] = [
    ['created 1e400', () => JSON.stringify(base()).replace(/"created":\d+/, '"created":1e400')],
    ['created a string', () => JSON.stringify({ ...base(), created: '1700000000' })],
    ['created a fraction', () => JSON.stringify({ ...base(), created: 1700000000.5 })],
    [
      'an id of 10 000 characters',
      () => JSON.stringify({ ...base(), id: 'evt_' + 'a'.repeat(10_000) }),
    ],
    ['an id with NUL', () => JSON.stringify({ ...base(), id: 'evt_abc\u0000def' })],
    ['an id with a newline', () => JSON.stringify({ ...base(), id: 'evt_abc\ndef' })],
    ['an id with RLO', () => JSON.stringify({ ...base(), id: 'evt_abc\u202edef' })],
    [
      'a type that is not a dotted token',
      () => JSON.stringify({ ...base(), type: 'charge dispute\ncreated' }),
    ],
    [
      'a data.object that is an array',
      () => JSON.stringify({ ...base(), data: { object: [1, 2] } }),
    ],
    [
      '5 000 levels of nesting',
      () => {
        const e = base();
        const text = JSON.stringify(e);
        const deep = '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000);
        return text.replace(/^\{/, `{"deep":${deep},`);
      },
    ],
  ];

  it('answers 400 invalid_event, storing nothing, for each hostile envelope', async () => {
    const s = await serve();
    for (const [name, build] of cases) {
      const res = await send(s, build());
      expect(res.status, name).toBe(400);
      expect(res.body.error.code, name).toBe('invalid_event');
      expect(await pending(s), name).toBe(0);
    }
    // The queue still lists, and a good event still gets in.
    expect((await send(s, event().payload)).body.status).toBe('queued');
    const list = await runCli(['events', 'list', '--json', '--data-dir', s.dataDir]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toHaveLength(1);
  });

  it('still accepts 64 levels of nesting and ids like Stripe test ids', async () => {
    const s = await serve();
    const e = base();
    let nested: unknown = 1;
    for (let i = 0; i < 60; i++) nested = { n: nested };
    e.data.object.metadata = { nested };
    e.id = 'evt_1NG8Du2eZvKYlo2CUI79vXWy';
    expect((await send(s, JSON.stringify(e))).body.status).toBe('queued');
  });
});

describe('verification over the bytes received', () => {
  const withByte = (byte: number) => {
    const text = JSON.stringify({ ...buildTestEvent('charge.dispute.created'), note: 'caf@' });
    const body = Buffer.from(text, 'utf8');
    body[body.indexOf('caf@') + 3] = byte;
    return body;
  };

  it('answers invalid_json, not invalid_signature, for invalid UTF-8 signed over its bytes', async () => {
    const s = await serve();
    const body = withByte(0xff);
    const res = await postBytes(s, body, signBytes(body, s.secret));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_json');
    expect(await pending(s)).toBe(0);
  });

  it('refuses a body whose signature covers its U+FFFD decoding rather than its bytes', async () => {
    const s = await serve();
    const body = withByte(0xff);
    const decoded = Buffer.from(body.toString('utf8'), 'utf8'); // 0xff became EF BF BD
    const res = await postBytes(s, body, signBytes(decoded, s.secret));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_signature');
    expect(await pending(s)).toBe(0);
  });

  it('still queues valid multi-byte UTF-8, stored as the text received', async () => {
    const s = await serve();
    const e = { ...buildTestEvent('charge.dispute.created'), note: 'café ☕ 𝄞' };
    const body = Buffer.from(JSON.stringify(e), 'utf8');
    const res = await postBytes(s, body, signBytes(body, s.secret));
    expect(res.body.status).toBe('queued');
  });
});

describe('logs stay bounded', () => {
  it('a flood of 2 000 forged requests writes a few lines, then counts by reason', async () => {
    const s = await serve();
    const e = event();
    const forged = { 'stripe-signature': signatureHeader(e.payload, newSecret()) };
    let sent = 0;
    const worker = async () => {
      while (sent < 2_000) {
        sent++;
        const res = await postWebhook(s.url, e.payload, forged);
        expect(res.status).toBe(400);
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 16 }, worker));
    const intervals = Math.ceil((Date.now() - started) / 10_000);
    const rejectionLines = () =>
      s.serve.logs().filter((r) => typeof r.msg === 'string' && r.msg.startsWith('webhook'));
    // The summary comes at the end of the interval (10 s) that counted them.
    const counted = () =>
      rejectionLines().reduce(
        (n, r) => n + (r.msg === 'webhook rejected' ? 1 : ((r.count as number) ?? 0)),
        0,
      );
    await waitFor(() => counted() === 2_000, 'every rejection to be logged or counted', 30_000);
    const lines = rejectionLines();
    // Five one by one, then one summary per 10 s interval however many arrive in it.
    expect(lines.length, JSON.stringify(lines.slice(0, 3))).toBeLessThanOrEqual(5 + intervals + 1);
    const summary = lines.find((r) => r.msg !== 'webhook rejected');
    expect(summary).toMatchObject({
      level: 'warn',
      reasons: [{ reason: 'invalid_signature', count: expect.any(Number) }],
    });
  }, 90_000);
});

describe('refusals at /mcp and the console stay bounded in the log', () => {
  it('foreign Origins at /mcp and wrong console tokens: a few lines each, then counts by reason', async () => {
    const token = crypto.randomBytes(16).toString('hex');
    const s = await serve([], { MCP_AUTH_TOKEN: token });
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const requests: Promise<number>[] = [];
    for (let i = 0; i < 150; i++) {
      requests.push(
        fetch(`${s.url}/mcp`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
          body: init,
        }).then((r) => r.status),
      );
      requests.push(
        fetch(`${s.url}/console/login`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            origin: s.url,
          },
          body: `token=wrong-${i}`,
        }).then((r) => r.status),
      );
    }
    const statuses = await Promise.all(requests);
    expect(statuses.filter((x) => x === 403)).toHaveLength(150);
    // Sign-in is rate-limited: five wrong tokens from this address, then 429 without a check.
    expect(statuses.filter((x) => x === 401)).toHaveLength(5);
    expect(statuses.filter((x) => x === 429)).toHaveLength(145);
    const lines = (prefix: string) =>
      s.serve.logs().filter((r) => typeof r.msg === 'string' && r.msg.startsWith(prefix));
    /** Refusals with `reason`, logged one by one or counted in a summary. */
    const counted = (prefix: string, reason: string) =>
      lines(prefix).reduce(
        (n, r) =>
          n +
          (r.reason === reason
            ? 1
            : ((r.reasons as { reason: string; count: number }[] | undefined)?.find(
                (x) => x.reason === reason,
              )?.count ?? 0)),
        0,
      );
    // The summaries come at the end of the 10 s interval that counted them.
    await waitFor(
      () =>
        counted('mcp request', 'origin_not_allowed') === 150 &&
        counted('console', 'wrong_token') + counted('console', 'sign_in_limited') === 150,
      'every refusal to be logged or counted',
      30_000,
    );
    expect(counted('console', 'wrong_token')).toBe(5);
    expect(counted('console', 'sign_in_limited')).toBe(145);
    for (const prefix of ['mcp request', 'console']) {
      const all = lines(prefix);
      expect(all.filter((r) => r.reason !== undefined)).toHaveLength(5);
      expect(all.length).toBeLessThanOrEqual(5 + 2);
      expect(all.find((r) => r.reasons !== undefined)).toMatchObject({ level: 'warn' });
    }
    // No line carries the token that was tried.
    expect(JSON.stringify(s.serve.logs())).not.toContain('wrong-1');
  }, 60_000);
});

describe('/metrics and /healthz off loopback', () => {
  it('needs MCP_AUTH_TOKEN for /metrics and for the counts of /healthz', async () => {
    const token = crypto.randomBytes(16).toString('hex');
    const s = await serve(['--host', '0.0.0.0'], { MCP_AUTH_TOKEN: token });
    await send(s, event().payload);
    const open = await fetch(`${s.url}/metrics`);
    expect(open.status).toBe(401);
    expect(open.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await open.text()).not.toContain('stripe_events_received_total');
    const wrong = await fetch(`${s.url}/metrics`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const auth = { authorization: `Bearer ${token}` };
    const metrics = await fetch(`${s.url}/metrics`, { headers: auth });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^stripe_events_received_total 1$/m);

    const bare = await fetch(`${s.url}/healthz`);
    expect(bare.status).toBe(200);
    expect(await bare.json()).toEqual({ status: 'ok' });
    const full = await fetch(`${s.url}/healthz`, { headers: auth });
    expect(await full.json()).toMatchObject({ status: 'ok', pending: 1 });
  });

  it('refuses a foreign Host at /metrics and /healthz as /mcp does (403), logged bounded', async () => {
    const s = await serve();
    const port = new URL(s.url).port;
    for (const path of ['/metrics', '/healthz']) {
      const foreign = await getWithHost(`${s.url}${path}`, `evil.example:${port}`);
      expect(foreign.status, path).toBe(403);
      const body = JSON.parse(foreign.body) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('host_not_allowed');
      expect(body.error.message).toMatch(/Host "evil.example:\d+" is not allowed \(DNS rebinding/);
      expect(foreign.body).not.toMatch(/pending|stripe_events_/);
      // The same answer /mcp gives that Host.
      expect((await getWithHost(`${s.url}/mcp`, `evil.example:${port}`)).status).toBe(403);
      // This machine's names are fine.
      expect((await getWithHost(`${s.url}${path}`, `localhost:${port}`)).status, path).toBe(200);
    }
    for (let i = 0; i < 20; i++) await getWithHost(`${s.url}/healthz`, `rebind-${i}.example`);
    const refused = () =>
      s.serve
        .logs()
        .filter((r) => typeof r.msg === 'string' && r.msg.startsWith('health or metrics'));
    await waitFor(
      () => refused().some((r) => r.reasons !== undefined),
      'the summary of the refusals',
      30_000,
    );
    const all = refused();
    expect(
      all.filter((r) => r.msg === 'health or metrics request refused: Host not allowed'),
    ).toHaveLength(5);
    expect(all.find((r) => r.reasons !== undefined)).toMatchObject({
      level: 'warn',
      reasons: [{ reason: 'host_not_allowed', count: 22 - 5 }],
    });
  }, 60_000);

  it('off loopback with MCP_ALLOWED_HOSTS, only those names (and the token still counts)', async () => {
    const token = crypto.randomBytes(16).toString('hex');
    const s = await serve(['--host', '0.0.0.0'], {
      MCP_AUTH_TOKEN: token,
      MCP_ALLOWED_HOSTS: 'events.example.com',
    });
    const auth = { authorization: `Bearer ${token}` };
    expect((await getWithHost(`${s.url}/metrics`, 'evil.example', auth)).status).toBe(403);
    expect((await getWithHost(`${s.url}/healthz`, 'evil.example')).status).toBe(403);
    expect((await getWithHost(`${s.url}/metrics`, 'events.example.com', auth)).status).toBe(200);
    expect((await getWithHost(`${s.url}/metrics`, 'events.example.com')).status).toBe(401);
  });

  it('on loopback without a token: unchanged', async () => {
    const s = await serve();
    expect((await fetch(`${s.url}/metrics`)).status).toBe(200);
    expect(await (await fetch(`${s.url}/healthz`)).json()).toMatchObject({ pending: 0 });
  });
});

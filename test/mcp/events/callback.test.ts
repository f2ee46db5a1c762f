import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NO_ALLOWANCE } from '../../../src/mcp/events/address.js';
import { MAX_RESPONSE_BYTES, postCallback } from '../../../src/mcp/events/callback.js';

/** Every server here listens on 127.0.0.1; nothing is sent anywhere else. */
const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function serve(handler: http.RequestListener): Promise<{ port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, hits };
}

const LOOPBACK = { loopback: true, privateRanges: false };

describe('the callback POST', () => {
  it('checks a host name on its resolved address at delivery: localhost is refused without the allowance, and nothing is sent', async () => {
    const target = await serve((_req, res) => res.end('{}'));
    const result = await postCallback(
      new URL(`http://localhost:${target.port}/hook`),
      { 'content-type': 'application/json' },
      '{}',
      NO_ALLOWANCE,
    );
    expect(result).toMatchObject({ ok: false, reason: 'refused_address' });
    expect(target.hits).toEqual([]);
    const allowed = await postCallback(
      new URL(`http://localhost:${target.port}/hook`),
      { 'content-type': 'application/json' },
      '{}',
      LOOPBACK,
    );
    expect(allowed).toMatchObject({ ok: true, status: 200 });
    expect(target.hits).toEqual(['/hook']);
  });

  it('refuses a literal address before connecting', async () => {
    const target = await serve((_req, res) => res.end());
    const result = await postCallback(
      new URL(`http://127.0.0.1:${target.port}/hook`),
      {},
      '{}',
      NO_ALLOWANCE,
    );
    expect(result).toMatchObject({ ok: false, reason: 'refused_address' });
    expect(target.hits).toEqual([]);
  });

  it('does not follow a redirect', async () => {
    const inside = await serve((_req, res) => res.end());
    const target = await serve((_req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${inside.port}/admin` }).end();
    });
    const result = await postCallback(
      new URL(`http://127.0.0.1:${target.port}/hook`),
      {},
      '{}',
      LOOPBACK,
    );
    expect(result).toMatchObject({ ok: false, reason: 'http_3xx', status: 307 });
    expect(inside.hits).toEqual([]);
  });

  it('reads at most MAX_RESPONSE_BYTES of a response', async () => {
    const big = 'x'.repeat(MAX_RESPONSE_BYTES * 64);
    const target = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(big);
    });
    const result = await postCallback(
      new URL(`http://127.0.0.1:${target.port}/hook`),
      {},
      '{}',
      LOOPBACK,
    );
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.body.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
  });

  it('reports a refused connection and a timeout by category', async () => {
    const closed = await serve((_req, res) => res.end());
    const port = closed.port;
    servers[0]!.closeAllConnections();
    await new Promise<void>((r) => servers.shift()!.close(() => r()));
    const refused = await postCallback(new URL(`http://127.0.0.1:${port}/`), {}, '{}', LOOPBACK);
    expect(refused).toMatchObject({ ok: false, reason: 'connection_refused' });
    const slow = await serve(() => undefined);
    const timedOut = await postCallback(
      new URL(`http://127.0.0.1:${slow.port}/`),
      {},
      '{}',
      LOOPBACK,
      200,
    );
    expect(timedOut).toMatchObject({ ok: false, reason: 'timeout' });
  });
});

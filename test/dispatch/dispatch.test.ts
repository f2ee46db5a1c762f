import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DispatchError,
  httpSink,
  moduleSink,
  type DispatchRequest,
} from '../../src/dispatch/dispatch.js';
import { tempDir } from '../helpers/tmp.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Seen {
  method: string;
  url: string;
  body: string;
  signature: string | undefined;
}

/** A real HTTP server on port 0 that records every request and answers with `answer`. */
async function server(answer: (res: http.ServerResponse) => void) {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        body,
        signature: req.headers['stripe-events-signature'] as string | undefined,
      });
      answer(res);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
  return { seen, url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` };
}

function request(name: string): DispatchRequest {
  return {
    event_id: 'evt_1',
    event_type: 'charge.refunded',
    tool_call: { name, input: { amount: 100, action: 'record_only', rationale: 'x' } },
    idempotency_key: 'k1',
    event: {},
  };
}

describe('http sink', () => {
  for (const status of [307, 308, 301, 302, 303]) {
    it(`never follows a ${status}: a failed dispatch naming the redirect, not retried, the target gets nothing`, async () => {
      const elsewhere = await server((res) => res.writeHead(200).end());
      const handler = await server((res) =>
        res.writeHead(status, { location: `${elsewhere.url}/steal` }).end(),
      );
      const sink = httpSink({
        url: `${handler.url}/handle`,
        secret: 'a-long-enough-secret',
        backoffMs: () => 1,
      });
      const failure = await sink.dispatch(request('log_refund')).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(DispatchError);
      const message = (failure as Error).message;
      expect(message).toContain(`HTTP ${status} redirect`);
      expect(message).toContain(`${elsewhere.url}/steal`);
      expect(handler.seen).toHaveLength(1);
      expect(handler.seen[0]!.method).toBe('POST');
      expect(elsewhere.seen).toEqual([]);
    });
  }

  it('bounds a long Location in the message', async () => {
    const handler = await server((res) =>
      res.writeHead(307, { location: `http://x.example/${'a'.repeat(5_000)}` }).end(),
    );
    const sink = httpSink({ url: handler.url, secret: 'a-long-enough-secret' });
    const error = await sink.dispatch(request('log_refund')).catch((e: Error) => e);
    expect((error as Error).message.length).toBeLessThan(500);
    expect((error as Error).message).toContain('…');
  });
});

describe('module sink', () => {
  it('finds own exports only: a tool named like an Object.prototype member is not dispatched', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const file = path.join(tmp.dir, 'handlers.mjs');
    fs.writeFileSync(
      file,
      [
        'export const calls = [];',
        'export default { log_refund(input) { calls.push(input.amount); } };',
        '',
      ].join('\n'),
    );
    const sink = await moduleSink(file);
    expect(await sink.dispatch(request('log_refund'))).toMatchObject({ outcome: 'dispatched' });
    for (const name of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__']) {
      await expect(sink.dispatch(request(name)), name).rejects.toThrow(
        new RegExp(`exports no function named ${name}`),
      );
    }
    const mod = (await import(file)) as { calls: unknown[] };
    expect(mod.calls).toEqual([100]);
  });
});

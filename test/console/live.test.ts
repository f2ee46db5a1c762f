/**
 * The console's bounds: live streams (count, and changes queued per stream) over a real HTTP
 * server with the memory store's change feed, and sign-in sessions (count, expiry).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { LiveFeed } from '../../src/console/live.js';
import { cookieValue, Sessions } from '../../src/console/sessions.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function serveFeed(feed: LiveFeed): Promise<string> {
  const server = http.createServer((_req, res) => {
    if (!feed.open(res)) res.writeHead(503).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        feed.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** Reads server-sent `data:` messages from a stream until `until` says stop. */
async function read(
  res: Response,
  until: (messages: unknown[][]) => boolean,
  deadlineMs = 20_000,
): Promise<unknown[][]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const messages: unknown[][] = [];
  let text = '';
  const end = Date.now() + deadlineMs;
  while (!until(messages)) {
    if (Date.now() > end) throw new Error('no message in time');
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, cut);
      text = text.slice(cut + 2);
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (data) messages.push(JSON.parse(data.slice(6)) as unknown[]);
    }
  }
  await reader.cancel();
  return messages;
}

function event(i: number) {
  return {
    id: `evt_${i}`,
    type: 'charge.refunded',
    created: 1,
    livemode: false,
    objectId: null,
    payload: '{}',
  };
}

describe('LiveFeed', () => {
  it('refuses streams past its limit and watches the store only while someone looks', async () => {
    const buffer = new MemoryBuffer();
    let watching = 0;
    const feed = new LiveFeed((listener) => {
      watching += 1;
      const stop = buffer.watch(listener);
      return () => {
        watching -= 1;
        stop();
      };
    }, 2);
    const url = await serveFeed(feed);
    const a = await fetch(url);
    const b = await fetch(url);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect((await fetch(url)).status).toBe(503);
    expect(watching).toBe(1);
    await buffer.append(event(1));
    const got = await read(a, (m) => m.length > 0);
    expect(got[0]).toEqual([{ kind: 'queued', id: 'evt_1', type: 'charge.refunded' }]);
    await a.body!.cancel().catch(() => {});
    await b.body!.cancel().catch(() => {});
    await new Promise<void>((resolve, reject) => {
      const end = Date.now() + 10_000;
      const check = () =>
        feed.size === 0
          ? resolve()
          : Date.now() > end
            ? reject(new Error(`still ${feed.size}`))
            : setTimeout(check, 20);
      check();
    });
    expect(watching).toBe(0);
    expect((await fetch(url)).status).toBe(200);
  });

  it('collapses a burst of changes past the per-stream bound into one resync', async () => {
    const buffer = new MemoryBuffer();
    const feed = new LiveFeed((listener) => buffer.watch(listener));
    const url = await serveFeed(feed);
    const res = await fetch(url);
    // 200 changes at once, before the first flush: more than a stream queues.
    await Promise.all(Array.from({ length: 200 }, (_, i) => buffer.append(event(i))));
    const got = await read(res, (m) => m.length > 0);
    expect(got[0]).toEqual([{ kind: 'resync' }]);
  });
});

describe('Sessions', () => {
  it('keeps at most `max`, dropping the oldest, and forgets expired ones', () => {
    const sessions = new Sessions(1000, 3);
    const ids = [0, 1, 2, 3].map(() => sessions.create(0));
    expect(sessions.size).toBe(3);
    expect(sessions.valid(ids[0], 1)).toBe(false);
    expect(ids.slice(1).every((id) => sessions.valid(id, 1))).toBe(true);
    expect(sessions.valid(ids[1], 1000)).toBe(false);
    sessions.end(ids[2]);
    expect(sessions.valid(ids[2], 1)).toBe(false);
    expect(sessions.valid(undefined)).toBe(false);
    expect(new Set(ids).size).toBe(4);
    expect(ids[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('reads one cookie from a Cookie header', () => {
    expect(cookieValue('a=1; sem_console=xyz; b=2', 'sem_console')).toBe('xyz');
    expect(cookieValue('sem_console_other=1', 'sem_console')).toBeUndefined();
    expect(cookieValue(undefined, 'sem_console')).toBeUndefined();
  });
});

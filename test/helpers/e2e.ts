import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import { killLeftovers } from './spawn.js';
import { tempDir } from './tmp.js';

export type Cleanups = (() => Promise<void> | void)[];

/**
 * What an end-to-end test file shares: after each test, every child process it spawned is killed,
 * then its cleanups run, newest first. `tmp()` makes a directory removed the same way.
 */
export function e2eScope(): { cleanups: Cleanups; tmp: () => string } {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    await killLeftovers();
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  const tmp = () => {
    const t = tempDir();
    cleanups.push(t.remove);
    return t.dir;
  };
  return { cleanups, tmp };
}

/**
 * A real endpoint for the `http` dispatch sink: keeps the JSON body of every request it gets and
 * answers each with `status` — or, with a function, with what it returns for the nth request
 * (1-based): a status, or `hold` to keep the request open (a handler that holds the call, say
 * until its caller is killed). Closed by `cleanups`, held requests included.
 */
export async function sinkServer(
  cleanups: Cleanups,
  status: number | ((n: number) => number | 'hold') = 200,
): Promise<{ url: string; bodies: Record<string, unknown>[] }> {
  const bodies: Record<string, unknown>[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(JSON.parse(body) as Record<string, unknown>);
      const answer = typeof status === 'function' ? status(bodies.length) : status;
      if (answer !== 'hold') res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/actions`, bodies };
}

/** The queue's counts by status, as `/healthz` reports them. */
export async function queueCounts(server: { url: string }): Promise<Record<string, number>> {
  const health = (await (await fetch(`${server.url}/healthz`)).json()) as {
    counts: Record<string, number>;
  };
  return health.counts;
}

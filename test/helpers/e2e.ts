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
 * answers each with `status`. Closed by `cleanups`.
 */
export async function sinkServer(
  cleanups: Cleanups,
  status = 200,
): Promise<{ url: string; bodies: Record<string, unknown>[] }> {
  const bodies: Record<string, unknown>[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/actions`, bodies };
}

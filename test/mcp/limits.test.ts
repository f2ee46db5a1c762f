/**
 * Bounds a client of /mcp cannot push past: the number of Streamable HTTP sessions (at the cap
 * the least recently used idle session is closed, so a flood locks nobody out) and, per session,
 * the number and length of subscribed URIs. A real server on port 0, the official SDK client, and
 * raw HTTP for the flood a client without a token can send on a loopback bind.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app.js';
import { loadServeConfig, type ServeFlags } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';
import { MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTION_URI_LENGTH } from '../../src/mcp/resources.js';
import { newSecret } from '../helpers/sign.js';
import { waitFor } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';
import { newClient, silent, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function start(flags: ServeFlags = {}): Promise<RunningServer> {
  const tmp = tempDir('sem-mcp-limits-');
  cleanups.push(tmp.remove);
  const config = loadServeConfig(
    { port: '0', dataDir: tmp.dir, ...flags },
    { STRIPE_WEBHOOK_SECRET: newSecret() },
  );
  const server = await startServer(config, { logger: silent, notice: () => {} });
  cleanups.push(() => server.close());
  return server;
}

interface Listening {
  client: Client;
  transport: StreamableHTTPClientTransport;
  sessionId: string;
}

/** The SDK client over Streamable HTTP; resolves once its GET event stream is open. */
async function listen(server: RunningServer): Promise<Listening> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
  const client = newClient('limits-test');
  // An evicted client's event stream ends and its reconnection is refused (404): expected here.
  client.onerror = () => {};
  await client.connect(transport);
  await client.listTools();
  const sessionId = transport.sessionId!;
  await waitFor(() => server.mcp.hasEventStream(sessionId), 'the GET event stream');
  cleanups.push(() => client.close());
  return { client, transport, sessionId };
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'flood', version: '1.0.0' },
  },
});
const PING = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' });

/** One POST to /mcp, as a client that initializes and then never comes back would send it. */
async function post(
  server: RunningServer,
  body: string,
  sessionId?: string,
): Promise<{ status: number; sessionId: string | null; text: string }> {
  const res = await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    },
    body,
  });
  return {
    status: res.status,
    sessionId: res.headers.get('mcp-session-id'),
    text: await res.text(),
  };
}

async function idleSession(server: RunningServer): Promise<string> {
  const res = await post(server, INITIALIZE);
  expect(res.status, res.text).toBe(200);
  return res.sessionId!;
}

/** The error a request of an evicted SDK client ends with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('the request unexpectedly succeeded');
}

describe('MCP session cap (--mcp-max-sessions)', () => {
  it('at the cap, closes the least recently used idle session for a new client; it gets 404 and may initialize again', async () => {
    const server = await start({ mcpMaxSessions: '3' });
    const listener = await listen(server);
    const oldest = await idleSession(server);
    const newer = await idleSession(server);
    expect(server.mcp.sessionCount).toBe(3);

    // The listener is the oldest session, but its event stream is open: the oldest idle one goes.
    const arrival = await listen(server);
    expect(server.mcp.sessionCount).toBe(3);
    const gone = await post(server, PING, oldest);
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.text).error).toMatchObject({
      code: -32001,
      message: expect.stringMatching(/Session not found.*initialize/),
    });
    expect((await post(server, PING, newer)).status).toBe(200);
    expect((await listener.client.listTools()).tools.length).toBeGreaterThan(0);
    expect((await arrival.client.listTools()).tools.length).toBeGreaterThan(0);

    // The evicted client starts over, as the spec tells a client that gets 404.
    const again = await idleSession(server);
    expect((await post(server, PING, again)).status).toBe(200);
    expect(server.mcp.sessionCount).toBe(3);
    expect((await post(server, PING, newer)).status).toBe(404);
  });

  it('when every session listens, the least recently used one gives way: its stream ends and its next request gets 404', async () => {
    const server = await start({ mcpMaxSessions: '2' });
    const a = await listen(server);
    const b = await listen(server);
    await a.client.listTools(); // a is now more recently used than b

    const c = await listen(server);
    expect(server.mcp.sessionCount).toBe(2);
    await waitFor(() => !server.mcp.hasEventStream(b.sessionId), "b's event stream to end");
    const error = await rejection(b.client.listTools());
    expect(error).toBeInstanceOf(StreamableHTTPError);
    expect((error as StreamableHTTPError).code).toBe(404);
    expect((await a.client.listTools()).tools.length).toBeGreaterThan(0);
    expect((await c.client.listTools()).tools.length).toBeGreaterThan(0);

    // A new session for b's user: it gets in, and the session count stays at the cap.
    const b2 = await listen(server);
    expect((await b2.client.listTools()).tools.length).toBeGreaterThan(0);
    expect(server.mcp.sessionCount).toBe(2);
  });

  it('a flood of initializations stays within the cap, and a real client still gets in', async () => {
    const server = await start({ mcpMaxSessions: '5' });
    let most = 0;
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all([1, 2, 3, 4].map(() => post(server, INITIALIZE)));
      for (const answer of answers) expect(answer.status, answer.text).toBe(200);
      most = Math.max(most, server.mcp.sessionCount);
    }
    expect(most).toBe(5);
    const client = await listen(server);
    expect((await client.client.listTools()).tools.length).toBeGreaterThan(0);
    expect(server.mcp.sessionCount).toBe(5);
  });

  it('rejects a bad --mcp-max-sessions with a ConfigError naming it', () => {
    for (const value of ['0', 'many', '1.5', '100001']) {
      expect(() => loadServeConfig({ mcpMaxSessions: value }, {})).toThrow(ConfigError);
      expect(() => loadServeConfig({ mcpMaxSessions: value }, {})).toThrow(/--mcp-max-sessions/);
    }
    expect(loadServeConfig({}, {}).mcpMaxSessions).toBe(1000);
  });
});

describe('MCP subscription limits', () => {
  it(`takes at most ${MAX_SUBSCRIPTIONS} subscriptions per session, of URIs up to ${MAX_SUBSCRIPTION_URI_LENGTH} characters, and says so`, async () => {
    const server = await start();
    const { client } = await listen(server);
    const longest = `stripe-events://events/evt_${'x'.repeat(MAX_SUBSCRIPTION_URI_LENGTH - 27)}`;
    expect(longest).toHaveLength(MAX_SUBSCRIPTION_URI_LENGTH);
    await client.subscribeResource({ uri: longest });

    const tooLong = await rejection(client.subscribeResource({ uri: `${longest}y` }));
    expect(tooLong).toBeInstanceOf(McpError);
    expect((tooLong as McpError).code).toBe(ErrorCode.InvalidParams);
    expect((tooLong as McpError).message).toMatch(/513 characters long.*at most 512 characters/);

    await client.subscribeResource({ uri: 'stripe-events://pending' });
    for (let i = 2; i < MAX_SUBSCRIPTIONS; i++) {
      await client.subscribeResource({ uri: `stripe-events://events/evt_${i}` });
    }
    const tooMany = await rejection(
      client.subscribeResource({ uri: 'stripe-events://events/evt_one_more' }),
    );
    expect(tooMany).toBeInstanceOf(McpError);
    expect((tooMany as McpError).code).toBe(ErrorCode.InvalidParams);
    expect((tooMany as McpError).message).toMatch(/already has 100 subscriptions.*Unsubscribe/);

    // Subscribing again to a URI it holds is no new subscription; unsubscribing makes room.
    await client.subscribeResource({ uri: 'stripe-events://pending' });
    await client.unsubscribeResource({ uri: 'stripe-events://events/evt_2' });
    await client.subscribeResource({ uri: 'stripe-events://events/evt_one_more' });
    // Other sessions have limits of their own.
    const other = await listen(server);
    await other.client.subscribeResource({ uri: 'stripe-events://events/evt_one_more_again' });
  });

  it('keeps memory bounded under a hundred 100 KB subscriptions', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const server = await start();
    const { client } = await listen(server);
    const heap = () => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    const subscribe = async (n: number) => {
      let refused = 0;
      for (let i = 0; i < n; i++) {
        const uri = `stripe-events://events/evt_${i}_${'a'.repeat(100_000)}`;
        try {
          await client.subscribeResource({ uri });
        } catch (error) {
          if (!(error instanceof McpError)) throw error;
          refused += 1;
        }
      }
      return refused;
    };
    await subscribe(10); // code paths warmed before measuring
    const before = heap();
    const refused = await subscribe(100);
    const grown = heap() - before;
    // Stored, they would be 10 MB; refused, nothing of them stays.
    expect(grown, `heap grew ${Math.round(grown / 1024)} KB`).toBeLessThan(4 * 1024 * 1024);
    expect(refused).toBe(100);
  });
});

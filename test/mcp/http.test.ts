import http from 'node:http';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app.js';
import { loadServeConfig, type ServeFlags } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';
import { assertMcpAccess, MIN_TOKEN_LENGTH } from '../../src/mcp/http.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { startFakeStripe } from '../helpers/fake-stripe.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { killLeftovers, runCli, waitFor } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';
import {
  call,
  callError,
  hostileDispute,
  Inbox,
  incoming,
  INJECTION,
  newClient,
  onlyInsideFences,
  silent,
  type Cleanups,
  type Connected,
} from './helpers.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killLeftovers();
});

interface Started {
  server: RunningServer;
  url: string;
  secret: string;
}

async function start(
  env: Record<string, string> = {},
  flags: ServeFlags = {},
  overrides: { mcpSessionIdleMs?: number } = {},
): Promise<Started> {
  const tmp = tempDir('sem-mcp-http-');
  cleanups.push(tmp.remove);
  const secret = newSecret();
  const config = loadServeConfig(
    { port: '0', dataDir: tmp.dir, ...flags },
    { STRIPE_WEBHOOK_SECRET: secret, ...env },
  );
  const server = await startServer(
    { ...config, ...overrides },
    { logger: silent, notice: () => {} },
  );
  cleanups.push(() => server.close());
  return { server, url: server.url, secret };
}

interface HttpConnected extends Connected {
  sessionId: string;
}

/** The SDK client over Streamable HTTP; resolves once its GET event stream is open. */
async function connectHttp(
  s: Started,
  headers: Record<string, string> = {},
): Promise<HttpConnected> {
  const transport = new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
    requestInit: { headers },
  });
  const client = newClient('http-test');
  const inbox = new Inbox(client);
  await client.connect(transport);
  await client.listTools();
  const sessionId = transport.sessionId!;
  await waitFor(() => s.server.mcp.hasEventStream(sessionId), 'the GET event stream');
  const close = async () => {
    await client.close();
  };
  cleanups.push(close);
  return { client, inbox, close, sessionId };
}

async function sendEvent(s: Started, payload: string) {
  const res = await postWebhook(s.url, payload, {
    'stripe-signature': signatureHeader(payload, s.secret),
  });
  expect(res.status).toBe(200);
  return res.body as { status: string; id: string };
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'raw', version: '1.0.0' },
  },
});

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with full control of the headers (Host included), read to the end. */
function raw(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...options.headers,
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(
      options.body ??
        (options.method === 'GET' || options.method === 'DELETE' ? undefined : INITIALIZE),
    );
  });
}

describe('MCP over Streamable HTTP at /mcp (real server on port 0)', () => {
  it('serves every tool, resource and prompt, and ack removes an event from pending', async () => {
    const s = await start();
    const { client, sessionId } = await connectHttp(s);
    const dispute = JSON.parse(hostileDispute().payload) as { id: string };
    const refund = incoming('charge.refunded');
    expect(await sendEvent(s, JSON.stringify(dispute))).toMatchObject({ status: 'queued' });
    expect(await sendEvent(s, refund.payload)).toMatchObject({ status: 'queued' });

    const list = await call(client, 'list_pending_events');
    expect(list.total_pending).toBe(2);
    expect(list.events.map((e: any) => e.tool_call.name)).toEqual(['handle_dispute', 'log_refund']);
    expect(onlyInsideFences(JSON.stringify(list._result), INJECTION)).toBe(true);

    const got = await call(client, 'get_event', { id: dispute.id, include_event: true });
    expect(got).toMatchObject({ id: dispute.id, status: 'pending', event: { id: dispute.id } });
    expect(onlyInsideFences(JSON.stringify(got._result), INJECTION)).toBe(true);

    expect(await call(client, 'get_queue_status')).toMatchObject({
      counts: { pending: 2 },
      by_type: { 'charge.dispute.created': 1, 'charge.refunded': 1 },
    });
    expect(await call(client, 'nack_event', { id: refund.id, reason: 'later' })).toMatchObject({
      status: 'pending',
      attempts: 1,
    });
    expect(await call(client, 'ack_event', { id: dispute.id })).toEqual({
      id: dispute.id,
      status: 'acked',
      _result: expect.anything(),
    });
    // Over HTTP, who asks is the MCP session.
    expect((await call(client, 'get_event', { id: dispute.id })).history.at(-1)).toMatchObject({
      kind: 'acked',
      by: `mcp:${sessionId}`,
    });
    const after = await call(client, 'list_pending_events');
    expect(after.events.map((e: any) => e.id)).toEqual([refund.id]);
    expect(await callError(client, 'ack_event', { id: 'evt_unknown' })).toMatch(/No event/);

    const pending = await client.readResource({ uri: 'stripe-events://pending' });
    expect(JSON.parse((pending.contents[0] as { text: string }).text).events).toHaveLength(1);
    const one = await client.readResource({ uri: `stripe-events://events/${dispute.id}` });
    const body = JSON.parse((one.contents[0] as { text: string }).text);
    expect(body).toMatchObject({ id: dispute.id, status: 'acked' });
    expect(onlyInsideFences(JSON.stringify(one), INJECTION)).toBe(true);
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toContain(`stripe-events://events/${refund.id}`);

    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual(['pending_summary', 'triage_event']);
    const triage = await client.getPrompt({
      name: 'triage_event',
      arguments: { event_id: refund.id },
    });
    expect((triage.messages[0]!.content as { text: string }).text).toContain('log_refund');
  });

  it('notifies every subscribed session of a signed webhook event, and no unsubscribed one', async () => {
    const s = await start();
    const a = await connectHttp(s);
    const b = await connectHttp(s);
    const quiet = await connectHttp(s);
    await a.client.subscribeResource({ uri: 'stripe-events://pending' });
    await b.client.subscribeResource({ uri: 'stripe-events://pending' });
    expect(s.server.mcp.sessionCount).toBe(3);

    const e = incoming('customer.subscription.deleted');
    await sendEvent(s, e.payload);
    for (const session of [a, b]) {
      await waitFor(
        () => session.inbox.updated.includes('stripe-events://pending'),
        'notifications/resources/updated',
      );
      await waitFor(
        () =>
          session.inbox
            .logText()
            .includes(`${e.id} customer.subscription.deleted queued → churn_outreach`),
        'the log line naming the event and its tool',
      );
    }
    await waitFor(() => quiet.inbox.logText().includes(e.id), 'the log line, unsubscribed');
    expect(quiet.inbox.updated).toEqual([]);

    // An ack through one session reaches the others' subscriptions.
    const seen = b.inbox.updated.length;
    await call(a.client, 'ack_event', { id: e.id });
    await waitFor(() => b.inbox.updated.length > seen, 'update after the ack');
    expect(quiet.inbox.updated).toEqual([]);
  });

  it('honours logging/setLevel per HTTP session', async () => {
    const s = await start();
    const loud = await connectHttp(s);
    const picky = await connectHttp(s);
    await picky.client.setLoggingLevel('error');
    const e = incoming('charge.refunded');
    await sendEvent(s, e.payload);
    await waitFor(() => loud.inbox.logText().includes(e.id), 'the info line in the loud session');
    const f = incoming('charge.refunded');
    await sendEvent(s, f.payload);
    await waitFor(() => loud.inbox.logText().includes(f.id), 'the second info line');
    expect(picky.inbox.logs).toEqual([]);
  });

  it('holds many concurrent sessions, each with its own subscriptions', async () => {
    const s = await start();
    const sessions = await Promise.all(Array.from({ length: 12 }, () => connectHttp(s)));
    const subscribed = sessions.filter((_, i) => i % 2 === 0);
    await Promise.all(
      subscribed.map((c) => c.client.subscribeResource({ uri: 'stripe-events://pending' })),
    );
    await sendEvent(s, incoming('charge.dispute.closed').payload);
    for (const c of subscribed) {
      await waitFor(() => c.inbox.updated.length > 0, 'an update in each subscribed session');
    }
    const others = sessions.filter((_, i) => i % 2 === 1);
    for (const c of others) await waitFor(() => c.inbox.logs.length > 0, 'log lines');
    expect(others.every((c) => c.inbox.updated.length === 0)).toBe(true);
    expect(s.server.mcp.sessionCount).toBe(12);
  });

  it('requires the bearer token when MCP_AUTH_TOKEN is set (401 with WWW-Authenticate)', async () => {
    const token = 'test-token-0123456789abcdef';
    const s = await start({ MCP_AUTH_TOKEN: token });
    const none = await raw(`${s.url}/mcp`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer realm="stripe-events-mcp"$/);
    expect(JSON.parse(none.body).error.message).toMatch(/Authorization: Bearer/);
    const wrong = await raw(`${s.url}/mcp`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    // The webhook does not take the MCP token: it is verified by signature.
    expect((await sendEvent(s, incoming('charge.refunded').payload)).status).toBe('queued');

    const { client } = await connectHttp(s, { authorization: `Bearer ${token}` });
    expect((await call(client, 'get_queue_status')).counts.pending).toBe(1);
  });

  it('refuses a foreign Origin or Host (403) and accepts localhost ones', async () => {
    const s = await start();
    const port = new URL(s.url).port;
    const evilOrigin = await raw(`${s.url}/mcp`, { headers: { origin: 'http://evil.example' } });
    expect(evilOrigin.status).toBe(403);
    expect(JSON.parse(evilOrigin.body).error.message).toMatch(/Origin "http:\/\/evil.example"/);
    const evilHost = await raw(`${s.url}/mcp`, { headers: { host: `evil.example:${port}` } });
    expect(evilHost.status).toBe(403);
    expect(JSON.parse(evilHost.body).error.message).toMatch(/DNS rebinding/);
    expect((await raw(`${s.url}/mcp`, { headers: { origin: 'null' } })).status).toBe(403);

    for (const origin of [
      `http://localhost:${port}`,
      'http://127.0.0.1:6274',
      'http://[::1]:3000',
    ]) {
      const ok = await raw(`${s.url}/mcp`, { headers: { origin } });
      expect(ok.status, origin).toBe(200);
      expect(ok.headers['mcp-session-id']).toBeTruthy();
    }
    const localHost = await raw(`${s.url}/mcp`, { headers: { host: `localhost:${port}` } });
    expect(localHost.status).toBe(200);
    // No Origin at all (every non-browser client) is fine.
    expect((await raw(`${s.url}/mcp`)).status).toBe(200);
  });

  it('accepts an origin listed in MCP_ALLOWED_ORIGINS', async () => {
    const s = await start({ MCP_ALLOWED_ORIGINS: 'https://console.example.com' });
    const ok = await raw(`${s.url}/mcp`, { headers: { origin: 'https://console.example.com' } });
    expect(ok.status).toBe(200);
  });

  it('answers 404 for an unknown or ended session, and DELETE ends one', async () => {
    const s = await start();
    const unknown = await raw(`${s.url}/mcp`, {
      headers: { 'mcp-session-id': 'no-such-session' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
    });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error.code).toBe(-32001);

    const init = await raw(`${s.url}/mcp`);
    const sessionId = init.headers['mcp-session-id'] as string;
    expect(s.server.mcp.sessionCount).toBe(1);
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' });
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' };
    expect((await raw(`${s.url}/mcp`, { headers, body: ping })).status).toBe(200);
    expect((await raw(`${s.url}/mcp`, { method: 'DELETE', headers })).status).toBe(200);
    expect(s.server.mcp.sessionCount).toBe(0);
    expect((await raw(`${s.url}/mcp`, { headers, body: ping })).status).toBe(404);

    const noSession = await raw(`${s.url}/mcp`, { body: ping });
    expect(noSession.status).toBe(400);
    expect(JSON.parse(noSession.body).error.message).toMatch(/initialize/);
    expect((await raw(`${s.url}/mcp`, { method: 'PUT', body: ping })).status).toBe(405);
    const notJson = await raw(`${s.url}/mcp`, { body: '{"jsonrpc": ' });
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.body).error.code).toBe(-32700);
  });

  it('closes idle sessions', async () => {
    const s = await start({}, {}, { mcpSessionIdleMs: 200 });
    const init = await raw(`${s.url}/mcp`);
    expect(init.status).toBe(200);
    expect(s.server.mcp.sessionCount).toBe(1);
    await waitFor(() => s.server.mcp.sessionCount === 0, 'the idle session to be closed');
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' });
    const again = await raw(`${s.url}/mcp`, {
      headers: { 'mcp-session-id': init.headers['mcp-session-id'] as string },
      body: ping,
    });
    expect(again.status).toBe(404);
  });

  it('keeps a session with an open event stream, and closes all sessions on shutdown', async () => {
    const s = await start({}, {}, { mcpSessionIdleMs: 200 });
    const c = await connectHttp(s);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(s.server.mcp.hasEventStream(c.sessionId)).toBe(true);
    expect(s.server.mcp.sessionCount).toBe(1);
    await s.server.close();
    expect(s.server.mcp.sessionCount).toBe(0);
  });

  it('with --enrich, get_event, the event resource and triage_event show the looked-up facts', async () => {
    const dispute = buildTestEvent('charge.dispute.created');
    const charge = (dispute.data as { object: { charge: string } }).object.charge;
    const api = await startFakeStripe({
      objects: { [charge]: { id: charge, object: 'charge', customer: 'cus_from_the_charge' } },
    });
    cleanups.push(() => api.close());
    const s = await start(
      { STRIPE_SECRET_KEY: api.key, STRIPE_API_BASE: api.url },
      { enrich: true, backfillOnStart: false },
    );
    const { id } = await sendEvent(s, JSON.stringify(dispute));
    const { client } = await connectHttp(s);
    const shown = await call(client, 'get_event', { id });
    expect(shown.tool_call.input.customer).toBe('cus_from_the_charge');
    const resource = await client.readResource({ uri: `stripe-events://events/${id}` });
    const text = (resource.contents[0] as { text: string }).text;
    expect(JSON.parse(text).tool_call.input.customer).toBe('cus_from_the_charge');
    const prompt = await client.getPrompt({ name: 'triage_event', arguments: { event_id: id } });
    expect((prompt.messages[0]!.content as { text: string }).text).toContain(
      'customer: cus_from_the_charge',
    );
    // One lookup, cached for all three.
    expect(api.requests.filter((r) => r.path === `/v1/charges/${charge}`)).toHaveLength(1);

    // Without --enrich the dispute's tool call names no customer (a dispute carries none).
    const plain = await start({}, {});
    const again = await sendEvent(plain, JSON.stringify(dispute));
    const other = await connectHttp(plain);
    expect((await call(other.client, 'get_event', { id: again.id })).tool_call.input.customer).toBe(
      null,
    );
  });

  it('keeps the webhook route on raw bytes (no JSON parser before the signature check)', async () => {
    const s = await start();
    const e = incoming('charge.refunded');
    // Whitespace a JSON parser would drop: the signature covers the bytes as sent.
    const pretty = JSON.stringify(JSON.parse(e.payload), null, 3);
    expect(await sendEvent(s, pretty)).toMatchObject({ status: 'queued', id: e.id });
    expect((await s.server.buffer.get(e.id))?.payload).toBe(pretty);
  });

  it('refuses to start on a non-loopback host without MCP_AUTH_TOKEN (exit 2)', async () => {
    const tmp = tempDir('sem-mcp-http-');
    cleanups.push(tmp.remove);
    const config = loadServeConfig({ port: '0', dataDir: tmp.dir, host: '0.0.0.0' }, {});
    const error = await startServer(config, { logger: silent, notice: () => {} }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe('MCP_AUTH_TOKEN');

    const cli = await runCli(['serve', '--host', '0.0.0.0', '--port', '0', '--data-dir', tmp.dir]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/MCP_AUTH_TOKEN: is required when --host \/ HOST is "0.0.0.0"/);
    expect(cli.stderr).toMatch(/Fix:/);
  });

  it('refuses a MCP_AUTH_TOKEN shorter than 32 characters off loopback (exit 2 naming it), allows it on loopback', async () => {
    const tmp = tempDir('sem-mcp-http-');
    cleanups.push(tmp.remove);
    const short = 'x'.repeat(MIN_TOKEN_LENGTH - 1);
    expect(MIN_TOKEN_LENGTH).toBe(32);
    const config = loadServeConfig(
      { port: '0', dataDir: tmp.dir, host: '0.0.0.0' },
      { MCP_AUTH_TOKEN: short },
    );
    // Refused before anything binds: nothing listens on 0.0.0.0, nothing leaves this machine.
    const error = await startServer(config, { logger: silent, notice: () => {} }).then(
      (started) => {
        cleanups.push(() => started.close());
        return null;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe('MCP_AUTH_TOKEN');

    for (const host of ['0.0.0.0', '::']) {
      const cli = await runCli(['serve', '--host', host, '--port', '0', '--data-dir', tmp.dir], {
        env: { MCP_AUTH_TOKEN: short },
        timeoutMs: 20_000,
      });
      expect(cli.code, host).toBe(2);
      expect(cli.stderr).toMatch(
        new RegExp(`MCP_AUTH_TOKEN: is 31 characters long, and --host / HOST is "${host}"`),
      );
      expect(cli.stderr).toMatch(/at least 32 characters\. Fix: .*openssl rand -hex 32/);
      expect(cli.stderr).not.toContain(short);
      expect(cli.stderr).not.toMatch(/"msg":"listening"/);
    }

    // 32 characters are enough off loopback (checked in-process, refused only later if at all).
    expect(() =>
      assertMcpAccess({ host: '0.0.0.0', mcpAuthToken: 'x'.repeat(MIN_TOKEN_LENGTH) }),
    ).not.toThrow();
    // On loopback a short token still starts, and guards /mcp as before.
    const s = await start({ MCP_AUTH_TOKEN: 'short' });
    expect((await raw(`${s.url}/mcp`)).status).toBe(401);
    expect((await raw(`${s.url}/mcp`, { headers: { authorization: 'Bearer short' } })).status).toBe(
      200,
    );
  });
});

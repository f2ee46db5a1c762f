import { spawn } from 'node:child_process';
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, describe, expect, it } from 'vitest';
import { readDevSecret } from '../../src/config/data-dir.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import {
  CLI,
  DEADLINE_MS,
  jsonLines,
  killLeftovers,
  startServe,
  waitFor,
} from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';
import {
  call,
  freePort,
  hostileDispute,
  Inbox,
  incoming,
  INJECTION,
  newClient,
  onlyInsideFences,
  textOf,
  type Cleanups,
  type Connected,
} from './helpers.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killLeftovers();
});

interface StdioSession extends Connected {
  stderr(): string;
  /** The webhook URL when this process holds the port; null when it attached. */
  webhook: string | null;
  pid: number;
}

function dataDir(): string {
  const tmp = tempDir('sem-mcp-stdio-');
  cleanups.push(tmp.remove);
  return tmp.dir;
}

/**
 * Spawns the built binary the way Claude Desktop does (`cwd: '/'`, a minimal environment) and
 * connects the SDK client over its stdin/stdout.
 */
async function startStdio(
  dir: string,
  options: { port?: number; secret?: string } = {},
): Promise<StdioSession> {
  const env: Record<string, string> = {
    ...getDefaultEnvironment(),
    STRIPE_EVENTS_DATA_DIR: dir,
    LOG_LEVEL: 'info',
  };
  if (options.secret) env.STRIPE_WEBHOOK_SECRET = options.secret;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'stdio', '--port', String(options.port ?? 0)],
    cwd: '/',
    env,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const client = newClient('stdio-test');
  const inbox = new Inbox(client);
  await client.connect(transport);
  await client.listTools();
  const ready = await waitFor(
    () => jsonLines(stderr).find((r) => r.msg === 'mcp stdio session ready'),
    'the stdio session to be ready',
  );
  const close = async () => {
    await client.close();
  };
  cleanups.push(close);
  return {
    client,
    inbox,
    close,
    stderr: () => stderr,
    webhook: typeof ready.webhook === 'string' ? ready.webhook : null,
    pid: transport.pid!,
  };
}

async function post(webhook: string, payload: string, secret: string) {
  const res = await postWebhook(webhook.replace(/\/stripe\/webhook$/, ''), payload, {
    'stripe-signature': signatureHeader(payload, secret),
  });
  expect(res.status).toBe(200);
  return res.body as { status: string; id: string };
}

describe('MCP over stdio (the built binary, spawned in /)', () => {
  it('serves the tools, resources and prompts, receives webhooks, and notifies', async () => {
    const secret = newSecret();
    const s = await startStdio(dataDir(), { secret });
    expect(s.webhook).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/stripe\/webhook$/);
    const { tools } = await s.client.listTools();
    expect(tools).toHaveLength(14);
    await s.client.subscribeResource({ uri: 'stripe-events://pending' });

    const e = hostileDispute();
    expect(await post(s.webhook!, e.payload, secret)).toMatchObject({ status: 'queued' });
    await waitFor(() => s.inbox.updated.includes('stripe-events://pending'), 'resources/updated');
    await waitFor(
      () => s.inbox.logText().includes(`${e.id} charge.dispute.created queued → handle_dispute`),
      'the log line',
    );

    const list = await call(s.client, 'list_pending_events');
    expect(list.events.map((x: any) => x.id)).toEqual([e.id]);
    expect(onlyInsideFences(JSON.stringify(list._result), INJECTION)).toBe(true);
    const got = await call(s.client, 'get_event', { id: e.id });
    expect(got.tool_call.name).toBe('handle_dispute');
    expect((await call(s.client, 'get_queue_status')).counts.pending).toBe(1);
    const read = await s.client.readResource({ uri: `stripe-events://events/${e.id}` });
    expect(onlyInsideFences(JSON.stringify(read), INJECTION)).toBe(true);
    const prompt = await s.client.getPrompt({
      name: 'triage_event',
      arguments: { event_id: e.id },
    });
    expect(onlyInsideFences(JSON.stringify(prompt), INJECTION)).toBe(true);

    await call(s.client, 'ack_event', { id: e.id, note: 'accepted the dispute' });
    expect((await call(s.client, 'list_pending_events')).events).toEqual([]);
    // Logs went to stderr as JSON lines, never to stdout (the client would have choked).
    expect(jsonLines(s.stderr()).some((r) => r.msg === 'listening')).toBe(true);
  });

  it("a second process on the same port attaches to the store and is notified of the first one's events", async () => {
    const secret = newSecret();
    const dir = dataDir();
    const port = await freePort();
    const first = await startStdio(dir, { port, secret });
    expect(first.webhook).toBe(`http://127.0.0.1:${port}/stripe/webhook`);
    const second = await startStdio(dir, { port, secret });
    expect(second.webhook).toBeNull();
    expect(second.stderr()).toMatch(/is in use .*attached to the store/);
    await second.client.subscribeResource({ uri: 'stripe-events://pending' });
    await first.client.subscribeResource({ uri: 'stripe-events://pending' });

    const e = incoming('invoice.payment_failed');
    await post(first.webhook!, e.payload, secret);
    await waitFor(
      () => second.inbox.updated.includes('stripe-events://pending'),
      'the attached process to be notified',
    );
    await waitFor(
      () =>
        second.inbox
          .logText()
          .includes(
            'another process changed the queue: +1 pending invoice.payment_failed → retry_failed_payment',
          ),
      'a log line naming the type and tool',
    );
    const list = await call(second.client, 'list_pending_events');
    expect(list.events.map((x: any) => x.id)).toEqual([e.id]);

    // An ack in the attached process reaches the first one the same way.
    const seen = first.inbox.updated.length;
    await call(second.client, 'ack_event', { id: e.id });
    await waitFor(() => first.inbox.updated.length > seen, 'the first process to hear the ack');
    expect((await call(first.client, 'get_event', { id: e.id })).status).toBe('acked');
  });
});

describe('the queue policy is stored with the queue', () => {
  it('stdio attached to `serve --max-attempts 2` follows it: two nack_event calls make an event dead', async () => {
    const secret = newSecret();
    const dir = dataDir();
    const port = await freePort();
    const serve = await startServe({
      dataDir: dir,
      env: { STRIPE_WEBHOOK_SECRET: secret },
      args: ['--port', String(port), '--max-attempts', '2'],
    });
    cleanups.push(async () => void (await serve.stop()));
    const attached = await startStdio(dir, { port, secret });
    expect(attached.webhook).toBeNull();

    const status = await call(attached.client, 'get_queue_status');
    expect(status.policy).toEqual({ max_attempts: 2, retry_base_seconds: 30 });
    expect(textOf(status._result)).toMatch(/dead after 2 failed attempts/);

    const e = incoming('invoice.payment_failed');
    expect(await post(serve.webhookUrl, e.payload, secret)).toMatchObject({ status: 'queued' });
    const first = await call(attached.client, 'nack_event', { id: e.id, reason: 'card declined' });
    expect(first).toMatchObject({ status: 'pending', attempts: 1 });
    const second = await call(attached.client, 'nack_event', {
      id: e.id,
      reason: 'declined again',
    });
    expect(second).toMatchObject({ status: 'dead', attempts: 2 });
    // Who nacked is in the history, as for every change a person makes.
    const got = await call(attached.client, 'get_event', { id: e.id });
    expect(got.history.at(-1)).toMatchObject({ kind: 'dead', by: expect.stringMatching(/^mcp:/) });
  });
});

describe('stdio stdout hygiene and shutdown', () => {
  it('writes nothing but JSON-RPC to stdout, then exits 0 when stdin closes', async () => {
    const dir = dataDir();
    // No STRIPE_WEBHOOK_SECRET: the dev-secret banner is printed too, and must go to stderr.
    const child = spawn(process.execPath, [CLI, 'stdio', '--port', '0', '--data-dir', dir], {
      cwd: '/',
      env: { ...getDefaultEnvironment(), LOG_LEVEL: 'debug' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const send = (message: unknown) => child.stdin.write(JSON.stringify(message) + '\n');
    const responses = () =>
      stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, any>);

    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'raw-lines', version: '1.0.0' },
      },
    });
    await waitFor(() => responses().some((m) => m.id === 1), 'the initialize response');
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    send({
      jsonrpc: '2.0',
      id: 3,
      method: 'resources/subscribe',
      params: { uri: 'stripe-events://pending' },
    });
    send({ jsonrpc: '2.0', id: 4, method: 'logging/setLevel', params: { level: 'debug' } });
    send({ jsonrpc: '2.0', id: 5, method: 'no/such/method' });
    send({
      jsonrpc: '2.0',
      id: 6,
      method: 'tools/call',
      params: { name: 'get_event', arguments: {} },
    });
    await waitFor(() => responses().some((m) => m.id === 6), 'the responses');

    const listening = await waitFor(
      () => jsonLines(stderr).find((r) => r.msg === 'listening'),
      'the listening line',
    );
    const secret = readDevSecret(dir)!;
    expect(stderr).toContain(secret);
    const e = incoming('charge.refunded');
    await postWebhook(listening.url as string, e.payload, {
      'stripe-signature': signatureHeader(e.payload, secret),
    });
    await waitFor(
      () => responses().some((m) => m.method === 'notifications/resources/updated'),
      'the update notification on stdout',
    );
    await waitFor(
      () => responses().some((m) => m.method === 'notifications/message'),
      'the log notification on stdout',
    );
    child.stdin.end();
    expect(await Promise.race([exited, deadline()])).toBe(0);

    const lines = stdout.split('\n');
    expect(lines.at(-1)).toBe('');
    for (const line of lines.slice(0, -1)) {
      const message = JSON.parse(line) as Record<string, unknown>;
      expect(message.jsonrpc, line).toBe('2.0');
      expect('id' in message || 'method' in message, line).toBe(true);
    }
    const byId = new Map(responses().map((m) => [m.id, m]));
    expect(byId.get(2)?.result.tools).toHaveLength(14);
    expect(byId.get(5)?.error.code).toBe(-32601);
    expect(byId.get(6)?.result.isError).toBe(true);
    expect(stdout).not.toContain(secret);
    expect(stderr).toMatch(/stdin closed: shutting down/);
    expect(jsonLines(stderr).some((r) => r.msg === 'stopped')).toBe(true);
  });

  it('shuts down in order on SIGTERM', async () => {
    const dir = dataDir();
    const s = await startStdio(dir, { secret: newSecret() });
    process.kill(s.pid, 'SIGTERM');
    await waitFor(() => jsonLines(s.stderr()).some((r) => r.msg === 'stopped'), 'stopped');
    const messages = jsonLines(s.stderr()).map((r) => r.msg);
    expect(messages.indexOf('shutting down')).toBeLessThan(messages.indexOf('stopped'));
  });
});

function deadline(): Promise<never> {
  return new Promise((_, reject) =>
    setTimeout(() => reject(new Error('the stdio server did not exit')), DEADLINE_MS),
  );
}

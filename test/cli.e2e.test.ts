/**
 * End-to-end tests of the built CLI (dist/cli.js): real processes, real HTTP, real SQLite files,
 * events signed with stripe-node. Nothing of the project is mocked.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { afterEach, describe, expect, it } from 'vitest';
import { cliActor } from '../src/cli/actor.js';
import { openSqliteBuffer } from '../src/buffer/sqlite/store.js';
import { parseSince } from '../src/ingress/backfill.js';
import { buildTestEvent } from '../src/stripe/fixtures.js';
import {
  fileMode,
  REPO_ROOT,
  killLeftovers,
  runCli,
  startServe,
  type CliResult,
  type EnvOverrides,
} from './helpers/spawn.js';
import { tempDir } from './helpers/tmp.js';
import { sinkServer, type Cleanups } from './helpers/e2e.js';

// ---------------------------------------------------------------------------
// Fixtures and plumbing.

const removals: Array<() => void> = [];
/** Servers a test started (the dispatch sink), closed after it. */
const cleanups: Cleanups = [];

/** A fresh temp directory, removed after the test (once its processes are gone). */
function tmp(): string {
  const t = tempDir('sem-e2e-');
  removals.push(t.remove);
  return t.dir;
}

afterEach(async () => {
  await killLeftovers();
  for (const fn of cleanups.splice(0).reverse()) await fn();
  for (const remove of removals.splice(0)) remove();
});

function randomSecret(): string {
  return `whsec_${randomBytes(24).toString('base64url')}`;
}

interface Signed {
  id: string;
  payload: string;
  header: string;
}

/** A realistic event of `type`, serialized as Stripe does and signed with `secret`. */
function signedEvent(type: string, secret: string): Signed {
  const event = buildTestEvent(type);
  const payload = JSON.stringify(event, null, 2);
  return { id: String(event.id), payload, header: sign(payload, secret) };
}

function sign(payload: string, secret: string): string {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret });
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** POSTs a webhook body over node:http; rejects on a connection error or an unfinished answer. */
function postWebhook(
  webhookUrl: string,
  payload: string,
  header: string | undefined,
  agent?: http.Agent,
): Promise<Answer> {
  const url = new URL(webhookUrl);
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
    };
    if (header !== undefined) headers['stripe-signature'] = header;
    const req = http.request(
      {
        hostname: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers,
        agent,
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        let ended = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('error', reject);
        res.on('end', () => {
          ended = true;
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] });
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
        res.on('close', () => {
          if (!ended) reject(new Error('the answer was cut off'));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Runs `fn` over `items` with at most `concurrency` at a time; results in input order. */
async function mapPool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

interface ToolCall {
  name: string;
  input: Record<string, unknown>;
}

interface Summary {
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  object_id: string | null;
  status: string;
  outcome: string | null;
  attempts: number;
  tool_call: ToolCall | null;
}

interface Detail {
  event: { id: string; data: { object: Record<string, unknown> } };
  tool_call: ToolCall | null;
  status: string;
  attempts: number;
  history: { at: string; kind: string; note?: string; by?: string }[];
}

function explain(result: CliResult): string {
  return `exit ${result.code ?? result.signal}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

/** Runs a CLI command that must succeed. */
async function ok(args: readonly string[], env?: EnvOverrides): Promise<CliResult> {
  const result = await runCli(args, { env });
  expect(result.code, explain(result)).toBe(0);
  return result;
}

async function listEvents(dataDir: string, ...extra: string[]): Promise<Summary[]> {
  const result = await ok(['events', 'list', '--json', '--data-dir', dataDir, ...extra]);
  // One JSON array, on one line.
  expect(result.stdout.trim().split('\n')).toHaveLength(1);
  return JSON.parse(result.stdout) as Summary[];
}

async function showEvent(dataDir: string, id: string): Promise<Detail> {
  const result = await ok(['events', 'show', id, '--json', '--data-dir', dataDir]);
  return JSON.parse(result.stdout) as Detail;
}

/** The `HTTP <status> <body>` line `trigger` prints. */
function triggerAnswer(stdout: string): Answer {
  const m = /^HTTP (\d{3}) (.*)$/m.exec(stdout);
  if (!m) throw new Error(`no "HTTP <status>" line in trigger's output:\n${stdout}`);
  return { status: Number(m[1]), body: JSON.parse(m[2] ?? '') as Answer['body'] };
}

async function trigger(dataDir: string, url: string, ...extra: string[]): Promise<Answer> {
  const result = await ok([
    'trigger',
    'charge.dispute.created',
    '--data-dir',
    dataDir,
    '--url',
    url,
    ...extra,
  ]);
  return triggerAnswer(result.stdout);
}

/** The `trigger … --data-dir "<dir>" --url <url>` command the dev-secret banner prints. */
function printedTrigger(stderr: string): { dataDir: string; url: string } {
  const m = /trigger charge\.dispute\.created --data-dir ("(?:[^"\\]|\\.)*") --url (\S+)/.exec(
    stderr,
  );
  if (!m) throw new Error(`no ready trigger command in serve's stderr:\n${stderr}`);
  return { dataDir: JSON.parse(m[1] ?? '') as string, url: m[2] ?? '' };
}

async function healthz(
  baseUrl: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

// ---------------------------------------------------------------------------

describe('serve without STRIPE_WEBHOOK_SECRET: the dev secret', () => {
  it('creates a 0600 dev secret, prints it and a trigger command, and a restart reuses it', async () => {
    const dataDir = path.join(tmp(), 'data'); // does not exist yet: serve creates it
    const secretFile = path.join(dataDir, 'dev-webhook-secret');

    const first = await startServe({ dataDir });
    expect(fs.existsSync(secretFile)).toBe(true);
    expect(fileMode(secretFile)).toBe(0o600);
    const secret = fs.readFileSync(secretFile, 'utf8').trim();
    expect(secret).toMatch(/^whsec_\S{16,}$/);
    expect(first.stderr()).toContain(secret);
    expect(first.stderr()).toContain('it just created');
    expect(printedTrigger(first.stderr()).dataDir).toBe(dataDir);

    const answer = await trigger(dataDir, first.webhookUrl);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ received: true, status: 'queued' });
    expect(await first.stop()).toEqual({ code: 0, signal: null });

    const second = await startServe({ dataDir });
    expect(second.stderr()).toContain(secret);
    expect(second.stderr()).not.toContain('it just created');
    expect(fs.readFileSync(secretFile, 'utf8').trim()).toBe(secret);
    expect(fileMode(secretFile)).toBe(0o600);
    // The same `trigger` still signs with what the server verifies with.
    expect((await trigger(dataDir, second.webhookUrl)).body).toMatchObject({ status: 'queued' });
    expect(await second.stop()).toEqual({ code: 0, signal: null });
  });

  it('prints a trigger command that works as printed when the OS picks the port', async () => {
    const dataDir = path.join(tmp(), 'data');
    const server = await startServe({ dataDir });
    const printed = printedTrigger(server.stderr());
    expect(printed.url).toBe(server.webhookUrl);
    const answer = await trigger(printed.dataDir, printed.url);
    expect(answer.body).toMatchObject({ status: 'queued' });
  });
});

describe('trigger and the events commands beside a running server', () => {
  it('shows, lists, acks and replays a triggered event while the server runs', async () => {
    const dataDir = tmp();
    const server = await startServe({ dataDir });

    const answer = await trigger(dataDir, server.webhookUrl, '--set', 'data.object.amount=5000');
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('queued');
    const id = String(answer.body.id);
    expect(id).toMatch(/^evt_/);

    const shown = await showEvent(dataDir, id);
    expect(shown.event.id).toBe(id);
    expect(shown.event.data.object.amount).toBe(5000);
    expect(shown.tool_call?.name).toBe('handle_dispute');
    expect(shown.tool_call?.input.amount).toBe(5000);
    expect(shown.status).toBe('pending');
    expect(shown.attempts).toBe(0);

    const all = await listEvents(dataDir);
    expect(all).toHaveLength(1);
    const [summary] = all;
    expect(Object.keys(summary ?? {}).sort()).toEqual([
      'account',
      'attempts',
      'created',
      'id',
      'livemode',
      'object_id',
      'outcome',
      'status',
      'tool_call',
      'type',
    ]);
    expect(summary).toMatchObject({
      id,
      type: 'charge.dispute.created',
      livemode: false,
      status: 'pending',
      attempts: 0,
      tool_call: { name: 'handle_dispute', input: { amount: 5000 } },
    });
    expect(typeof summary?.created).toBe('number');
    expect(summary?.object_id).toMatch(/^dp_/);

    expect(await listEvents(dataDir, '--status', 'acked')).toEqual([]);

    const acked = await ok(['events', 'ack', id, '--data-dir', dataDir]);
    expect(acked.stdout).toContain('acked');
    expect((await listEvents(dataDir, '--status', 'acked')).map((s) => s.id)).toEqual([id]);
    expect(await listEvents(dataDir, '--status', 'pending')).toEqual([]);
    // The server sees the CLI's commit (WAL: two processes, one file).
    const afterAck = await healthz(server.url);
    expect(afterAck.status).toBe(200);
    expect(afterAck.body).toMatchObject({ status: 'ok', pending: 0, counts: { acked: 1 } });

    await ok(['events', 'replay', id, '--data-dir', dataDir]);
    const replayed = await showEvent(dataDir, id);
    expect(replayed.status).toBe('pending');
    expect(replayed.attempts).toBe(0);
    const kinds = replayed.history.map((h) => h.kind);
    expect(kinds).toEqual(['received', 'acked', 'replayed']);
    expect(await listEvents(dataDir, '--status', 'acked')).toEqual([]);
    expect((await listEvents(dataDir, '--status', 'pending')).map((s) => s.id)).toEqual([id]);
    const afterReplay = await healthz(server.url);
    expect(afterReplay.body).toMatchObject({ status: 'ok', pending: 1, counts: { acked: 0 } });

    // The server still takes events after the CLI wrote to its store.
    expect((await trigger(dataDir, server.webhookUrl)).body).toMatchObject({ status: 'queued' });
    expect(await listEvents(dataDir)).toHaveLength(2);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('lists amounts in their currency ($4,120.00, ¥50,000) while --json keeps the integers', async () => {
    const dataDir = tmp();
    const store = openSqliteBuffer(dataDir, {});
    const usd = buildTestEvent('charge.dispute.created');
    const jpy = buildTestEvent('charge.dispute.created');
    const amounts: [Record<string, unknown>, number, string][] = [
      [usd, 412_000, 'usd'],
      [jpy, 50_000, 'jpy'],
    ];
    for (const [event, amount, currency] of amounts) {
      const object = (event.data as { object: Record<string, unknown> }).object;
      object.amount = amount;
      object.currency = currency;
      await store.append({
        id: String(event.id),
        type: 'charge.dispute.created',
        created: Number(event.created),
        livemode: false,
        objectId: String(object.id),
        payload: JSON.stringify(event),
      });
    }
    await store.close();

    const listed = await ok(['events', 'list', '--data-dir', dataDir]);
    const lines = listed.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^ID +TYPE .* TOOL +AMOUNT$/);
    const line = (id: unknown) => lines.find((l) => l.startsWith(`${String(id)}  `)) ?? '';
    // The AMOUNT column is right-aligned: the wider amount sits against the tool's column.
    expect(line(usd.id)).toMatch(/  handle_dispute  \$4,120\.00$/);
    expect(line(jpy.id)).toMatch(/  handle_dispute    ¥50,000$/);
    expect(listed.stdout).not.toContain('412000');

    const json = await listEvents(dataDir);
    expect(json.map((s) => [s.tool_call?.input.amount, s.tool_call?.input.currency])).toEqual([
      [412_000, 'usd'],
      [50_000, 'jpy'],
    ]);
    expect(JSON.stringify(json)).not.toContain('4,120');
  });

  it('answers 200 "ignored" for a type outside the catalog and does not store it', async () => {
    const dataDir = tmp();
    const server = await startServe({ dataDir });
    const result = await ok([
      'trigger',
      'invoice.paid',
      '--data-dir',
      dataDir,
      '--url',
      server.webhookUrl,
    ]);
    const answer = triggerAnswer(result.stdout);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ received: true, status: 'ignored' });
    expect(answer.body.id).toMatch(/^evt_/);
    expect(await listEvents(dataDir)).toEqual([]);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('trigger exit codes', () => {
  it('exits 1 and prints HTTP 400 when the server refuses the signature', async () => {
    const dataDir = tmp();
    const server = await startServe({ dataDir });
    const result = await runCli([
      'trigger',
      'charge.dispute.created',
      '--secret',
      'whsec_wrong',
      '--data-dir',
      dataDir,
      '--url',
      server.webhookUrl,
    ]);
    expect(result.code, explain(result)).toBe(1);
    expect(result.stdout).toContain('HTTP 400');
    expect(triggerAnswer(result.stdout).body).toMatchObject({
      error: { code: 'invalid_signature' },
    });
    expect(await listEvents(dataDir)).toEqual([]);
  });

  it('exits 2 for an unknown event type and lists the types it knows', async () => {
    const result = await runCli(['trigger', 'no.such.type', '--data-dir', tmp()]);
    expect(result.code, explain(result)).toBe(2);
    expect(result.stderr).toContain('no.such.type');
    expect(result.stderr).toContain('charge.dispute.created');
    expect(result.stderr).toContain('invoice.payment_failed');
    expect(result.stdout).toBe('');
  });

  it('exits 1 with a clear message when nothing listens at --url', async () => {
    // Port 1, and a port that was just free (connection refused).
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    for (const url of [
      'http://127.0.0.1:1/stripe/webhook',
      `http://127.0.0.1:${closed}/stripe/webhook`,
    ]) {
      const result = await runCli([
        'trigger',
        'charge.dispute.created',
        '--secret',
        randomSecret(),
        '--data-dir',
        tmp(),
        '--url',
        url,
      ]);
      expect(result.code, explain(result)).toBe(1);
      expect(result.stderr).toContain(`cannot reach ${url}`);
      expect(result.stderr).toContain('serve');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('exits 2 naming --secret / STRIPE_WEBHOOK_SECRET when there is nothing to sign with', async () => {
    const empty = tmp();
    const result = await runCli([
      'trigger',
      'charge.dispute.created',
      '--data-dir',
      empty,
      '--url',
      'http://127.0.0.1:1/stripe/webhook',
    ]);
    expect(result.code, explain(result)).toBe(2);
    expect(result.stderr).toContain('--secret');
    expect(result.stderr).toContain('STRIPE_WEBHOOK_SECRET');
    expect(result.stderr).toContain('Fix:');
    expect(result.stdout).toBe('');
    // Asking for a secret must not make one.
    expect(fs.readdirSync(empty)).toEqual([]);
  });
});

describe('serve refuses bad configuration with exit code 2', () => {
  interface BadConfig {
    name: string;
    args: (dir: string) => string[];
    env?: EnvOverrides;
    names: string[];
    never?: string[];
  }
  const cases: BadConfig[] = [
    { name: '--port abc', args: () => ['--port', 'abc'], names: ['--port', 'PORT'] },
    { name: 'PORT=abc', args: () => [], env: { PORT: 'abc' }, names: ['--port', 'PORT'] },
    {
      name: 'STRIPE_WEBHOOK_SECRET=sk_test_…',
      args: () => ['--port', '0'],
      env: { STRIPE_WEBHOOK_SECRET: 'sk_test_123abc' },
      names: ['STRIPE_WEBHOOK_SECRET', 'whsec_'],
      never: ['sk_test_123abc'],
    },
    {
      name: 'STRIPE_WEBHOOK_SECRET=whsec_ok,notasecret',
      args: () => ['--port', '0'],
      env: { STRIPE_WEBHOOK_SECRET: 'whsec_ok,notasecret' },
      names: ['STRIPE_WEBHOOK_SECRET', 'whsec_'],
      never: ['whsec_ok', 'notasecret'],
    },
    {
      name: 'a data dir under a regular file',
      args: (dir) => {
        fs.writeFileSync(path.join(dir, 'afile'), '');
        return ['--port', '0', '--data-dir', path.join(dir, 'afile', 'sub')];
      },
      names: ['--data-dir', 'STRIPE_EVENTS_DATA_DIR'],
    },
    {
      name: '--tolerance 0',
      args: () => ['--port', '0', '--tolerance', '0'],
      names: ['--tolerance'],
    },
    { name: '--max-body 1', args: () => ['--port', '0', '--max-body', '1'], names: ['--max-body'] },
    {
      name: '--store mongo',
      args: () => ['--port', '0', '--store', 'mongo'],
      names: ['--store', 'sqlite', 'redis'],
    },
    {
      name: '--store redis with REDIS_URL=http://…',
      args: () => ['--port', '0', '--store', 'redis'],
      env: { REDIS_URL: 'http://user:hunter2@cache.internal:6379' },
      names: ['REDIS_URL', 'redis://'],
      never: ['hunter2'],
    },
    {
      name: '--log-level loud',
      args: () => ['--port', '0', '--log-level', 'loud'],
      names: ['--log-level', 'LOG_LEVEL'],
    },
  ];

  it.each(cases)('$name: one message naming the setting and a fix', async (c) => {
    const dir = tmp();
    const dataDir = path.join(dir, 'data');
    // A later --data-dir (the case's own) wins over this one.
    const result = await runCli(['serve', '--data-dir', dataDir, ...c.args(dir)], { env: c.env });
    expect(result.code, explain(result)).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^stripe-events-mcp: /);
    expect(result.stderr).toContain('Fix:');
    for (const name of c.names) expect(result.stderr).toContain(name);
    for (const secret of c.never ?? []) expect(result.stderr).not.toContain(secret);
    expect(result.stderr).not.toContain('listening');
  });

  it('an unknown flag exits 2 and names it', async () => {
    const result = await runCli(['serve', '--nope', '--port', '0', '--data-dir', tmp()]);
    expect(result.code, explain(result)).toBe(2);
    expect(result.stderr).toContain('--nope');
    expect(result.stderr).not.toContain('listening');
  });

  it('a port already in use exits 2 naming --port, without printing the secret', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = blocker.address() as net.AddressInfo;
      const secret = randomSecret();
      const result = await runCli(['serve', '--port', String(port), '--data-dir', tmp()], {
        env: { STRIPE_WEBHOOK_SECRET: secret },
      });
      expect(result.code, explain(result)).toBe(2);
      const lines = result.stderr.trim().split('\n');
      expect(lines, result.stderr).toHaveLength(1);
      expect(result.stderr).toContain('--port');
      expect(result.stderr).toContain(String(port));
      expect(result.stderr).toContain('Fix:');
      expect(result.stderr).not.toContain(secret);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('a port already in use without STRIPE_WEBHOOK_SECRET still gives one message', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = blocker.address() as net.AddressInfo;
      const result = await runCli(['serve', '--port', String(port), '--data-dir', tmp()]);
      expect(result.code, explain(result)).toBe(2);
      expect(result.stderr).toContain('--port');
      expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

describe('graceful shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s: exits 0 after logging "shutting down" and "stopped", keeping what was queued',
    async (signal) => {
      const dataDir = tmp();
      const secret = randomSecret();
      const server = await startServe({ dataDir, env: { STRIPE_WEBHOOK_SECRET: secret } });
      // A keep-alive connection stays open after the answer: shutdown must not wait on it forever.
      const agent = new http.Agent({ keepAlive: true });
      try {
        const event = signedEvent('charge.dispute.created', secret);
        const answer = await postWebhook(server.webhookUrl, event.payload, event.header, agent);
        expect(answer).toMatchObject({ status: 200, body: { status: 'queued', id: event.id } });

        expect(await server.stop(signal)).toEqual({ code: 0, signal: null });
        const messages = server.logs().map((l) => l.msg);
        const down = messages.indexOf('shutting down');
        const stopped = messages.indexOf('stopped');
        expect(down, server.stderr()).toBeGreaterThanOrEqual(0);
        expect(stopped, server.stderr()).toBeGreaterThan(down);
        expect(server.logs()[down]).toMatchObject({ level: 'info', signal });

        const stored = await listEvents(dataDir);
        expect(stored.map((s) => s.id)).toEqual([event.id]);
        expect(stored[0]?.status).toBe('pending');
      } finally {
        agent.destroy();
      }
    },
  );
});

describe('secrets and payloads stay out of the output', () => {
  it('never prints the webhook secret, signatures or payload contents', async () => {
    const dataDir = tmp();
    const secret = randomSecret();
    const server = await startServe({
      dataDir,
      env: { STRIPE_WEBHOOK_SECRET: secret },
      // debug logs every queued event too
      args: ['--log-level', 'debug'],
    });

    const forged = signedEvent('charge.dispute.created', randomSecret());
    const refused = await postWebhook(server.webhookUrl, forged.payload, forged.header);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: { code: 'invalid_signature' } });
    expect(JSON.stringify(refused.body)).not.toContain(secret);

    const unsigned = await postWebhook(server.webhookUrl, forged.payload, undefined);
    expect(unsigned.status).toBe(400);

    const good = signedEvent('charge.dispute.created', secret);
    const accepted = await postWebhook(server.webhookUrl, good.payload, good.header);
    expect(accepted).toMatchObject({ status: 200, body: { status: 'queued', id: good.id } });

    expect(await server.stop()).toEqual({ code: 0, signal: null });
    const output = server.stderr() + server.stdout();
    // The logging happened, so the absences below mean something.
    const messages = server.logs().map((l) => l.msg);
    expect(messages).toContain('webhook rejected');
    expect(messages).toContain('event queued');

    expect(output).not.toContain(secret);
    expect(output).not.toContain(secret.slice('whsec_'.length));
    for (const header of [forged.header, good.header]) {
      const v1 = /v1=([0-9a-f]+)/.exec(header)?.[1];
      expect(v1).toBeTruthy();
      expect(output).not.toContain(v1);
    }
    // Personal data from the dispute fixture.
    for (const text of ['maya.okafor@example.com', 'Maya Okafor', '203.0.113.42', 'Larkspur']) {
      expect(forged.payload).toContain(text);
      expect(output).not.toContain(text);
    }
  });
});

describe('crash safety', () => {
  const CONNECTIONS = 8;
  const KILL_AFTER_QUEUED = 400;

  it(
    'SIGKILL under concurrent load loses no acknowledged event and stores nothing it refused',
    async () => {
      const dataDir = tmp();
      const secret = randomSecret();
      const wrongSecret = randomSecret();
      const env = { STRIPE_WEBHOOK_SECRET: secret };
      const server = await startServe({ dataDir, env });
      const webhook = server.webhookUrl;
      const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });

      const payloads = new Map<string, string>();
      const badlySigned = new Set<string>();
      const queued = new Set<string>();
      const refused = new Set<string>(); // answered 400
      const unanswered = new Set<string>(); // error, reset or cut-off answer
      const unexpected: string[] = [];
      let sent = 0;
      let inFlight = 0;
      let inFlightAtKill = -1;
      let stop = false;

      const sender = async () => {
        while (!stop) {
          const bad = sent++ % 10 === 3;
          const event = signedEvent('charge.dispute.created', bad ? wrongSecret : secret);
          payloads.set(event.id, event.payload);
          if (bad) badlySigned.add(event.id);
          inFlight++;
          try {
            const answer = await postWebhook(webhook, event.payload, event.header, agent);
            if (answer.status === 200 && answer.body.status === 'queued') {
              if (answer.body.id === event.id) queued.add(event.id);
              else unexpected.push(`${event.id}: queued as ${String(answer.body.id)}`);
            } else if (answer.status === 400) {
              refused.add(event.id);
            } else {
              unexpected.push(`${event.id}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
            }
          } catch {
            unanswered.add(event.id);
          } finally {
            inFlight--;
          }
          if (!stop && queued.size >= KILL_AFTER_QUEUED) {
            stop = true;
            inFlightAtKill = inFlight;
            server.child.kill('SIGKILL');
          }
        }
      };
      // A generous deadline: a slow disk only makes the run longer, never a failure by itself.
      const giveUp = setTimeout(() => {
        if (stop) return;
        stop = true;
        server.child.kill('SIGKILL');
      }, 150_000);
      try {
        await Promise.all(Array.from({ length: CONNECTIONS }, sender));
      } finally {
        clearTimeout(giveUp);
        agent.destroy();
      }
      expect(queued.size, `only ${queued.size} queued before the deadline`).toBeGreaterThanOrEqual(
        KILL_AFTER_QUEUED,
      );
      expect(await server.exited).toEqual({ code: null, signal: 'SIGKILL' });
      // Requests were still on the wire when the process died.
      expect(inFlightAtKill).toBeGreaterThan(0);
      expect(unexpected).toEqual([]);
      // Every answered badly signed request was refused, and only those.
      expect(refused.size).toBeGreaterThan(0);
      expect([...refused].filter((id) => !badlySigned.has(id))).toEqual([]);
      expect([...queued].filter((id) => badlySigned.has(id))).toEqual([]);

      // The store, opened after the crash (this replays the WAL).
      const stored = await listEvents(dataDir);
      const storedIds = stored.map((s) => s.id);
      const storedSet = new Set(storedIds);
      expect(storedSet.size, 'an id is stored more than once').toBe(storedIds.length);
      expect(
        [...queued].filter((id) => !storedSet.has(id)),
        'acknowledged but lost',
      ).toEqual([]);
      expect(
        storedIds.filter((id) => !queued.has(id) && !unanswered.has(id)),
        'stored but never acknowledged nor in flight',
      ).toEqual([]);
      expect(storedIds.filter((id) => badlySigned.has(id))).toEqual([]);
      expect(storedIds.filter((id) => refused.has(id))).toEqual([]);
      for (const s of stored) {
        expect(s.type).toBe('charge.dispute.created');
        expect(s.status).toBe('pending');
        expect(s.tool_call?.name).toBe('handle_dispute');
      }

      // A restarted server on the same data dir is healthy and sees exactly what was stored.
      const restarted = await startServe({ dataDir, env });
      const health = await healthz(restarted.url);
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'ok', pending: stored.length });

      // Stripe retries every delivery it did not see answered 2xx, and may retry answered ones:
      // the queued ones are duplicates now, and the unanswered ones are stored exactly once.
      const redeliverAgent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
      try {
        const redeliver = async (id: string): Promise<[string, string]> => {
          const payload = payloads.get(id) ?? '';
          const answer = await postWebhook(
            restarted.webhookUrl,
            payload,
            sign(payload, secret),
            redeliverAgent,
          );
          expect(answer.status, JSON.stringify(answer.body)).toBe(200);
          return [id, String(answer.body.status)];
        };
        const again = await mapPool([...queued], CONNECTIONS, redeliver);
        expect(again.filter(([, status]) => status !== 'duplicate')).toEqual([]);

        const retried = [...unanswered].filter((id) => !badlySigned.has(id));
        const retriedAnswers = await mapPool(retried, CONNECTIONS, redeliver);
        for (const [id, status] of retriedAnswers) {
          expect(status, id).toBe(storedSet.has(id) ? 'duplicate' : 'queued');
        }
        const expected = new Set([...queued, ...retried]);
        const final = await listEvents(dataDir);
        expect(final).toHaveLength(expected.size);
        expect(new Set(final.map((s) => s.id))).toEqual(expected);
        const after = await healthz(restarted.url);
        expect(after.body).toMatchObject({ status: 'ok', pending: expected.size });
      } finally {
        redeliverAgent.destroy();
      }
      expect(await restarted.stop()).toEqual({ code: 0, signal: null });
    },
    4 * 60_000,
  );
});

describe('first contact: version, help and mistyped commands', () => {
  const version = (
    JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

  it('--version and -V print the package version', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r.code, flag).toBe(0);
      expect(r.stdout.trim(), flag).toBe(version);
    }
  });

  it('the top-level help says serve is the default command', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/serve \[options\]\s+\(the default command\)/);
    expect(r.stdout).toMatch(/With no command, serve runs/);
    expect(r.stdout).toMatch(/-V, --version/);
  });

  it('a mistyped command gets "did you mean" and exit 2, not the help of serve', async () => {
    const dir = tmp();
    for (const [args, meant] of [
      [['serv'], 'serve'],
      [['evnets', 'list'], 'events'],
      [['stdi'], 'stdio'],
      [['tigger', 'charge.refunded'], 'trigger'],
    ] as const) {
      const r = await runCli([...args, '--data-dir', dir]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toContain(`unknown command '${args[0]}'. Did you mean '${meant}'?`);
      expect(r.stderr).not.toMatch(/--max-pending/);
      expect(r.stdout).toBe('');
    }
    const nothing = await runCli(['xyzzy', '--data-dir', dir]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/unknown command 'xyzzy'\. Commands: serve, agent, stdio/);
    // Nothing was started: no store, no dev secret.
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('backfill --help', () => {
  it('lists every --since form parseSince accepts, each of which it does accept', async () => {
    const r = await runCli(['backfill', '--help']);
    expect(r.code).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    const now = Date.parse('2026-11-02T00:00:00Z');
    for (const [form, example] of [
      ['30m', '30m'],
      ['24h', '24h'],
      ['7d', '7d'],
      ['ISO date-time', '2026-11-01T00:00Z'],
      ['Unix seconds', '1761955200'],
      ['event id (evt_…)', 'evt_1ABC'],
    ] as const) {
      expect(help, form).toContain(form);
      expect(() => parseSince(example, now), example).not.toThrow();
    }
    expect(help).toContain('1764547200');
  });
});

describe('errors stay on screen', () => {
  it.each([
    { args: ['serve', '--prot', '9000'], flag: '--prot', meant: '--port', where: 'serve' },
    {
      args: ['events', 'list', '--statu', 'pending'],
      flag: '--statu',
      meant: '--status',
      where: 'events list',
    },
    {
      args: ['trigger', 'charge.dispute.created', '--sett', 'x=1'],
      flag: '--sett',
      meant: '--set',
      where: 'trigger',
    },
  ])('$args.0 $flag: one line with the did-you-mean and its --help, exit 2', async (c) => {
    const dir = tmp();
    const r = await runCli([...c.args, '--data-dir', dir]);
    expect(r.code, explain(r)).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toBe(
      `stripe-events-mcp: unknown option '${c.flag}'. Did you mean ${c.meant}? (${c.where} --help)\n`,
    );
    // Nothing was started: no store, no dev secret.
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('every other usage mistake of a subcommand is one line too', async () => {
    for (const [args, line] of [
      [['events', 'lst'], "unknown command 'lst'. Did you mean list? (events --help)"],
      [['events', 'show'], "missing required argument 'id'. (events show --help)"],
      [
        ['events', 'show', 'evt_1', 'evt_2'],
        "too many arguments for 'show'. Expected 1 argument but got 2. (events show --help)",
      ],
      [['serve', '--port'], "option '--port <port>' argument missing. (serve --help)"],
      [
        ['serve', '--commit-mode', 'x'],
        "option '--commit-mode <mode>' argument 'x' is invalid. Allowed choices are group, each. (serve --help)",
      ],
      [['serve', '--nope'], "unknown option '--nope'. (serve --help)"],
    ] as const) {
      const r = await runCli(args);
      expect(r.code, explain(r)).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`stripe-events-mcp: ${line}\n`);
      expect(r.stdout).toBe('');
    }
  });

  it('trigger --set on a path the fixture lacks warns with the closest key, and still sends', async () => {
    const dataDir = tmp();
    const server = await startServe({ dataDir });
    const base = ['trigger', 'charge.dispute.created', '--data-dir', dataDir];
    const typo = await ok([...base, '--url', server.webhookUrl, '--set', 'data.object.amout=5']);
    expect(typo.stderr).toBe(
      'stripe-events-mcp: warning: data.object.amout is not in the charge.dispute.created fixture; did you mean amount?\n',
    );
    const answer = triggerAnswer(typo.stdout);
    expect(answer.body).toMatchObject({ status: 'queued' });
    const shown = await showEvent(dataDir, String(answer.body.id));
    expect(shown.event.data.object.amout).toBe(5);

    // A field the fixture has, or a deliberate new one: no did-you-mean.
    const right = await ok([...base, '--url', server.webhookUrl, '--set', 'data.object.amount=5']);
    expect(right.stderr).toBe('');
    const added = await ok([
      ...base,
      '--url',
      server.webhookUrl,
      '--set',
      'data.object.internal_ref=42',
    ]);
    expect(added.stderr).toContain('data.object.internal_ref is not in the');
    expect(added.stderr).toContain('it is added as a new field');
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('events show prints status and history before the payload; --json is the detail', async () => {
    const dataDir = tmp();
    const server = await startServe({ dataDir });
    const id = String((await trigger(dataDir, server.webhookUrl)).body.id);
    // Without USER (a service, cron, a container) the history still names someone, not a pid.
    await ok(['events', 'ack', id, '--note', 'refunded by hand', '--data-dir', dataDir], {
      USER: undefined,
      LOGNAME: undefined,
      USERNAME: undefined,
    });
    expect(await server.stop()).toEqual({ code: 0, signal: null });

    const text = (await ok(['events', 'show', id, '--data-dir', dataDir])).stdout;
    const lines = text.split('\n');
    expect(lines[0]).toBe(`${id}  charge.dispute.created  acked  attempts=0`);
    // How it ended, on a line of its own: acked by hand.
    expect(lines).toContain('outcome    handled');
    const at = (needle: string) => {
      const i = lines.findIndex((l) => l.includes(needle));
      expect(i, `${needle} in\n${text}`).toBeGreaterThan(0);
      return i;
    };
    const history = at('history');
    const acked = at('  acked  by cli:');
    const payload = at('event as received');
    expect(history).toBeLessThan(acked);
    expect(lines[acked]).toContain('note refunded by hand');
    expect(acked).toBeLessThan(at('tool call input'));
    expect(at('tool call input')).toBeLessThan(payload);
    expect(at(`"id": "${id}"`)).toBeGreaterThan(payload);
    expect(at('handle_dispute')).toBeLessThan(history);

    // --json is the detail as before: one object, the event first.
    const json = await ok(['events', 'show', id, '--json', '--data-dir', dataDir]);
    const detail = JSON.parse(json.stdout) as Detail;
    expect(Object.keys(detail)).toEqual([
      'event',
      'tool_call',
      'status',
      'outcome',
      'attempts',
      'received_at',
      'retry_at',
      'last_error',
      'history',
    ]);
    const by = detail.history.find((h) => h.kind === 'acked')?.by;
    expect(by).not.toMatch(/^cli:\d+$/);
    let account: string | undefined;
    try {
      account = os.userInfo().username;
    } catch {
      account = undefined;
    }
    expect(by).toBe(`cli:${account || os.hostname()}`);
    expect(lines[acked]).toContain(`by ${by}`);
  });

  it('who the CLI names: USER, LOGNAME, USERNAME, the account, then the host', () => {
    const whoami = (username: string | null) => ({
      userInfo: () => {
        if (username === null) throw new Error('no passwd entry');
        return { username };
      },
      hostname: () => 'build-7',
    });
    expect(cliActor({ USER: 'ana', LOGNAME: 'x' }, whoami('root'))).toBe('cli:ana');
    expect(cliActor({ USER: '', LOGNAME: 'bo' }, whoami('root'))).toBe('cli:bo');
    expect(cliActor({ USERNAME: 'cy' }, whoami('root'))).toBe('cli:cy');
    expect(cliActor({}, whoami('root'))).toBe('cli:root');
    expect(cliActor({}, whoami(null))).toBe('cli:build-7');
    expect(cliActor({}, whoami(''))).toBe('cli:build-7');
  });
});

// ---------------------------------------------------------------------------
// The CLI door of approvals (#20, point 11), and `events list` for people.

interface Seed {
  type: string;
  /** Fields of `data.object` to set, e.g. `{ amount: 412_000, currency: 'usd' }`. */
  object?: Record<string, unknown>;
  /** A decided call to hold for approval, as the agent loop holds one. */
  held?: ToolCall;
}

/**
 * Events written through the store's own API into a new store in `dataDir`; a `held` one is
 * claimed and held with its decision record, exactly as the loop holds a call for approval. Held
 * ones are written first, so each claim takes the event just appended. Returns the ids in order.
 */
async function seed(dataDir: string, events: readonly Seed[]): Promise<string[]> {
  const store = openSqliteBuffer(dataDir, {});
  const ids = new Map<Seed, string>();
  const ordered = [...events.filter((e) => e.held), ...events.filter((e) => !e.held)];
  for (const e of ordered) {
    const event = buildTestEvent(e.type);
    const object = (event.data as { object: Record<string, unknown> }).object;
    // Each seeded event is about an object of its own: events about one object are claimed one
    // at a time, oldest first, and the fixtures share one object per type.
    object.id = `${String(object.id)}_${ids.size}`;
    Object.assign(object, e.object);
    await store.append({
      id: String(event.id),
      type: e.type,
      created: Number(event.created),
      livemode: false,
      objectId: String(object.id),
      payload: JSON.stringify(event),
    });
    ids.set(e, String(event.id));
    if (e.held) {
      const [claimed] = await store.claim({ owner: 'worker-1', leaseMs: 600_000 });
      expect(claimed?.id).toBe(String(event.id));
      await store.hold(claimed!.id, claimed!.leaseOwner!, `${e.held.name} needs approval`, [
        { kind: 'decision', tool_call: e.held, outcome: 'decided' },
      ]);
    }
  }
  await store.close();
  return events.map((e) => ids.get(e)!);
}

const ACCEPT: ToolCall = {
  name: 'handle_dispute',
  input: { action: 'accept', amount: 412_000, currency: 'usd' },
};

function configFile(dir: string, config: unknown): string {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

/** The held-call refusal of a nack, pointing at `events reject`. */
const heldRefusal = (id: string) =>
  `event ${id} cannot be nacked: its decided call awaits approval; to turn it down use reject_action (MCP), \`events reject ${id} --reason …\` (CLI) or the console's Reject — a nack would discard the decision and have the model decide again`;

describe('events approve, reject and nack: the CLI approves too', () => {
  const alice = { USER: 'alice' };

  it("approve dispatches the held call to --config's http handler and acks; the history names cli:<user>", async () => {
    const dataDir = tmp();
    const sink = await sinkServer(cleanups);
    const config = configFile(tmp(), {
      dispatch: { type: 'http', url: sink.url, secret: 'a-long-random-secret' },
    });
    const [id, other] = await seed(dataDir, [
      { type: 'charge.dispute.created', held: ACCEPT },
      { type: 'charge.dispute.created', held: ACCEPT },
    ]);

    const approved = await ok(
      ['events', 'approve', id!, '--config', config, '--data-dir', dataDir],
      alice,
    );
    expect(approved.stdout).toBe(
      `${id} approved: dispatched (handle_dispute accept $4,120.00); acked\n`,
    );
    expect(approved.stderr).toBe('');
    // The handler got the call exactly as decided.
    expect(sink.bodies).toHaveLength(1);
    expect(sink.bodies[0]).toMatchObject({
      event_id: id,
      event_type: 'charge.dispute.created',
      tool_call: ACCEPT,
    });
    const shown = await showEvent(dataDir, id!);
    expect(shown.status).toBe('acked');
    const history = shown.history as { kind: string; by?: string; outcome?: string }[];
    expect(history.find((h) => h.kind === 'resumed')).toMatchObject({ by: 'cli:alice' });
    expect(history.slice(-2)).toMatchObject([
      { kind: 'dispatch', outcome: 'dispatched' },
      { kind: 'acked' },
    ]);

    // Without --config there is no handler in this process: recorded only, and it says so.
    const recorded = await ok(['events', 'approve', other!, '--data-dir', dataDir], alice);
    expect(recorded.stdout).toBe(
      `${other} approved: recorded (handle_dispute accept $4,120.00); acked\n`,
    );
    expect(recorded.stderr).toContain('no --config: the approved call is recorded');
    expect(sink.bodies).toHaveLength(1);
    const help = await ok(['events', 'approve', '--help']);
    expect(help.stdout).toContain('Without --config nothing is sent anywhere');
  });

  it('approve whose handler fails leaves the call waiting for approval again, exit 1', async () => {
    const dataDir = tmp();
    const sink = await sinkServer(cleanups, 500);
    const config = configFile(tmp(), {
      dispatch: { type: 'http', url: sink.url, secret: 'a-long-random-secret' },
    });
    const [id] = await seed(dataDir, [{ type: 'charge.dispute.created', held: ACCEPT }]);
    const failed = await runCli(
      ['events', 'approve', id!, '--config', config, '--data-dir', dataDir],
      { env: alice },
    );
    expect(failed.code, explain(failed)).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toMatch(
      new RegExp(
        `^stripe-events-mcp: ${id} approved, but dispatch failed: .*500.*; it still waits for approval\\n$`,
      ),
    );
    // The http sink's three attempts, then the call is held again, no attempt counted.
    expect(sink.bodies).toHaveLength(3);
    expect(await showEvent(dataDir, id!)).toMatchObject({
      status: 'awaiting_approval',
      attempts: 0,
    });
  });

  it('reject --reason acks with the reason and dispatches nothing; without --reason it is a usage error', async () => {
    const dataDir = tmp();
    const [id] = await seed(dataDir, [{ type: 'charge.dispute.created', held: ACCEPT }]);

    const missing = await runCli(['events', 'reject', id!, '--data-dir', dataDir]);
    expect(missing.code, explain(missing)).toBe(2);
    expect(missing.stderr).toBe(
      "stripe-events-mcp: required option '--reason <text>' not specified. (events reject --help)\n",
    );

    const rejected = await ok(
      ['events', 'reject', id!, '--reason', 'customer already refunded', '--data-dir', dataDir],
      alice,
    );
    expect(rejected.stdout).toBe(`${id} rejected: customer already refunded; acked\n`);
    const shown = await showEvent(dataDir, id!);
    expect(shown.status).toBe('acked');
    expect(shown.history.slice(-2)).toMatchObject([
      { kind: 'decision', by: 'cli:alice', note: 'customer already refunded' },
      { kind: 'acked', by: 'cli:alice' },
    ]);
    expect(shown.history.some((h) => h.kind === 'dispatch')).toBe(false);
  });

  it('nack gives a pending event back; of a held call it is refused, pointing at events reject', async () => {
    const dataDir = tmp();
    const [held, pending] = await seed(dataDir, [
      { type: 'charge.dispute.created', held: ACCEPT },
      { type: 'invoice.payment_failed' },
    ]);

    const before = Date.now();
    const nacked = await ok(
      [
        'events',
        'nack',
        pending!,
        '--reason',
        'ledger down',
        '--retry-in',
        '600',
        '--data-dir',
        dataDir,
      ],
      alice,
    );
    const m = new RegExp(`^${pending} nacked: pending, retry at (\\S+) \\(attempts 1\\)\\n$`).exec(
      nacked.stdout,
    );
    expect(m, nacked.stdout).not.toBeNull();
    const retryAt = Date.parse(m![1]!);
    expect(retryAt).toBeGreaterThanOrEqual(before + 600_000);
    expect(retryAt).toBeLessThan(Date.now() + 600_000);
    const shown = await showEvent(dataDir, pending!);
    expect(shown).toMatchObject({ status: 'pending', attempts: 1 });
    expect(shown.history.at(-1)).toMatchObject({
      kind: 'nacked',
      by: 'cli:alice',
      note: 'ledger down',
    });

    const refused = await runCli(
      ['events', 'nack', held!, '--reason', 'not now', '--data-dir', dataDir],
      { env: alice },
    );
    expect(refused.code, explain(refused)).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(`stripe-events-mcp: ${heldRefusal(held!)}\n`);
    // Nothing changed: the decision still waits, no attempt counted.
    expect(await showEvent(dataDir, held!)).toMatchObject({
      status: 'awaiting_approval',
      attempts: 0,
    });
    // The command it points at does what it says.
    await ok(['events', 'reject', held!, '--reason', 'not now', '--data-dir', dataDir], alice);
    expect((await showEvent(dataDir, held!)).status).toBe('acked');

    const badRetry = await runCli(
      ['events', 'nack', pending!, '--reason', 'x', '--retry-in', '1e3', '--data-dir', dataDir],
      { env: alice },
    );
    expect(badRetry.code, explain(badRetry)).toBe(2);
    expect(badRetry.stderr).toContain('--retry-in: "1e3" is not valid');
  });

  it('approve of an event that is not held is refused (NotAwaitingApprovalError), exit 1, nothing changed', async () => {
    const dataDir = tmp();
    const sink = await sinkServer(cleanups);
    const config = configFile(tmp(), {
      dispatch: { type: 'http', url: sink.url, secret: 'a-long-random-secret' },
    });
    const [id] = await seed(dataDir, [{ type: 'charge.dispute.created' }]);

    const refused = await runCli(
      ['events', 'approve', id!, '--config', config, '--data-dir', dataDir],
      { env: alice },
    );
    expect(refused.code, explain(refused)).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(
      `stripe-events-mcp: event ${id} is pending, not awaiting approval (someone else approved or rejected it, or it was acked): nothing was changed\n`,
    );
    expect(sink.bodies).toEqual([]);
    const shown = await showEvent(dataDir, id!);
    expect(shown).toMatchObject({ status: 'pending', attempts: 0 });
    expect(shown.history.map((h) => h.kind)).toEqual(['received']);
  });
});

describe('events list for people', () => {
  const HEADER = ['ID', 'TYPE', 'STATUS', 'OUTCOME', 'ATTEMPTS', 'CREATED', 'TOOL', 'AMOUNT'];
  /** ATTEMPTS and AMOUNT are numbers: right-aligned. */
  const RIGHT = new Set([4, 7]);

  it('prints a header and columns aligned to their widest cell; --json is unchanged', async () => {
    const dataDir = tmp();
    await seed(dataDir, [
      {
        type: 'charge.dispute.created',
        object: { amount: 412_000, currency: 'usd' },
        held: ACCEPT,
      },
      { type: 'charge.refunded', object: { amount_refunded: 50_000, currency: 'jpy' } },
      { type: 'invoice.payment_failed', object: { amount_due: 1_500, currency: 'bhd' } },
      { type: 'customer.subscription.trial_will_end' },
    ]);

    const listed = await ok(['events', 'list', '--data-dir', dataDir]);
    const lines = listed.stdout.replace(/\n$/, '').split('\n');
    expect(lines).toHaveLength(5);
    const header = lines[0]!;
    expect(header.split(/ {2,}/)).toEqual(HEADER);
    const starts = HEADER.map((h) => header.indexOf(h));
    const ends = HEADER.map((h, i) => starts[i]! + h.length);
    const rows = lines.slice(1).map((line) => {
      expect(line, 'no trailing spaces').toBe(line.trimEnd());
      const cells = line.trim().split(/ {2,}/);
      expect(cells, line).toHaveLength(HEADER.length);
      // Each cell starts where its header starts (ends there, right-aligned).
      let from = 0;
      cells.forEach((cell, i) => {
        const at = line.indexOf(cell, from);
        if (RIGHT.has(i)) expect(at + cell.length, `${HEADER[i]} in ${line}`).toBe(ends[i]);
        else expect(at, `${HEADER[i]} in ${line}`).toBe(starts[i]);
        from = at + cell.length;
      });
      return cells;
    });
    // The widths come from the rows: each column is as wide as its widest cell (header
    // included), and the next one starts two spaces after it.
    const columns = HEADER.map((h, i) => {
      const widest = Math.max(h.length, ...rows.map((r) => [...r[i]!].length));
      return RIGHT.has(i)
        ? { start: ends[i]! - widest, end: ends[i]! }
        : { start: starts[i]!, end: starts[i]! + widest };
    });
    expect(columns[0]!.start).toBe(0);
    for (let i = 1; i < HEADER.length; i++) {
      expect(columns[i]!.start, HEADER[i]).toBe(columns[i - 1]!.end + 2);
    }
    const byType = new Map(rows.map((r) => [r[1], r]));
    expect(byType.get('charge.dispute.created')).toEqual([
      expect.stringMatching(/^evt_/),
      'charge.dispute.created',
      'awaiting_approval',
      '-',
      '0',
      expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      'handle_dispute',
      '$4,120.00',
    ]);
    expect(byType.get('charge.refunded')?.[7]).toBe('¥50,000');
    expect(byType.get('invoice.payment_failed')?.[7]).toBe('BHD 1.500');
    expect(byType.get('customer.subscription.trial_will_end')?.[1]).toBe(
      'customer.subscription.trial_will_end',
    );

    const json = await listEvents(dataDir);
    expect(json).toHaveLength(4);
    expect(JSON.stringify(json)).not.toContain('ATTEMPTS');
  });

  it('an unknown --type exits 2 with a did-you-mean and the known types; --config adds types', async () => {
    const dataDir = tmp();
    await seed(dataDir, [{ type: 'charge.dispute.created' }]);

    const typo = await runCli([
      'events',
      'list',
      '--type',
      'charge.dispute.craeted',
      '--data-dir',
      dataDir,
    ]);
    expect(typo.code, explain(typo)).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr.trim().split('\n'), typo.stderr).toHaveLength(1);
    expect(typo.stderr).toMatch(
      /^stripe-events-mcp: --type: "charge\.dispute\.craeted" is not a type of the catalog\. Did you mean charge\.dispute\.created\? Fix: use charge\.dispute\.created, .*invoice\.payment_failed.*\n$/,
    );

    // A type the config maps is known with that --config (as the server knows it), not without.
    const config = configFile(tmp(), { events: { 'invoice.paid': { tool: 'record_payment' } } });
    const without = await runCli([
      'events',
      'list',
      '--type',
      'invoice.paid',
      '--data-dir',
      dataDir,
    ]);
    expect(without.code, explain(without)).toBe(2);
    const withConfig = await ok([
      'events',
      'list',
      '--type',
      'invoice.paid',
      '--config',
      config,
      '--data-dir',
      dataDir,
    ]);
    expect(withConfig.stdout).toBe('no events\n');
    const known = await ok([
      'events',
      'list',
      '--type',
      'charge.dispute.created',
      '--data-dir',
      dataDir,
    ]);
    expect(known.stdout.split('\n')).toHaveLength(3);
  });

  it('--outcome lists how finished events ended, in the OUTCOME column; an unknown one exits 2', async () => {
    const dataDir = tmp();
    const [approved, rejected, handled, pending] = await seed(dataDir, [
      { type: 'charge.dispute.created', held: ACCEPT },
      { type: 'charge.dispute.created', held: ACCEPT },
      { type: 'charge.refunded' },
      { type: 'charge.refunded' },
    ]);
    await ok(['events', 'approve', approved!, '--data-dir', dataDir]);
    await ok([
      'events',
      'reject',
      rejected!,
      '--reason',
      'evidence is weak',
      '--data-dir',
      dataDir,
    ]);
    await ok(['events', 'ack', handled!, '--data-dir', dataDir]);

    const json = await listEvents(dataDir, '--outcome', 'approved,rejected');
    expect(json.map((e) => [e.id, e.status, e.outcome])).toEqual([
      [approved, 'acked', 'approved'],
      [rejected, 'acked', 'rejected'],
    ]);
    expect((await listEvents(dataDir, '--outcome', 'handled')).map((e) => e.id)).toEqual([handled]);
    expect(await listEvents(dataDir, '--outcome', 'expired')).toEqual([]);
    // With --status and --type, all three filters apply.
    expect(
      await listEvents(dataDir, '--outcome', 'handled', '--type', 'charge.dispute.created'),
    ).toEqual([]);

    const listed = await ok(['events', 'list', '--data-dir', dataDir]);
    const outcomeOf = new Map(
      listed.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.split(/ {2,}/))
        .map((cells) => [cells[0], cells[3]]),
    );
    expect(outcomeOf).toEqual(
      new Map([
        [approved, 'approved'],
        [rejected, 'rejected'],
        [handled, 'handled'],
        [pending, '-'],
      ]),
    );

    const typo = await runCli(['events', 'list', '--outcome', 'aproved', '--data-dir', dataDir]);
    expect(typo.code, explain(typo)).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toBe(
      'stripe-events-mcp: --outcome: "aproved" is not an outcome. Did you mean approved? Fix: use dispatched, approved, rejected, expired, decided, handled, superseded, no_action, dry_run.\n',
    );
  });
});

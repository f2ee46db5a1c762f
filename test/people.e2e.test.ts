/**
 * People have names (issue #20 point 5), end to end with real parts: the built CLI adds people to a
 * real SQLite file or the machine's Redis; a spawned server; Chromium signs in to the console; the
 * official MCP SDK client calls /mcp with a person's bearer token; `events approve` runs with
 * STRIPE_EVENTS_TOKEN. Held calls are made in the store directly (append, claim, hold), as the
 * agent leaves them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EventBuffer, HistoryInput } from '../src/buffer/buffer.js';
import { openRedisBuffer } from '../src/buffer/redis/store.js';
import { DATABASE_FILE, openSqliteBuffer } from '../src/buffer/sqlite/store.js';
import { buildTestEvent } from '../src/stripe/fixtures.js';
import { tokenHash } from '../src/operations/people.js';
import { deleteKeys, redisGate, REDIS_URL, uniquePrefix } from './helpers/redis.js';
import { killLeftovers, runCli, startServe, type ServeHandle } from './helpers/spawn.js';
import { tempDir } from './helpers/tmp.js';

const { run: redisRuns, skipNote } = await redisGate();
const cleanups: (() => Promise<unknown> | unknown)[] = [];
let browser: Browser | undefined;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killLeftovers();
});

function tmp(): string {
  const t = tempDir('sem-people-');
  cleanups.push(t.remove);
  return t.dir;
}

const TOKEN = /^sem_p_[A-Za-z0-9_-]{43}$/;

/** `people add`, checked: the token alone on stdout, the warning on stderr. */
async function addPerson(args: string[], name: string, role: 'view' | 'approve', env = {}) {
  const added = await runCli(['people', 'add', name, '--can', role, ...args], { env });
  expect(added.code, added.stderr).toBe(0);
  expect(added.stdout).toMatch(/^sem_p_[A-Za-z0-9_-]{43}\n$/);
  expect(added.stderr).toMatch(/will not be shown again/);
  const token = added.stdout.trim();
  expect(token).toMatch(TOKEN);
  return token;
}

/** One event whose decided call waits for approval, as the agent leaves it. */
async function holdOne(store: EventBuffer, amount = 412_000): Promise<string> {
  const event = buildTestEvent('charge.dispute.created');
  const id = String(event.id);
  await store.append({
    id,
    type: 'charge.dispute.created',
    created: Number(event.created),
    livemode: false,
    objectId: null,
    payload: JSON.stringify(event),
  });
  const [claim] = await store.claim({ owner: 'agent-test', leaseMs: 60_000 });
  expect(claim?.id).toBe(id);
  const decided: HistoryInput = {
    kind: 'decision',
    tool_call: { name: 'handle_dispute', input: { action: 'accept', amount, currency: 'usd' } },
    outcome: 'decided',
  };
  await store.hold(id, claim!.leaseOwner!, 'over the threshold', [decided]);
  return id;
}

async function historyOf(dataDir: string, id: string) {
  const store = openSqliteBuffer(dataDir, {});
  try {
    return { event: await store.get(id), history: await store.history(id) };
  } finally {
    await store.close();
  }
}

async function mcpClient(
  server: ServeHandle,
  token: string,
): Promise<Client & { sessionId: string }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'people-test', version: '1.0.0' });
  await client.connect(transport);
  cleanups.push(() => client.close());
  return Object.assign(client, { sessionId: transport.sessionId! });
}

function text(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

describe('people add, list and remove', () => {
  it('prints a token once, stores only its hash, lists names without tokens; usage mistakes exit 2', async () => {
    const dataDir = tmp();
    const dir = ['--data-dir', dataDir];
    const alice = await addPerson(dir, 'alice', 'approve');
    await addPerson(dir, 'bob', 'view');

    const listed = await runCli(['people', 'list', ...dir]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME +ROLE +CREATED\n/);
    expect(listed.stdout).toMatch(/^alice +approve +\d{4}-/m);
    expect(listed.stdout).toMatch(/^bob +view +\d{4}-/m);
    expect(listed.stdout).not.toContain('sem_p_');
    expect(listed.stdout).not.toContain(tokenHash(alice));

    // The store holds the hash, never the token (the file and its WAL).
    const bytes = fs
      .readdirSync(dataDir)
      .filter((f) => f.startsWith(DATABASE_FILE))
      .map((f) => fs.readFileSync(path.join(dataDir, f)).toString('latin1'))
      .join('');
    expect(bytes).toContain(tokenHash(alice));
    expect(bytes).not.toContain(alice.slice('sem_p_'.length));

    const mistakes: [string[], RegExp][] = [
      [['people', 'add', 'alice', '--can', 'view'], /already a person named "alice"/],
      [['people', 'add', 'al ice', '--can', 'view'], /"al ice" is not a usable name/],
      [['people', 'add', '-x', '--can', 'view'], /unknown option|not a usable name/],
      [
        ['people', 'add', 'carol', '--can', 'aprove'],
        /"aprove" is not a role\. Did you mean approve\?/,
      ],
      [['people', 'remove', 'alcie'], /nobody named "alcie".*Did you mean alice\?/],
    ];
    for (const [args, message] of mistakes) {
      const result = await runCli([...args, ...dir]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
    }

    const removed = await runCli(['people', 'remove', 'bob', ...dir]);
    expect(removed.code).toBe(0);
    const after = await runCli(['people', 'list', '--json', ...dir]);
    expect((JSON.parse(after.stdout) as { name: string }[]).map((p) => p.name)).toEqual(['alice']);
  });
});

describe('named people at every door (SQLite, one server)', () => {
  it('console, MCP and the CLI: alice approves under her name, bob can only look', async () => {
    const dataDir = tmp();
    const dir = ['--data-dir', dataDir];
    const alice = await addPerson(dir, 'alice', 'approve');
    const bob = await addPerson(dir, 'bob', 'view');
    const store = openSqliteBuffer(dataDir, {});
    const forConsole = await holdOne(store);
    const forMcp = await holdOne(store);
    const forCli = await holdOne(store);
    await store.close();

    // Loopback, no MCP_AUTH_TOKEN: people exist, so every door asks for a token.
    const server = await startServe({ dataDir });
    cleanups.push(() => server.stop());

    // --- Console, in Chromium.
    const context = await browser!.newContext();
    cleanups.push(() => context.close());
    const page = await context.newPage();
    await page.goto(`${server.url}/console/event/${forConsole}`);
    await page.getByLabel('Token').fill('sem_p_not-a-token-anyone-has');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect
      .poll(() => page.locator('.error').textContent())
      .toMatch(/not the token of anyone/);
    await page.getByLabel('Token').fill(alice);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.goto(`${server.url}/console/event/${forConsole}`);
    await page.getByRole('checkbox', { name: /I approve/ }).check();
    await page.getByRole('button', { name: 'Approve' }).click();
    await expect
      .poll(() => page.locator('#summary .chip').textContent(), { timeout: 10_000 })
      .toBe('approved');
    await expect.poll(() => page.locator('.timeline').textContent()).toMatch(/by alice/);
    const approvedInConsole = await historyOf(dataDir, forConsole);
    expect(approvedInConsole.history.filter((h) => h.by !== undefined).map((h) => h.by)).toEqual(
      expect.arrayContaining(['alice']),
    );
    expect(JSON.stringify(approvedInConsole.history)).not.toMatch(/console:\d+/);
    expect(approvedInConsole.event?.outcome).toBe('approved');

    const bobContext = await browser!.newContext();
    cleanups.push(() => bobContext.close());
    const bobPage = await bobContext.newPage();
    await bobPage.goto(`${server.url}/console/event/${forMcp}`);
    await bobPage.getByLabel('Token').fill(bob);
    await bobPage.getByRole('button', { name: 'Sign in' }).click();
    await bobPage.goto(`${server.url}/console/event/${forMcp}`);
    await bobPage.locator('#summary .chip').waitFor();
    expect(await bobPage.locator('#summary .chip').textContent()).toBe('awaiting approval');
    expect(await bobPage.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    expect(await bobPage.getByRole('button', { name: 'Reject' }).count()).toBe(0);
    expect(await bobPage.getByRole('button', { name: 'Sign out' }).count()).toBe(1);
    // He posts anyway, from the console's own page (his session cookie, its own origin): 403.
    const posted = await bobPage.evaluate(async (id) => {
      const res = await fetch(`/console/event/${id}/approve`, {
        method: 'POST',
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
      });
      return { status: res.status, body: (await res.json()) as { message: string } };
    }, forMcp);
    expect(posted.status).toBe(403);
    expect(posted.body.message).toMatch(/^bob can view but not approve/);
    expect((await historyOf(dataDir, forMcp)).event?.status).toBe('awaiting_approval');

    // --- MCP over Streamable HTTP with a person's bearer token.
    const wrong = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sem_p_wrong',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(wrong.status).toBe(401);
    const bobMcp = await mcpClient(server, bob);
    const listedForBob = await bobMcp.callTool({ name: 'list_approvals', arguments: {} });
    expect(listedForBob.isError).toBeFalsy();
    expect(text(listedForBob)).toContain(forMcp);
    const refused = await bobMcp.callTool({
      name: 'approve_action',
      arguments: { id: forMcp },
    });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/^bob can view but not approve/);
    const refusedAck = await bobMcp.callTool({
      name: 'ack_event',
      arguments: { id: forMcp, note: 'x' },
    });
    expect(refusedAck.isError).toBe(true);
    expect((await historyOf(dataDir, forMcp)).event?.status).toBe('awaiting_approval');

    // A session id is not a credential: bob's session with alice's token is refused.
    const borrowed = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${alice}`,
        'mcp-session-id': bobMcp.sessionId,
        'mcp-protocol-version': '2025-06-18',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 9,
        method: 'tools/call',
        params: { name: 'approve_action', arguments: { id: forMcp } },
      }),
    });
    expect(borrowed.status).toBe(403);
    expect((await historyOf(dataDir, forMcp)).event?.status).toBe('awaiting_approval');

    const aliceMcp = await mcpClient(server, alice);
    const approved = await aliceMcp.callTool({
      name: 'approve_action',
      arguments: { id: forMcp },
    });
    expect(approved.isError, text(approved)).toBeFalsy();
    const viaMcp = await historyOf(dataDir, forMcp);
    expect(viaMcp.event?.status).toBe('acked');
    expect(viaMcp.history.map((h) => h.by).filter(Boolean)).toEqual(
      expect.arrayContaining(['alice']),
    );
    expect(JSON.stringify(viaMcp.history)).not.toMatch(/mcp:/);

    // --- The CLI with STRIPE_EVENTS_TOKEN.
    const asBob = await runCli(['events', 'approve', forCli, ...dir], {
      env: { STRIPE_EVENTS_TOKEN: bob },
    });
    expect(asBob.code).toBe(1);
    expect(asBob.stderr).toMatch(/bob can view but not approve/);
    const asNobody = await runCli(['events', 'approve', forCli, ...dir], {
      env: { STRIPE_EVENTS_TOKEN: 'sem_p_nobody' },
    });
    expect(asNobody.code).toBe(2);
    expect(asNobody.stderr).toMatch(/STRIPE_EVENTS_TOKEN.*names nobody/);
    expect((await historyOf(dataDir, forCli)).event?.status).toBe('awaiting_approval');
    const asAlice = await runCli(['events', 'approve', forCli, ...dir], {
      env: { STRIPE_EVENTS_TOKEN: alice },
    });
    expect(asAlice.code, asAlice.stderr).toBe(0);
    const viaCli = await historyOf(dataDir, forCli);
    expect(viaCli.event?.status).toBe('acked');
    expect(viaCli.history.map((h) => h.by).filter(Boolean)).toEqual(
      expect.arrayContaining(['alice']),
    );
    expect(JSON.stringify(viaCli.history)).not.toMatch(/cli:/);

    // Removed: her token stops working within the cache's 5 seconds.
    expect((await runCli(['people', 'remove', 'alice', ...dir])).code).toBe(0);
    const ping = () =>
      fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${alice}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      }).then((r) => r.status);
    const removedAt = Date.now();
    await expect.poll(ping, { timeout: 10_000, interval: 250 }).toBe(401);
    expect(Date.now() - removedAt).toBeLessThan(5_000 + 2_000);
    // Her console session ends too.
    await page.goto(`${server.url}/console`);
    expect(await page.getByLabel('Token').count()).toBe(1);
  }, 180_000);
});

describe.skipIf(!redisRuns)(`people on Redis${skipNote}`, () => {
  it('a person added by one process signs in on another instance', async () => {
    const prefix = uniquePrefix('people-e2e');
    cleanups.push(() => deleteKeys(prefix));
    const redisArgs = ['--store', 'redis', '--redis-prefix', prefix];
    const env = { REDIS_URL };
    const alice = await addPerson(redisArgs, 'alice', 'approve', env);
    // The token is in no key: only its hash.
    const store = await openRedisBuffer({ url: REDIS_URL, prefix });
    cleanups.push(() => store.close());
    expect((await store.people.byTokenHash(tokenHash(alice)))?.name).toBe('alice');

    const server = await startServe({ dataDir: tmp(), args: redisArgs, env });
    cleanups.push(() => server.stop());
    const wrong = await fetch(`${server.url}/console/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: server.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'sem_p_x' }).toString(),
    });
    expect(wrong.status).toBe(401);
    const signed = await fetch(`${server.url}/console/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: server.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: alice }).toString(),
    });
    expect(signed.status).toBe(303);
    const cookie = signed.headers.get('set-cookie')!.split(';')[0]!;
    const overview = await fetch(`${server.url}/console`, { headers: { cookie } });
    expect(overview.status).toBe(200);
    expect(await fetch(`${server.url}/console`).then((r) => r.status)).toBe(401);
  }, 120_000);
});

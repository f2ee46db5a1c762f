/**
 * approve_action and reject_action racing on the same held calls from two MCP sessions (issue
 * #11): one guarded transition each, so exactly one wins and the dispatches match the approvals,
 * on SQLite and on Redis.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { startFakeAnthropic } from '../helpers/fake-anthropic.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { runCli, startServe, waitFor } from '../helpers/spawn.js';
import { e2eScope, sinkServer } from '../helpers/e2e.js';

const HELD = 40;
const redis = await redisGate();

const { cleanups, tmp } = e2eScope();

/** An http sink endpoint that records the event id of every call it gets. */
async function handlerServer(): Promise<{ url: string; ids: () => string[] }> {
  const sink = await sinkServer(cleanups);
  return { url: sink.url, ids: () => sink.bodies.map((b) => String(b.event_id)) };
}

async function mcpClient(url: string, name: string): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
  cleanups.push(() => client.close());
  return client;
}

async function race(store: 'sqlite' | 'redis'): Promise<void> {
  const api = await startFakeAnthropic();
  cleanups.push(() => api.close());
  const handler = await handlerServer();
  const dataDir = tmp();
  const secret = newSecret();
  const config = path.join(tmp(), 'agent.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      dispatch: { type: 'http', url: handler.url, secret: 'a-long-enough-test-secret' },
      approval: { tools: ['handle_dispute'] },
    }),
  );
  const storeArgs: string[] = [];
  if (store === 'redis') {
    const prefix = uniquePrefix('approvals');
    cleanups.push(async () => void (await deleteKeys(prefix)));
    storeArgs.push('--store', 'redis', '--redis-prefix', prefix);
  }
  const server = await startServe({
    dataDir,
    env: {
      STRIPE_WEBHOOK_SECRET: secret,
      ANTHROPIC_API_KEY: 'k',
      ANTHROPIC_BASE_URL: api.url,
      REDIS_URL,
    },
    args: ['--agent', '--config', config, '--concurrency', '4', ...storeArgs],
  });
  const ids: string[] = [];
  for (let i = 0; i < HELD; i++) {
    const event = buildTestEvent('charge.dispute.created') as {
      id: string;
      data: { object: { id: string } };
    };
    // Forty disputes, not one: events about one object are claimed one at a time.
    event.data.object.id = `${event.data.object.id}_${i}`;
    const payload = JSON.stringify(event);
    await postWebhook(server.url, payload, {
      'stripe-signature': signatureHeader(payload, secret),
    });
    ids.push(String(event.id));
  }
  await waitFor(
    async () => {
      const health = (await (await fetch(`${server.url}/healthz`)).json()) as {
        counts: { awaiting_approval: number };
      };
      return health.counts.awaiting_approval === HELD;
    },
    `${HELD} calls waiting for approval`,
    60_000,
  );

  const approver = await mcpClient(server.url, 'approver');
  const rejecter = await mcpClient(server.url, 'rejecter');
  const results = await Promise.all(
    ids.map(async (id) => {
      const [approved, rejected] = (await Promise.all([
        approver.callTool({ name: 'approve_action', arguments: { id } }),
        rejecter.callTool({ name: 'reject_action', arguments: { id, reason: 'not this one' } }),
      ])) as CallToolResult[];
      return { id, approved: approved!, rejected: rejected! };
    }),
  );

  const approvedIds: string[] = [];
  for (const { id, approved, rejected } of results) {
    // Exactly one of the two wins; the other is told why, in words.
    expect(Boolean(approved.isError) !== Boolean(rejected.isError), id).toBe(true);
    const loser = approved.isError ? approved : rejected;
    expect(JSON.stringify(loser.content)).toMatch(/not awaiting approval/);
    if (!approved.isError) approvedIds.push(id);
  }
  // Every approval dispatched once, no rejection dispatched.
  expect([...handler.ids()].sort()).toEqual([...approvedIds].sort());
  const storeFlags = store === 'redis' ? storeArgs : [];
  for (const id of ids.slice(0, 10)) {
    const shown = await runCli(
      ['events', 'show', id, '--json', '--data-dir', dataDir, ...storeFlags],
      {
        env: { REDIS_URL },
      },
    );
    const detail = JSON.parse(shown.stdout) as {
      status: string;
      history: { kind: string; outcome?: string }[];
    };
    expect(detail.status).toBe('acked');
    const dispatches = detail.history.filter((h) => h.kind === 'dispatch').length;
    const rejections = detail.history.filter((h) => h.outcome === 'rejected').length;
    expect(dispatches + rejections, id).toBe(1);
    expect(dispatches === 1, id).toBe(approvedIds.includes(id));
  }
  expect(await server.stop()).toEqual({ code: 0, signal: null });
}

describe('approve and reject racing from two MCP sessions', () => {
  it(`lets exactly one win for each of ${HELD} held calls on SQLite`, async () => {
    await race('sqlite');
  });

  it.skipIf(!redis.run)(
    `lets exactly one win for each of ${HELD} held calls on Redis${redis.skipNote}`,
    async () => {
      await race('redis');
    },
  );
});

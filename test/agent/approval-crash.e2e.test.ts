/**
 * An approval survives a crash (issue #19): a person approves a held call, the process is killed
 * (SIGKILL) while the handler holds it, and after a restart the agent loop dispatches exactly the
 * approved call again — no second model request, no attempt counted — on SQLite and on Redis.
 *
 * Needs the agent loop to ask operations/approvals.ts `approvedCall` right after it claims.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import type { EventBuffer } from '../../src/buffer/buffer.js';
import { openRedisBuffer } from '../../src/buffer/redis/store.js';
import { openSqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { APPROVED_CALL_INTERRUPTED } from '../../src/buffer/transitions.js';
import { idempotencyKey } from '../../src/dispatch/dispatch.js';
import { APPROVAL_LEASE_MS } from '../../src/operations/approvals.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { startFakeAnthropic } from '../helpers/fake-anthropic.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { runCli, startServe, waitFor } from '../helpers/spawn.js';
import { e2eScope, queueCounts, sinkServer } from '../helpers/e2e.js';

const redis = await redisGate();
const { cleanups, tmp } = e2eScope();

async function crash(store: 'sqlite' | 'redis'): Promise<void> {
  const api = await startFakeAnthropic();
  cleanups.push(() => api.close());
  // The handler holds the first call (until the process is killed) and answers later ones.
  const sink = await sinkServer(cleanups, (n) => (n === 1 ? 'hold' : 200));
  const dataDir = tmp();
  const secret = newSecret();
  const config = path.join(tmp(), 'agent.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      dispatch: { type: 'http', url: sink.url, secret: 'a-long-enough-test-secret' },
      approval: { tools: ['handle_dispute'] },
    }),
  );
  const storeArgs: string[] = [];
  const prefix = uniquePrefix('approval-crash');
  if (store === 'redis') {
    cleanups.push(async () => void (await deleteKeys(prefix)));
    storeArgs.push('--store', 'redis', '--redis-prefix', prefix);
  }
  const env = {
    STRIPE_WEBHOOK_SECRET: secret,
    ANTHROPIC_API_KEY: 'k',
    ANTHROPIC_BASE_URL: api.url,
    REDIS_URL,
  };
  const args = ['--agent', '--config', config, '--concurrency', '1', ...storeArgs];

  // The model decides once; the call is held for approval.
  const first = await startServe({ dataDir, env, args });
  const event = buildTestEvent('charge.dispute.created');
  const id = String(event.id);
  const payload = JSON.stringify(event);
  await postWebhook(first.url, payload, { 'stripe-signature': signatureHeader(payload, secret) });
  await waitFor(
    async () => (await queueCounts(first)).awaiting_approval === 1,
    'the call to wait for approval',
  );
  expect(api.requests).toHaveLength(1);

  // A person approves; the handler gets the call and holds it; the process is killed.
  const approver = new Client({ name: 'approver', version: '1.0.0' });
  await approver.connect(new StreamableHTTPClientTransport(new URL(`${first.url}/mcp`)));
  const approving = approver
    .callTool({ name: 'approve_action', arguments: { id } })
    .catch(() => null);
  await waitFor(() => sink.bodies.length === 1, 'the handler to get the approved call');
  first.child.kill('SIGKILL');
  expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
  // Closing ends the call at once (its answer would only time out: the server is gone).
  await approver.close().catch(() => {});
  expect(await approving).toBeNull();

  // The approver's lease runs out (two minutes, not waited for: the store's own expiry rule is
  // applied with its clock moved past the lease, as the restarted process would find it).
  const later = () => Date.now() + APPROVAL_LEASE_MS + 1_000;
  const swept: EventBuffer =
    store === 'redis'
      ? await openRedisBuffer({ url: REDIS_URL, prefix, now: later })
      : openSqliteBuffer(dataDir, { now: later });
  try {
    expect(await swept.recoverExpiredLeases()).toBe(1);
    expect(await swept.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
    expect((await swept.get(id))?.lastError).toMatch(new RegExp(`^${APPROVED_CALL_INTERRUPTED}`));
  } finally {
    await swept.close();
  }

  // After a restart the loop dispatches the approved call again, without asking the model.
  const second = await startServe({ dataDir, env, args });
  await waitFor(
    async () => (await queueCounts(second)).acked === 1 || api.requests.length > 1,
    'the approved call to be dispatched again and acked',
    60_000,
  );
  expect(
    api.requests,
    'the loop asked the model again instead of dispatching the approved call (approvedCall)',
  ).toHaveLength(1);
  expect(sink.bodies).toHaveLength(2);
  const [call, again] = sink.bodies;
  expect(again).toEqual(call);
  expect(again).toMatchObject({
    event_id: id,
    tool_call: { name: 'handle_dispute' },
    idempotency_key: idempotencyKey(id, 'handle_dispute'),
  });

  const shown = await runCli(
    ['events', 'show', id, '--json', '--data-dir', dataDir, ...storeArgs],
    {
      env: { REDIS_URL },
    },
  );
  expect(shown.code, shown.stderr).toBe(0);
  const detail = JSON.parse(shown.stdout) as {
    status: string;
    attempts: number;
    history: { kind: string; note?: string; outcome?: string }[];
  };
  expect(detail).toMatchObject({ status: 'acked', attempts: 0 });
  const kinds = detail.history.map((h) => h.kind);
  expect(kinds.filter((k) => k === 'decision')).toHaveLength(1);
  expect(kinds.slice(kinds.indexOf('resumed'))).toEqual([
    'resumed',
    'lease_expired',
    'claimed',
    'dispatch',
    'acked',
  ]);
  expect(detail.history.find((h) => h.kind === 'lease_expired')?.note).toMatch(
    /approved call was interrupted and will be dispatched again/,
  );
  expect(await second.stop()).toEqual({ code: 0, signal: null });
}

describe('an approval survives a crash', () => {
  it('dispatches the approved call again after kill -9 mid-dispatch, on SQLite', async () => {
    await crash('sqlite');
  }, 120_000);

  it.skipIf(!redis.run)(
    `dispatches the approved call again after kill -9 mid-dispatch, on Redis${redis.skipNote}`,
    async () => {
      await crash('redis');
    },
    120_000,
  );
});

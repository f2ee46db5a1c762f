/**
 * The guardrails as guarantees (issue #19): per-tool limits and the daily budget are counted in
 * the store, so they hold at any concurrency, across processes and across `kill -9` restarts; the
 * breaker is per process and shown per process. Real `serve --agent` processes on SQLite and
 * Redis, a fake Messages API over HTTP, a real HTTP handler.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { ownObject } from '../helpers/own-object.js';
import {
  decideFirstAction,
  startFakeAnthropic,
  type FakeAnthropic,
  type Responder,
} from '../helpers/fake-anthropic.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { runCli, startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';
import { e2eScope, queueCounts, sinkServer } from '../helpers/e2e.js';
import { deleteKeys, redisGate, uniquePrefix } from '../helpers/redis.js';

const { cleanups, tmp } = e2eScope();
const { run: redisRun } = await redisGate();

async function metrics(server: ServeHandle): Promise<string> {
  return (await fetch(`${server.url}/metrics`)).text();
}

async function mcp(server: ServeHandle): Promise<Client> {
  const client = new Client({ name: 'guardrails-store-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  cleanups.push(() => client.close());
  return client;
}

interface Setup {
  dataDir: string;
  config: string;
  secret: string;
  api: FakeAnthropic;
  /** Store flags for every process (`--store redis …`, or nothing for SQLite). */
  store: string[];
}

async function setup(config: unknown, respond?: Responder, store: string[] = []): Promise<Setup> {
  const api = await startFakeAnthropic(respond);
  cleanups.push(() => api.close());
  const config_ = path.join(tmp(), 'agent.json');
  fs.writeFileSync(config_, JSON.stringify(config));
  return { dataDir: tmp(), config: config_, secret: newSecret(), api, store };
}

function agent(s: Setup, extra: string[] = []): Promise<ServeHandle> {
  return startServe({
    dataDir: s.dataDir,
    env: {
      STRIPE_WEBHOOK_SECRET: s.secret,
      ANTHROPIC_API_KEY: 'k',
      ANTHROPIC_BASE_URL: s.api.url,
    },
    args: ['--agent', '--config', s.config, ...s.store, ...extra],
  });
}

async function send(s: Setup, server: ServeHandle, n: number, type = 'charge.dispute.created') {
  for (let i = 0; i < n; i++) {
    const payload = JSON.stringify(ownObject(buildTestEvent(type)));
    const answer = await postWebhook(server.url, payload, {
      'stripe-signature': signatureHeader(payload, s.secret),
    });
    expect(answer.body.status).toBe('queued');
  }
}

/**
 * Pauses every loop on the store from the CLI, as a person would, and waits until `servers` have
 * seen it: the events sent next wait for resumeAll, and are then there for the taking at once.
 */
async function pauseAll(s: Setup, ...servers: ServeHandle[]): Promise<void> {
  const r = await runCli(['pause', '--data-dir', s.dataDir, ...s.store, '--reason', 'queueing']);
  expect(r.code, r.stderr).toBe(0);
  for (const server of servers) {
    await waitFor(
      async () => /^stripe_events_agent_paused\{reason="manual"\} 1$/m.test(await metrics(server)),
      'the loop to see the pause',
    );
  }
}

async function resumeAll(s: Setup): Promise<void> {
  const r = await runCli(['resume', '--data-dir', s.dataDir, ...s.store]);
  expect(r.code, r.stderr).toBe(0);
}

describe('per-tool limits are a hard cap for the whole store', () => {
  it('dispatches at most 3 of 40 pending at --concurrency 16, and decides no more than it can dispatch', async () => {
    const sink = await sinkServer(cleanups);
    const s = await setup({
      limits: { handle_dispute: { per_hour: 3 } },
      dispatch: { type: 'http', url: sink.url, secret: 'a-long-enough-test-secret' },
    });
    const server = await agent(s, ['--concurrency', '16']);
    await pauseAll(s, server);
    await send(s, server, 40);
    await resumeAll(s);
    await waitFor(async () => {
      const c = await queueCounts(server);
      return c.acked === 3 && c.claimed === 0 && c.pending === 37;
    }, 'three dispatched, the rest back in the queue');
    // Settle, then look again: a fourth dispatch would show now.
    await waitFor(
      () => server.logs().some((l) => l.msg === 'per-hour limit reached: released'),
      'a refused slot',
    );
    expect(sink.bodies).toHaveLength(3);
    // The slot is reserved before the model is asked: no decision is spent on the other 37.
    expect(s.api.requests).toHaveLength(3);
    const c = await queueCounts(server);
    expect(c).toMatchObject({ acked: 3, dead: 0 });
    expect(await server.stop()).toEqual({ code: 0, signal: null });
    // A restart does not give the hour back.
    const again = await agent(s, ['--concurrency', '16']);
    await waitFor(
      () => again.logs().some((l) => l.msg === 'agent loop started'),
      'the restarted loop',
    );
    await waitFor(
      () => again.logs().some((l) => l.msg === 'per-hour limit reached: released'),
      'the restarted loop to find the hour full',
    );
    expect(sink.bodies).toHaveLength(3);
    expect(await again.stop()).toEqual({ code: 0, signal: null });
  });

  it.runIf(redisRun)(
    'holds across two agent processes on one Redis: at most 3 dispatches in all',
    async () => {
      const prefix = uniquePrefix('caps');
      cleanups.push(async () => void (await deleteKeys(prefix)));
      const sink = await sinkServer(cleanups);
      const s = await setup(
        {
          limits: { handle_dispute: { per_hour: 3 } },
          dispatch: { type: 'http', url: sink.url, secret: 'a-long-enough-test-secret' },
        },
        undefined,
        ['--store', 'redis', '--redis-prefix', prefix],
      );
      const a = await agent(s, ['--concurrency', '16']);
      const b = await agent(s, ['--concurrency', '16']);
      await pauseAll(s, a, b);
      await send(s, a, 40);
      await resumeAll(s);
      await waitFor(async () => {
        const c = await queueCounts(a);
        return c.acked === 3 && c.claimed === 0 && c.pending === 37;
      }, 'three dispatched in all, the rest back in the queue');
      expect(sink.bodies).toHaveLength(3);
      expect(s.api.requests.length).toBe(3);
      expect(await a.stop()).toEqual({ code: 0, signal: null });
      expect(await b.stop()).toEqual({ code: 0, signal: null });
    },
  );
});

/** Answers like decideFirstAction, reporting `tokens` of usage for every request. */
function costing(input: number, output: number, delayMs = 0): Responder {
  return async (req) => ({
    ...(await decideFirstAction(req)),
    usage: { input_tokens: input, output_tokens: output },
    delayMs,
  });
}

describe('the daily budget is a hard cap for the whole store', () => {
  it('makes one decision against a budget of one at --concurrency 64, and the note tells the real spend', async () => {
    const s = await setup({ budget: { daily_tokens: 1000 } }, costing(1000, 100));
    const server = await agent(s, ['--concurrency', '64']);
    await pauseAll(s, server);
    await send(s, server, 64);
    await resumeAll(s);
    await waitFor(
      async () => /^stripe_events_agent_paused\{reason="budget"\} 1$/m.test(await metrics(server)),
      'the budget pause',
    );
    await waitFor(async () => (await queueCounts(server)).acked === 1, 'the one decision acked');
    // Spend ≤ budget + one decision: one request of 1100 tokens.
    expect(s.api.requests).toHaveLength(1);
    const status = (await (await mcp(server)).callTool({ name: 'get_queue_status', arguments: {} }))
      .structuredContent as { agent: { paused: boolean; reason: string; note: string } };
    expect(status.agent).toMatchObject({ paused: true, reason: 'budget' });
    expect(status.agent.note).toMatch(/1100 of 1000 tokens spent/);
    const c = await queueCounts(server);
    expect(c).toMatchObject({ acked: 1, pending: 63, dead: 0, claimed: 0 });
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('spends at most one decision through five kill -9 restarts', async () => {
    // Every request takes long enough to be killed in the middle of it.
    const s = await setup({ budget: { daily_tokens: 1000 } }, costing(1000, 100, 60_000));
    let server = await agent(s);
    await pauseAll(s, server);
    await send(s, server, 5);
    await resumeAll(s);
    for (let round = 0; round < 5; round++) {
      if (round === 0) {
        await waitFor(() => s.api.requests.length === 1, 'the first model request');
      } else {
        // The request the killed process reserved still counts: the loop pauses instead.
        await waitFor(
          async () =>
            /^stripe_events_agent_paused\{reason="budget"\} 1$/m.test(await metrics(server)),
          `the budget pause after restart ${round}`,
        );
      }
      await server.stop('SIGKILL');
      server = await agent(s);
    }
    await waitFor(
      async () => /^stripe_events_agent_paused\{reason="budget"\} 1$/m.test(await metrics(server)),
      'the budget pause after the last restart',
    );
    expect(s.api.requests.length).toBeLessThanOrEqual(2);
    const paused = server.logs().find((l) => l.msg === 'agent loop paused');
    expect(String(paused?.note)).toMatch(/reserved by requests in flight or interrupted/);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('pauses say where they hold', () => {
  it("shows one process's breaker as that process's, while the other goes on", async () => {
    const failing = await sinkServer(cleanups, 503);
    const working = await sinkServer(cleanups);
    const s = await setup({
      breaker: { failures: 2 },
      dispatch: { type: 'http', url: failing.url, secret: 'a-long-enough-test-secret' },
    });
    const a = await agent(s, ['--concurrency', '1']);
    await send(s, a, 4);
    await waitFor(
      async () => /^stripe_events_agent_paused\{reason="breaker"\} 1$/m.test(await metrics(a)),
      "A's breaker",
    );
    // B on the same store, with a handler that works, handles what A could not.
    const configB = path.join(tmp(), 'b.json');
    fs.writeFileSync(
      configB,
      JSON.stringify({
        dispatch: { type: 'http', url: working.url, secret: 'a-long-enough-test-secret' },
      }),
    );
    const b = await startServe({
      dataDir: s.dataDir,
      env: {
        STRIPE_WEBHOOK_SECRET: s.secret,
        ANTHROPIC_API_KEY: 'k',
        ANTHROPIC_BASE_URL: s.api.url,
      },
      args: ['--agent', '--config', configB],
    });
    // A nacked the first failure (a retry later), and gave the one that tripped its breaker back
    // without an attempt; B, with a handler that works, handles that one and the other two.
    await waitFor(async () => (await queueCounts(b)).acked === 3, 'B to handle the events A left');
    expect(await metrics(b)).toMatch(/^stripe_events_agent_paused\{reason="breaker"\} 0$/m);
    const status = (await (await mcp(b)).callTool({ name: 'get_queue_status', arguments: {} }))
      .structuredContent as {
      agent: {
        paused: boolean;
        instances: { pid: number; state: string; reason: string | null }[];
      };
    };
    // Not a store-wide pause: the queue is not paused; A's own record says it waits, and why.
    expect(status.agent.paused).toBe(false);
    const byPid = new Map(status.agent.instances.map((i) => [i.pid, i]));
    expect(byPid.get(a.child.pid!)).toMatchObject({ state: 'paused', reason: 'breaker' });
    expect(byPid.get(b.child.pid!)).toMatchObject({ state: 'running', reason: null });
    expect(await a.stop()).toEqual({ code: 0, signal: null });
    expect(await b.stop()).toEqual({ code: 0, signal: null });
  });
});

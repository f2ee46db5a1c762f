/**
 * Guardrails in the live loop (issue #14): a daily token budget pauses the loop with events left
 * pending and none dead; a handler that always fails trips the circuit breaker instead of burning
 * through the queue. Real `serve --agent` processes, a fake Messages API over HTTP.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { ownObject } from '../helpers/own-object.js';
import { startFakeAnthropic } from '../helpers/fake-anthropic.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { runCli, startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { e2eScope, queueCounts, sinkServer } from '../helpers/e2e.js';

const { cleanups, tmp } = e2eScope();

async function metrics(server: ServeHandle): Promise<string> {
  return (await fetch(`${server.url}/metrics`)).text();
}

async function start(config: unknown, apiUrl: string, extra: string[] = []) {
  const dataDir = tmp();
  const file = path.join(tmp(), 'agent.json');
  fs.writeFileSync(file, JSON.stringify(config));
  const secret = newSecret();
  const server = await startServe({
    dataDir,
    env: { STRIPE_WEBHOOK_SECRET: secret, ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: apiUrl },
    args: ['--agent', '--config', file, ...extra],
  });
  const send = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const event = ownObject(buildTestEvent('charge.dispute.created'));
      const payload = JSON.stringify(event);
      const answer = await postWebhook(server.url, payload, {
        'stripe-signature': signatureHeader(payload, secret),
      });
      expect(answer.body.status).toBe('queued');
    }
  };
  return { server, send, dataDir };
}

async function mcp(server: ServeHandle): Promise<Client> {
  const client = new Client({ name: 'guardrails-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  cleanups.push(() => client.close());
  return client;
}

describe('guardrails in the live loop', () => {
  it('pauses on pause_agent (MCP) and runs again on `resume` (CLI)', async () => {
    const api = await startFakeAnthropic();
    cleanups.push(() => api.close());
    const { server, send, dataDir } = await start({}, api.url, ['--concurrency', '2']);
    const client = await mcp(server);
    const logs: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(String((n.params.data as { message?: string }).message ?? ''));
    });
    // Log notifications go to sessions that set a level (and to every session by default).
    await client.setLoggingLevel('info');
    const paused = await client.callTool({
      name: 'pause_agent',
      arguments: { reason: 'investigating refunds' },
    });
    expect(paused.isError).toBeFalsy();
    await waitFor(
      async () => /^stripe_events_agent_paused\{reason="manual"\} 1$/m.test(await metrics(server)),
      'the manual pause in /metrics',
    );
    await send(4);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await queueCounts(server)).pending).toBe(4);
    expect(api.requests).toHaveLength(0);
    const status = (await client.callTool({ name: 'get_queue_status', arguments: {} }))
      .structuredContent as { agent: Record<string, unknown> };
    expect(status.agent).toMatchObject({
      paused: true,
      reason: 'manual',
      note: 'investigating refunds',
    });
    expect(String(status.agent.by)).toMatch(/^mcp:/);
    await waitFor(
      () => logs.some((m) => /agent loop paused \(manual\): investigating refunds/.test(m)),
      'the pause as an MCP log notification',
    );
    const resumed = await runCli(['resume', '--data-dir', dataDir]);
    expect(resumed.code).toBe(0);
    await waitFor(async () => (await queueCounts(server)).acked === 4, 'the events to be handled');
    expect(server.logs().some((l) => l.msg === 'agent loop resumed')).toBe(true);
    await waitFor(
      () => logs.includes('agent loop resumed'),
      'the resume as an MCP log notification',
    );
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('pauses at the daily token budget: events wait pending, none dead', async () => {
    const api = await startFakeAnthropic();
    cleanups.push(() => api.close());
    const { server, send } = await start({ budget: { daily_tokens: 2500 } }, api.url, [
      '--concurrency',
      '1',
    ]);
    await send(10);
    await waitFor(
      async () => /^stripe_events_agent_paused\{reason="budget"\} 1$/m.test(await metrics(server)),
      'the budget pause in /metrics',
    );
    // The fake reports about a thousand tokens a decision (four characters a token), so the
    // budget runs out after two or three. Settle: nothing more is decided while paused.
    await new Promise((r) => setTimeout(r, 1500));
    const c = await queueCounts(server);
    expect(c.acked).toBeGreaterThanOrEqual(2);
    expect(c.acked).toBeLessThanOrEqual(4);
    expect(c.pending).toBe(10 - c.acked!);
    expect(c.dead).toBe(0);
    expect(api.requests).toHaveLength(c.acked!);
    const paused = server.logs().find((l) => l.msg === 'agent loop paused');
    expect(paused).toMatchObject({ reason: 'budget' });
    const spent = Number(/reached: (\d+) of 2500 tokens spent/.exec(String(paused?.note))?.[1]);
    expect(spent).toBeGreaterThanOrEqual(2500);
    // It paused at the first decision past the budget, not later.
    expect(spent - spent / c.acked!).toBeLessThan(2500);
    // Any MCP client sees the pause and why.
    const client = await mcp(server);
    const status = (await client.callTool({ name: 'get_queue_status', arguments: {} }))
      .structuredContent as { agent: { paused: boolean; reason: string; until: string } };
    expect(status.agent).toMatchObject({ paused: true, reason: 'budget' });
    expect(new Date(status.agent.until).getUTCHours()).toBe(0);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('trips the circuit breaker on a handler that always fails, killing no event', async () => {
    const api = await startFakeAnthropic();
    cleanups.push(() => api.close());
    const handler = await sinkServer(cleanups, 503);
    const url = handler.url;
    const { server, send } = await start(
      { dispatch: { type: 'http', url, secret: 'a-long-enough-test-secret' } },
      api.url,
      ['--concurrency', '1', '--max-attempts', '2'],
    );
    await send(10);
    await waitFor(
      async () => /^stripe_events_agent_paused\{reason="breaker"\} 1$/m.test(await metrics(server)),
      'the breaker pause in /metrics',
    );
    await new Promise((r) => setTimeout(r, 12_000 - 0));
    const c = await queueCounts(server);
    // Five events tried (three HTTP attempts each), then the loop waits out the pause.
    expect(handler.bodies.length).toBeLessThanOrEqual(5 * 3);
    expect(c.dead).toBe(0);
    expect(c.pending).toBe(10);
    expect(server.logs().some((l) => l.msg === 'circuit breaker open: pausing the loop')).toBe(
      true,
    );
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

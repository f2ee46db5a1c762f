import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import {
  decideFirstAction,
  startFakeAnthropic,
  type FakeAnthropic,
} from '../helpers/fake-anthropic.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { runCli, startServe, waitFor } from '../helpers/spawn.js';
import { e2eScope, sinkServer } from '../helpers/e2e.js';

const { cleanups, tmp } = e2eScope();

/** A handler endpoint for the http sink that counts calls per idempotency key. */
async function handlerServer(): Promise<{ url: string; calls: Map<string, number> }> {
  const sink = await sinkServer(cleanups);
  return {
    url: sink.url,
    get calls() {
      const calls = new Map<string, number>();
      for (const b of sink.bodies) {
        const key = String(b.idempotency_key);
        calls.set(key, (calls.get(key) ?? 0) + 1);
      }
      return calls;
    },
  };
}

async function fake(): Promise<FakeAnthropic> {
  const f = await startFakeAnthropic();
  cleanups.push(() => f.close());
  return f;
}

describe('agent process', () => {
  it('refuses to start without ANTHROPIC_API_KEY, naming it (exit 2)', async () => {
    const result = await runCli(['agent', '--port', '0', '--data-dir', tmp()], {
      env: { ANTHROPIC_API_KEY: undefined, STRIPE_WEBHOOK_SECRET: newSecret() },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/ANTHROPIC_API_KEY/);
  });

  it('handles an event exactly once when the process is killed mid-decision', async () => {
    const api = await fake();
    const handler = await handlerServer();
    const dataDir = tmp();
    const configFile = path.join(tmp(), 'agent.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        dispatch: { type: 'http', url: handler.url, secret: 'a-long-enough-test-secret' },
      }),
    );
    const secret = newSecret();
    const env = {
      STRIPE_WEBHOOK_SECRET: secret,
      ANTHROPIC_API_KEY: 'test-key',
      ANTHROPIC_BASE_URL: api.url,
    };
    const args = ['--agent', '--config', configFile, '--lease-seconds', '5', '--concurrency', '1'];

    // The first process claims the event and asks the model, which never answers.
    api.respond = () => ({ hang: true });
    const first = await startServe({ dataDir, env, args });
    const event = buildTestEvent('charge.dispute.created');
    const payload = JSON.stringify(event);
    const answer = await postWebhook(first.url, payload, {
      'stripe-signature': signatureHeader(payload, secret),
    });
    expect(answer.body.status).toBe('queued');
    await waitFor(() => api.requests.length > 0, 'the first model request');
    first.child.kill('SIGKILL');
    await first.exited;

    // The second process finds the claim, waits for its lease to expire, and handles it once.
    api.respond = decideFirstAction;
    const second = await startServe({ dataDir, env, args });
    // The lease (5 s, the shortest allowed) must expire first: a generous deadline.
    await waitFor(
      async () => {
        const health = (await (await fetch(`${second.url}/healthz`)).json()) as {
          counts: { acked: number };
        };
        return health.counts.acked === 1;
      },
      'the event to be acked',
      60_000,
    );
    expect([...handler.calls.values()]).toEqual([1]);
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).toMatch(
      /^stripe_events_agent_decisions_total\{tool="handle_dispute",action="accept"\} 1$/m,
    );
    expect(metrics).toMatch(/^stripe_events_agent_dispatches_total\{outcome="dispatched"\} 1$/m);
    expect(metrics).toMatch(/^stripe_events_agent_tokens_total\{direction="input"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^stripe_events_agent_calls_total 1$/m);
    const shown = await runCli([
      'events',
      'show',
      String(event.id),
      '--json',
      '--data-dir',
      dataDir,
    ]);
    const detail = JSON.parse(shown.stdout);
    const kinds = detail.history.map((h: { kind: string }) => h.kind);
    expect(kinds).toEqual(
      expect.arrayContaining(['claimed', 'lease_expired', 'decision', 'dispatch', 'acked']),
    );
    expect(detail.history.find((h: { kind: string }) => h.kind === 'dispatch')).toMatchObject({
      outcome: 'dispatched',
    });
    expect(await second.stop()).toEqual({ code: 0, signal: null });
  });

  it("asks the config file's model, unless ANTHROPIC_MODEL names another", async () => {
    const api = await fake();
    const configFile = path.join(tmp(), 'agent.json');
    fs.writeFileSync(configFile, JSON.stringify({ model: 'claude-haiku-5-5' }));
    const secret = newSecret();
    const env = {
      STRIPE_WEBHOOK_SECRET: secret,
      ANTHROPIC_API_KEY: 'test-key',
      ANTHROPIC_BASE_URL: api.url,
    };
    for (const [extra, model] of [
      [{}, 'claude-haiku-5-5'],
      [{ ANTHROPIC_MODEL: 'claude-opus-5-5' }, 'claude-opus-5-5'],
    ] as const) {
      const server = await startServe({
        dataDir: tmp(),
        env: { ...env, ...extra },
        args: ['--agent', '--config', configFile, '--dry-run'],
      });
      const seen = api.requests.length;
      const payload = JSON.stringify(buildTestEvent('charge.dispute.created'));
      await postWebhook(server.url, payload, {
        'stripe-signature': signatureHeader(payload, secret),
      });
      await waitFor(() => api.requests.length > seen, 'a model request');
      expect(api.requests.at(-1)!.body.model).toBe(model);
      await server.stop();
    }
  });
});

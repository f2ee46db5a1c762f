/**
 * The claim's token fences every worker (issue #11): real `serve --agent` processes on one store,
 * a fake Messages API over HTTP, and handlers that count what reaches them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import {
  decideFirstAction,
  startFakeAnthropic,
  type FakeAnthropic,
  type Responder,
} from '../helpers/fake-anthropic.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { runCli, startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';
import { e2eScope, sinkServer } from '../helpers/e2e.js';

const { cleanups, tmp } = e2eScope();

async function fake(): Promise<FakeAnthropic> {
  const f = await startFakeAnthropic();
  cleanups.push(() => f.close());
  return f;
}

/** An http sink endpoint that counts the calls it receives. */
async function handlerServer(): Promise<{ url: string; calls: () => number }> {
  const sink = await sinkServer(cleanups);
  return { url: sink.url, calls: () => sink.bodies.length };
}

/** Answers the first model request only when `release()` is called; every later one at once. */
function heldFirst(): { respond: Responder; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let n = 0;
  return {
    release,
    respond: async (req) => {
      n += 1;
      if (n === 1) await gate;
      return decideFirstAction(req);
    },
  };
}

function writeConfig(config: unknown): string {
  const file = path.join(tmp(), 'agent.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

async function send(server: ServeHandle, secret: string): Promise<string> {
  const event = buildTestEvent('charge.dispute.created');
  const payload = JSON.stringify(event);
  const answer = await postWebhook(server.url, payload, {
    'stripe-signature': signatureHeader(payload, secret),
  });
  expect(answer.body.status).toBe('queued');
  return String(event.id);
}

async function history(dataDir: string, id: string): Promise<{ kind: string; by?: string }[]> {
  const shown = await runCli(['events', 'show', id, '--json', '--data-dir', dataDir]);
  expect(shown.code).toBe(0);
  return JSON.parse(shown.stdout).history;
}

async function counts(server: ServeHandle): Promise<Record<string, number>> {
  const health = (await (await fetch(`${server.url}/healthz`)).json()) as {
    counts: Record<string, number>;
  };
  return health.counts;
}

describe('agent claims are fenced by their token', () => {
  it('dispatches once when a worker frozen past its lease comes back after another finished', async () => {
    const api = await fake();
    const held = heldFirst();
    api.respond = held.respond;
    const handler = await handlerServer();
    const dataDir = tmp();
    const secret = newSecret();
    const env = {
      STRIPE_WEBHOOK_SECRET: secret,
      ANTHROPIC_API_KEY: 'test-key',
      ANTHROPIC_BASE_URL: api.url,
    };
    const config = writeConfig({
      dispatch: { type: 'http', url: handler.url, secret: 'a-long-enough-test-secret' },
    });
    const args = ['--agent', '--config', config, '--lease-seconds', '5', '--concurrency', '1'];

    const first = await startServe({ dataDir, env, args });
    const id = await send(first, secret);
    await waitFor(() => api.requests.length === 1, 'the first worker to ask the model');
    // Frozen while its model call is in flight, past its lease.
    first.child.kill('SIGSTOP');
    cleanups.push(() => void first.child.kill('SIGCONT'));

    const second = await startServe({ dataDir, env, args });
    await waitFor(
      async () => (await counts(second)).acked === 1,
      'the second worker to finish',
      30_000,
    );
    expect(handler.calls()).toBe(1);

    // The first comes back and gets its (late) decision: its claim is gone, so nothing happens.
    held.release();
    first.child.kill('SIGCONT');
    await waitFor(
      () => first.logs().some((l) => l.msg === 'claim lost: abandoning the event'),
      'the first worker to abandon the event',
    );
    expect(handler.calls()).toBe(1);
    const kinds = (await history(dataDir, id)).map((h) => h.kind);
    expect(kinds.filter((k) => k === 'dispatch')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'acked')).toHaveLength(1);
    expect(kinds).toContain('lease_expired');
    expect(await second.stop()).toEqual({ code: 0, signal: null });
    expect(await first.stop()).toEqual({ code: 0, signal: null });
  });

  it('renews the lease of a handler slower than the lease, and dispatches once', async () => {
    const api = await fake();
    const dataDir = tmp();
    const secret = newSecret();
    const marks = path.join(tmp(), 'calls.log');
    const module = path.join(tmp(), 'handlers.mjs');
    // Twice the lease: without renewal the claim would expire and the second worker take it.
    fs.writeFileSync(
      module,
      `import fs from 'node:fs';
export async function handle_dispute(input, { idempotency_key }) {
  fs.appendFileSync(${JSON.stringify(marks)}, idempotency_key + '\\n');
  await new Promise((r) => setTimeout(r, 10_000));
}
`,
    );
    const config = writeConfig({ dispatch: { type: 'module', path: module } });
    const server = await startServe({
      dataDir,
      env: { STRIPE_WEBHOOK_SECRET: secret, ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: api.url },
      args: ['--agent', '--config', config, '--lease-seconds', '5', '--concurrency', '2'],
    });
    const id = await send(server, secret);
    await waitFor(async () => (await counts(server)).acked === 1, 'the slow dispatch', 40_000);
    expect(fs.readFileSync(marks, 'utf8').trim().split('\n')).toHaveLength(1);
    const kinds = (await history(dataDir, id)).map((h) => h.kind);
    expect(kinds).not.toContain('lease_expired');
    expect(kinds.filter((k) => k === 'claimed')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'dispatch')).toHaveLength(1);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it("drops the agent's late decision when a person acks the event it is deciding", async () => {
    const api = await fake();
    const held = heldFirst();
    api.respond = held.respond;
    const handler = await handlerServer();
    const dataDir = tmp();
    const secret = newSecret();
    const config = writeConfig({
      dispatch: { type: 'http', url: handler.url, secret: 'a-long-enough-test-secret' },
    });
    const server = await startServe({
      dataDir,
      env: { STRIPE_WEBHOOK_SECRET: secret, ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: api.url },
      args: ['--agent', '--config', config, '--concurrency', '1'],
    });
    const id = await send(server, secret);
    await waitFor(() => api.requests.length === 1, 'the worker to ask the model');
    const acked = await runCli(['events', 'ack', id, '--data-dir', dataDir, '--note', 'by hand']);
    expect(acked.code).toBe(0);
    held.release();
    await waitFor(
      () => server.logs().some((l) => l.msg === 'claim lost: abandoning the event'),
      'the worker to abandon the event',
    );
    expect(handler.calls()).toBe(0);
    const entries = await history(dataDir, id);
    expect(entries.map((h) => h.kind)).not.toContain('dispatch');
    const ack = entries.filter((h) => h.kind === 'acked');
    expect(ack).toHaveLength(1);
    expect(ack[0]?.by).toMatch(/^cli:/);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

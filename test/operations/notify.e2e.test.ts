/**
 * Notifications and expiry end to end (issue #20.6–7), with real processes: `serve --agent` over a
 * fake Anthropic holds each dispute for approval, and a fake Slack endpoint and a signed-webhook
 * receiver (HTTP on port 0, loopback allowed by the config) get exactly one "waiting" message per
 * held call, with a console link that works and the customer's text escaped. On Redis, two
 * instances with a short `expires_after` expire each held call exactly once, and tell people once.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { ownObject } from '../helpers/own-object.js';
import { SIGNATURE_HEADER } from '../../src/dispatch/dispatch.js';
import { startFakeAnthropic } from '../helpers/fake-anthropic.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { runCli, startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';
import { e2eScope, sinkServer, type Cleanups } from '../helpers/e2e.js';

const redis = await redisGate();
const { cleanups, tmp } = e2eScope();

const EVIL = 'Refund me <!channel> <https://evil.example|click> & <@U123>';
const WEBHOOK_SECRET = 'notify-webhook-test-secret';

interface Received {
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** An endpoint that records each POST and answers 200. */
async function receiver(cleanups: Cleanups): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ body, headers: req.headers });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

function configFile(
  slackUrl: string,
  webhookUrl: string,
  approval: Record<string, unknown> = {},
): string {
  const file = path.join(tmp(), 'config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      approval: { tools: ['handle_dispute'], ...approval },
      notify: {
        allow_http_loopback: true,
        slack: { webhook_url: slackUrl },
        webhook: { url: webhookUrl, secret: WEBHOOK_SECRET },
      },
    }),
  );
  return file;
}

async function postDispute(server: ServeHandle, secret: string, text?: string): Promise<string> {
  const event = ownObject(buildTestEvent('charge.dispute.created'));
  const object = (event.data as { object: Record<string, unknown> }).object;
  if (text !== undefined) {
    object.evidence = { ...(object.evidence as object), product_description: text };
  }
  const payload = JSON.stringify(event);
  const res = await postWebhook(server.url, payload, {
    'stripe-signature': signatureHeader(payload, secret),
  });
  expect(res.status).toBe(200);
  return String(event.id);
}

const slackTexts = (got: Received[]) =>
  got.map((r) => (JSON.parse(r.body) as { text: string }).text);
const waitingFor = (texts: string[], id: string) =>
  texts.filter((t) => t.startsWith('*A call waits for approval*') && t.includes(`Event: ${id}`));

function verifies(received: Received, secret: string): boolean {
  const header = String(received.headers[SIGNATURE_HEADER.toLowerCase()] ?? '');
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const expected = crypto
    .createHmac('sha256', secret)
    .update(`${parts.t}.${received.body}`)
    .digest('hex');
  return (
    typeof parts.v1 === 'string' &&
    parts.v1.length === expected.length &&
    crypto.timingSafeEqual(Buffer.from(parts.v1), Buffer.from(expected))
  );
}

describe('notifications from serve --agent', () => {
  it('one Slack message and one signed webhook per waiting call, escaped, with a working link', async () => {
    const api = await startFakeAnthropic();
    cleanups.push(() => api.close());
    const slack = await receiver(cleanups);
    const hook = await receiver(cleanups);
    const secret = newSecret();
    const server = await startServe({
      dataDir: tmp(),
      env: { STRIPE_WEBHOOK_SECRET: secret, ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: api.url },
      args: ['--agent', '--config', configFile(slack.url, hook.url)],
    });
    const ids = [
      await postDispute(server, secret, EVIL),
      await postDispute(server, secret),
      await postDispute(server, secret),
    ];
    await waitFor(
      () => ids.every((id) => waitingFor(slackTexts(slack.got), id).length === 1),
      'one Slack message per held call',
    );
    await waitFor(() => hook.got.length >= ids.length, 'one webhook per held call');
    const texts = slackTexts(slack.got);
    for (const id of ids) expect(waitingFor(texts, id), id).toHaveLength(1);

    // Customer-written text is escaped: no mention, no link but ours.
    const evil = waitingFor(texts, ids[0]!)[0]!;
    expect(evil).toContain(
      '&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; &lt;@U123&gt;',
    );
    expect(evil).not.toMatch(/<!channel>|<https:\/\/evil|<@U123>/);
    expect(evil).toMatch(/Amount: \$[\d,]+\.\d\d/);
    expect(evil).toMatch(/Expires: \d{4}-\d\d-\d\dT/);
    expect(evil).toContain('Why: ');
    const links = [...evil.matchAll(/<([^|>]+)\|Open in the console>/g)].map((m) => m[1]!);
    expect(links).toEqual([`${server.url}/console/event/${encodeURIComponent(ids[0]!)}`]);
    const page = await fetch(links[0]!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(ids[0]!);

    // The webhook: JSON, signed like the http sink, no secret in it.
    const bodies = hook.got.map(
      (r) => JSON.parse(r.body) as { kind: string; event: { id: string } },
    );
    expect(
      bodies
        .filter((b) => b.kind === 'waiting')
        .map((b) => b.event.id)
        .sort(),
    ).toEqual([...ids].sort());
    for (const received of hook.got) {
      expect(verifies(received, WEBHOOK_SECRET)).toBe(true);
      expect(verifies(received, 'another-secret-entirely')).toBe(false);
      expect(received.body).not.toContain(WEBHOOK_SECRET);
      expect(received.body).not.toContain(secret);
    }
    for (const text of texts) expect(text).not.toContain(secret);
    // Counted in /metrics, by target and result.
    await waitFor(async () => {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      return (
        /stripe_events_notifications_total\{target="slack",result="sent"\} 3\b/.test(metrics) &&
        /stripe_events_notifications_total\{target="webhook",result="sent"\} 3\b/.test(metrics)
      );
    }, 'the notifications counted in /metrics');
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('the agent pausing', () => {
  it("tells people once when this loop's circuit breaker opens", async () => {
    const api = await startFakeAnthropic();
    cleanups.push(() => api.close());
    const slack = await receiver(cleanups);
    const handler = await sinkServer(cleanups, 500);
    const secret = newSecret();
    const file = path.join(tmp(), 'breaker.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        dispatch: { type: 'http', url: handler.url, secret: 'a-long-enough-test-secret' },
        breaker: { failures: 2 },
        notify: { allow_http_loopback: true, slack: { webhook_url: slack.url } },
      }),
    );
    const server = await startServe({
      dataDir: tmp(),
      env: { STRIPE_WEBHOOK_SECRET: secret, ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: api.url },
      args: ['--agent', '--config', file],
    });
    for (let i = 0; i < 3; i++) await postDispute(server, secret);
    const paused = () =>
      slackTexts(slack.got).filter((t) => t.startsWith('*The agent paused (breaker)*'));
    await waitFor(() => paused().length >= 1, 'a breaker notice', 30_000);
    expect(paused()).toHaveLength(1);
    expect(paused()[0]).toContain('<' + server.url + '/console|Open the console>');
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

describe.skipIf(!redis.run)(
  `approvals expire across two instances on Redis${redis.skipNote}`,
  () => {
    it('applies the default once per held call and tells people once', async () => {
      const api = await startFakeAnthropic();
      cleanups.push(() => api.close());
      const slack = await receiver(cleanups);
      const hook = await receiver(cleanups);
      const secret = newSecret();
      const prefix = uniquePrefix('expiry-e2e');
      cleanups.push(async () => void (await deleteKeys(prefix)));
      const config = configFile(slack.url, hook.url, { expires_after: '3s' });
      const env = {
        STRIPE_WEBHOOK_SECRET: secret,
        ANTHROPIC_API_KEY: 'k',
        ANTHROPIC_BASE_URL: api.url,
        REDIS_URL,
      };
      const args = ['--agent', '--config', config, '--store', 'redis', '--redis-prefix', prefix];
      const a = await startServe({ dataDir: tmp(), env, args });
      const b = await startServe({ dataDir: tmp(), env, args });
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await postDispute(i % 2 ? a : b, secret));
      const expiredOf = (id: string) =>
        slackTexts(slack.got).filter(
          (t) => t.startsWith('*An approval expired') && t.includes(`Event: ${id}`),
        );
      await waitFor(
        () => ids.every((id) => expiredOf(id).length >= 1),
        'an expired message per call',
        30_000,
      );
      // Both instances keep sweeping: wait for two more sweeps' worth before counting.
      const settled = Date.now() + 4_500;
      await waitFor(() => Date.now() > settled, 'two more sweeps');
      const texts = slackTexts(slack.got);
      for (const id of ids) {
        expect(waitingFor(texts, id), id).toHaveLength(1);
        expect(expiredOf(id), id).toHaveLength(1);
        expect(expiredOf(id)[0]).toContain(
          'Why: expired: the approval was not given within 3s; rejected by default',
        );
        const shown = await runCli(
          ['events', 'show', id, '--json', '--store', 'redis', '--redis-prefix', prefix],
          { env: { REDIS_URL } },
        );
        const detail = JSON.parse(shown.stdout) as {
          status: string;
          outcome: string | null;
          history: { kind: string; by?: string; outcome?: string }[];
        };
        expect(detail).toMatchObject({ status: 'acked', outcome: 'expired' });
        expect(
          detail.history.filter((h) => h.kind === 'decision' && h.outcome === 'expired'),
        ).toHaveLength(1);
      }
      const hookBodies = hook.got.map((r) => JSON.parse(r.body) as { kind: string });
      expect(hookBodies.filter((h) => h.kind === 'expired')).toHaveLength(ids.length);
      expect(await a.stop()).toEqual({ code: 0, signal: null });
      expect(await b.stop()).toEqual({ code: 0, signal: null });
    });
  },
);

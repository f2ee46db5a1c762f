/**
 * Notification deliveries (src/operations/notify/queue.ts, targets.ts) against real HTTP endpoints
 * on port 0: a failing endpoint is retried a bounded number of times and then given up; a hanging
 * one times out; push never waits for the network; a full queue drops its oldest delivery and
 * counts it. And the notice itself: Slack escaping, the bounded facts, no secret.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import { createLogger } from '../../src/logger.js';
import { expirySettings, sweepExpired } from '../../src/operations/expiry.js';
import { MAX_FACT_CHARS, pauseNotice, type Notice } from '../../src/operations/notify/notice.js';
import { startNotifier } from '../../src/operations/notify/notifier.js';
import { DeliveryQueue } from '../../src/operations/notify/queue.js';
import { escapeMrkdwn, slackMessage } from '../../src/operations/notify/slack.js';
import { slackTarget, webhookTarget } from '../../src/operations/notify/targets.js';
import { waitFor } from '../helpers/spawn.js';

const silent = createLogger({ level: 'silent' });
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An endpoint answering each request with `answer(n)`: a status, or 'hang'. */
async function endpoint(answer: (n: number) => number | 'hang') {
  let n = 0;
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      const a = answer(++n);
      if (a !== 'hang') res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, bodies };
}

const notice = (id = 'evt_1'): Notice => ({
  kind: 'waiting',
  title: 'A call waits for approval',
  at: new Date(0).toISOString(),
  event: {
    id,
    type: 'charge.dispute.created',
    tool: 'handle_dispute',
    action: 'accept',
    amount: '$4,120.00',
    amount_minor: 412_000,
    currency: 'usd',
    customer: 'cus_1',
    reason: 'approval required for handle_dispute',
    deadline: null,
    deadline_why: null,
    link: `http://127.0.0.1:1/console/event/${id}`,
    facts: {},
  },
  pause: null,
});

describe('the delivery queue', () => {
  it('retries a failing endpoint a bounded number of times, then gives up', async () => {
    const failing = await endpoint(() => 500);
    const queue = new DeliveryQueue({
      targets: [slackTarget(failing.url)],
      logger: silent,
      attempts: 3,
      backoffMs: () => 20,
    });
    closers.push(async () => queue.close());
    const started = performance.now();
    queue.push(notice());
    // push does not wait for the endpoint.
    expect(performance.now() - started).toBeLessThan(20);
    await queue.drained();
    expect(failing.bodies).toHaveLength(3);
    expect(queue.counts).toMatchObject({ sent: 0, retried: 2, failed: 1 });
  });

  it('does not retry a refusal that will not change (400), and succeeds after a 503', async () => {
    const refusing = await endpoint(() => 400);
    const flaky = await endpoint((n) => (n === 1 ? 503 : 200));
    const queue = new DeliveryQueue({
      targets: [slackTarget(refusing.url), webhookTarget(flaky.url, 'a-long-enough-secret')],
      logger: silent,
      attempts: 4,
      backoffMs: () => 10,
    });
    closers.push(async () => queue.close());
    queue.push(notice());
    await queue.drained();
    expect(refusing.bodies).toHaveLength(1);
    expect(flaky.bodies).toHaveLength(2);
    expect(queue.counts).toMatchObject({ sent: 1, failed: 1, retried: 1 });
  });

  it('times out a hanging endpoint and gives up after the attempts', async () => {
    const hanging = await endpoint(() => 'hang');
    const queue = new DeliveryQueue({
      targets: [slackTarget(hanging.url)],
      logger: silent,
      attempts: 2,
      timeoutMs: 100,
      backoffMs: () => 10,
    });
    closers.push(async () => queue.close());
    queue.push(notice());
    await queue.drained();
    expect(hanging.bodies).toHaveLength(2);
    expect(queue.counts.failed).toBe(1);
  });

  it('is bounded: when full, the oldest delivery is dropped and counted', async () => {
    const hanging = await endpoint(() => 'hang');
    const results: string[] = [];
    const queue = new DeliveryQueue({
      targets: [slackTarget(hanging.url)],
      logger: silent,
      capacity: 5,
      concurrency: 1,
      timeoutMs: 60_000,
      onResult: (_target, result) => results.push(result),
    });
    closers.push(async () => queue.close());
    for (let i = 0; i < 50; i++) queue.push(notice(`evt_${i}`));
    expect(queue.size).toBeLessThanOrEqual(5);
    expect(queue.counts.dropped).toBe(45);
    expect(results.filter((r) => r === 'dropped')).toHaveLength(45);
  });
});

describe('the Slack message', () => {
  it('escapes every value, so customer text is neither a mention nor a link', () => {
    expect(escapeMrkdwn('<!channel> <https://x|y> & <@U1>')).toBe(
      '&lt;!channel&gt; &lt;https://x|y&gt; &amp; &lt;@U1&gt;',
    );
    const n = notice('evt_<x>|y');
    n.event!.facts = { evidence_product_description: '<!here> *bold* <https://evil|click>' };
    n.event!.customer = '<!everyone>';
    const { text } = slackMessage(n);
    expect(text).not.toMatch(/<!here>|<!everyone>|<https:\/\/evil/);
    // The only link is ours.
    expect(text.match(/<[^&]/g)).toHaveLength(1);
    const pause = slackMessage(
      pauseNotice(
        {
          paused: true,
          reason: 'budget',
          by: 'agent:x',
          note: 'spent <!channel>',
          since: 0,
          until: 86_400_000,
        },
        'https://events.example.com',
      ),
    ).text;
    expect(pause).toContain('spent &lt;!channel&gt;');
    expect(pause).toContain('<https://events.example.com/console|Open the console>');
  });
});

describe('the notifier on the memory store', () => {
  it('tells of a held call and a dead event once each, and of a pause once, without blocking', async () => {
    const got = await endpoint(() => 200);
    const buffer = new MemoryBuffer({ maxAttempts: 1 });
    closers.push(() => buffer.close());
    const notifier = startNotifier({
      buffer,
      catalog: createCatalog(),
      notify: { slack: { webhook_url: got.url }, allow_http_loopback: true },
      publicUrl: 'https://events.example.com',
      settings: expirySettings({}),
      logger: silent,
    })!;
    closers.push(async () => notifier.close());
    const long = 'x'.repeat(2000);
    await buffer.append({
      id: 'evt_held',
      type: 'charge.dispute.created',
      created: 1_786_000_000,
      livemode: false,
      objectId: 'dp_1',
      payload: JSON.stringify({
        id: 'evt_held',
        data: {
          object: {
            id: 'dp_1',
            object: 'dispute',
            amount: 412_000,
            currency: 'usd',
            evidence: { product_description: long },
          },
        },
      }),
    });
    await buffer.append({
      id: 'evt_dies',
      type: 'charge.refunded',
      created: 1_786_000_000,
      livemode: false,
      objectId: 'ch_1',
      payload: '{}',
    });
    const claimed = await buffer.claim({ owner: 'w', leaseMs: 60_000, limit: 2 });
    const held = claimed.find((e) => e.id === 'evt_held')!;
    const dies = claimed.find((e) => e.id === 'evt_dies')!;
    await buffer.hold(held.id, held.leaseOwner!, 'approval required for handle_dispute', [
      { kind: 'decision', tool_call: { name: 'handle_dispute', input: { action: 'accept' } } },
    ]);
    await buffer.nack(dies.id, { token: dies.leaseOwner!, reason: 'the model chose nonsense' });
    await buffer.setAgentPause({
      paused: true,
      reason: 'manual',
      by: 'cli:test',
      note: 'lunch',
      since: 1000,
      until: null,
    });
    await waitFor(() => got.bodies.length >= 3, 'three messages');
    await notifier.queue.drained();
    const texts = got.bodies.map((b) => (JSON.parse(b) as { text: string }).text);
    expect(texts.filter((t) => t.includes('waits for approval'))).toHaveLength(1);
    expect(texts.filter((t) => t.includes('went dead'))).toHaveLength(1);
    expect(texts.filter((t) => t.includes('agent paused'))).toHaveLength(1);
    const waiting = texts.find((t) => t.includes('waits for approval'))!;
    expect(waiting).toContain('Amount: $4,120.00');
    expect(waiting).toContain('<https://events.example.com/console/event/evt_held|');
    // Customer text is bounded in the message.
    const description = waiting
      .split('\n')
      .find((l) => l.startsWith('evidence_product_description'))!;
    expect(description.length).toBeLessThan(MAX_FACT_CHARS + 40);
    expect(texts.find((t) => t.includes('went dead'))).toContain('the model chose nonsense');
  });

  it('a hanging endpoint never holds up the queue: holds and acks complete while deliveries wait', async () => {
    const hanging = await endpoint(() => 'hang');
    const buffer = new MemoryBuffer();
    closers.push(() => buffer.close());
    const notifier = startNotifier({
      buffer,
      catalog: createCatalog(),
      notify: { slack: { webhook_url: hanging.url }, allow_http_loopback: true },
      publicUrl: 'https://events.example.com',
      settings: expirySettings({}),
      logger: silent,
      delivery: { timeoutMs: 60_000, capacity: 10 },
    })!;
    closers.push(async () => notifier.close());
    for (let i = 0; i < 30; i++) {
      await buffer.append({
        id: `evt_h${i}`,
        type: 'charge.refunded',
        created: 1_786_000_000,
        livemode: false,
        objectId: null,
        payload: '{}',
      });
    }
    const claimed = await buffer.claim({ owner: 'w', leaseMs: 60_000, limit: 30 });
    for (const e of claimed) await buffer.hold(e.id, e.leaseOwner!, 'waits');
    await waitFor(() => hanging.bodies.length >= 2, 'deliveries hanging');
    for (const e of claimed) await buffer.ack(e.id, { by: 'cli:test' });
    expect((await buffer.stats()).counts.acked).toBe(30);
    // Bounded while the endpoint hangs: the oldest were dropped.
    expect(notifier.queue.size).toBeLessThanOrEqual(10 + 2);
    expect(notifier.queue.counts.dropped).toBeGreaterThan(0);
  });

  it('tells once that an approval expires soon, then once that it expired, with the deadline', async () => {
    const got = await endpoint(() => 200);
    const clock = { now: Date.parse('2026-12-05T10:00:00Z') };
    const buffer = new MemoryBuffer({ now: () => clock.now });
    closers.push(() => buffer.close());
    const settings = expirySettings({ expires_after: 2 * 3_600_000 });
    const notifier = startNotifier({
      buffer,
      catalog: createCatalog(),
      notify: {
        webhook: { url: got.url, secret: 'a-long-enough-secret' },
        allow_http_loopback: true,
      },
      publicUrl: 'https://events.example.com',
      settings,
      logger: silent,
    })!;
    closers.push(async () => notifier.close());
    await buffer.append({
      id: 'evt_soon',
      type: 'charge.dispute.created',
      created: 1_786_000_000,
      livemode: false,
      objectId: 'dp_1',
      payload: JSON.stringify({
        id: 'evt_soon',
        data: { object: { id: 'dp_1', object: 'dispute' } },
      }),
    });
    const [e] = await buffer.claim({ owner: 'w', leaseMs: 60_000 });
    await buffer.hold(e!.id, e!.leaseOwner!, 'approval required for handle_dispute', [
      { kind: 'decision', tool_call: { name: 'handle_dispute', input: { action: 'accept' } } },
    ]);
    const sweep = () =>
      sweepExpired({
        buffer,
        sink: { kind: 'record', dispatch: async () => ({ outcome: 'recorded' }) },
        settings,
        logger: silent,
        now: () => clock.now,
        onExpired: (applied) => notifier.expired(applied),
        onExpiringSoon: (soon) => notifier.expiringSoon(soon),
      });
    clock.now += 100 * 60_000; // 20 min left: before the warning, due 12 min ahead
    await sweep();
    clock.now += 10 * 60_000; // 10 min left: warned, once for all sweeps
    await sweep();
    await sweep();
    clock.now += 11 * 60_000;
    await sweep();
    await sweep();
    const kinds = async () => {
      await waitFor(() => got.bodies.length >= 3, 'three messages');
      await notifier.queue.drained();
      return got.bodies.map((b) => JSON.parse(b) as { kind: string; event: { deadline: string } });
    };
    const bodies = await kinds();
    expect(bodies.map((b) => b.kind)).toEqual(['waiting', 'expiring', 'expired']);
    expect(bodies[1]!.event.deadline).toBe('2026-12-05T12:00:00.000Z');
  });
});

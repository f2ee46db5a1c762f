import { decideByPerson } from '../../src/operations/person-decision.js';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { Guardrails } from '../../src/agent/guardrails.js';
import { AgentLoop, type AgentLoopOptions } from '../../src/agent/loop.js';
import type { EventBuffer, StoredEvent } from '../../src/buffer/buffer.js';
import { SqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import { summarize } from '../../src/buffer/summary.js';
import { eventBody } from '../../src/console/render.js';
import { idempotencyKey, type Sink } from '../../src/dispatch/dispatch.js';
import { createLogger } from '../../src/logger.js';
import { approveAction } from '../../src/operations/approvals.js';
import { createRecheck, NOT_RECHECKED, type Recheck } from '../../src/operations/fresh.js';
import { createQueueOperations } from '../../src/operations/queue.js';
import { createStripeClient } from '../../src/stripe/client.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { createObjectReader } from '../../src/stripe/objects.js';
import {
  decideFirstAction,
  startFakeAnthropic,
  userText,
  type FakeAnthropic,
  type Responder,
} from '../helpers/fake-anthropic.js';
import { startFakeStripe, type FakeStripe } from '../helpers/fake-stripe.js';
import { waitFor } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';

const catalog = createCatalog();
const silent = createLogger({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function anthropic(respond?: Responder): Promise<FakeAnthropic> {
  const fake = await startFakeAnthropic(respond);
  cleanups.push(() => fake.close());
  return fake;
}

async function stripeApi(): Promise<{ fake: FakeStripe; recheck: Recheck }> {
  const fake = await startFakeStripe();
  cleanups.push(() => fake.close());
  // No network retries: a test of "the API is down" should not wait out stripe-node's backoff.
  const stripe = createStripeClient({
    secretKey: fake.key,
    apiBase: fake.url,
    maxNetworkRetries: 0,
  });
  return { fake, recheck: createRecheck(createObjectReader(stripe, { rateLimitBackoffMs: 5 })) };
}

function store(): EventBuffer {
  const tmp = tempDir();
  cleanups.push(tmp.remove);
  const buffer = new SqliteBuffer({ file: path.join(tmp.dir, 'events.db'), maxAttempts: 3 });
  cleanups.push(() => buffer.close());
  return buffer;
}

/** Queues the event and serves its object, as it was when the event happened, from the fake. */
async function queue(
  buffer: EventBuffer,
  fake: FakeStripe,
  type: string,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; object: Record<string, any> }> {
  const event = { ...buildTestEvent(type), ...extra } as Record<string, any>;
  const object = structuredClone(event.data.object) as Record<string, any>;
  fake.objects[object.id] = object;
  await buffer.append({
    id: event.id,
    type: event.type,
    created: event.created,
    livemode: false,
    objectId: object.id,
    payload: JSON.stringify(event),
  });
  return { id: event.id, object };
}

function capturingSink() {
  const received: { tool: string; key: string }[] = [];
  const sink: Sink = {
    kind: 'capture',
    async dispatch(req) {
      received.push({ tool: req.tool_call.name, key: req.idempotency_key });
      return { outcome: 'dispatched' };
    },
  };
  return { sink, received };
}

function loop(
  buffer: EventBuffer,
  api: FakeAnthropic,
  over: Partial<AgentLoopOptions> = {},
): AgentLoop {
  const agent = new AgentLoop({
    buffer,
    catalog,
    client: new Anthropic({ apiKey: 'test-key', baseURL: api.url, maxRetries: 0 }),
    sink: capturingSink().sink,
    logger: silent,
    model: 'claude-test',
    concurrency: 2,
    maxTurns: 3,
    maxTokens: 512,
    retryBaseMs: 10,
    pollMs: 20,
    ...over,
  });
  agent.start();
  cleanups.push(() => agent.stop());
  return agent;
}

async function settled(buffer: EventBuffer, id: string, status: string): Promise<StoredEvent> {
  let found: StoredEvent | null = null;
  await waitFor(async () => {
    found = await buffer.get(id);
    return found?.status === status;
  }, `event ${id} to be ${status}`);
  return found!;
}

describe('fresh facts before deciding', () => {
  it('a dispute closed after the event: no model call, recorded superseded', async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    const { id, object } = await queue(buffer, fake, 'charge.dispute.created');
    object.status = 'won';
    const { sink, received } = capturingSink();
    loop(buffer, api, { recheck, sink });
    await settled(buffer, id, 'acked');
    expect(api.requests).toHaveLength(0);
    expect(received).toHaveLength(0);
    const history = await buffer.history(id);
    const note = history.find((h) => h.outcome === 'superseded');
    expect(note?.note).toBe(
      'superseded: the dispute is now won (status: won) (checked against Stripe before deciding); nothing was done',
    );
    expect(history.filter((h) => h.kind === 'decision')).toHaveLength(0);
    expect(fake.requests.some((r) => r.path === `/v1/disputes/${object.id}`)).toBe(true);
  });

  it('shows the model the facts as they are now, saying which changed', async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    const { id, object } = await queue(buffer, fake, 'charge.dispute.created');
    object.is_charge_refundable = !object.is_charge_refundable;
    const { sink, received } = capturingSink();
    loop(buffer, api, { recheck, sink });
    await settled(buffer, id, 'acked');
    const text = userText(api.requests[0]!);
    expect(text).toMatch(
      /Facts \(as they are now, read from Stripe at \S+; changed since the event: is_charge_refundable\):/,
    );
    expect(text).toContain(`is_charge_refundable: ${object.is_charge_refundable}`);
    expect(received).toHaveLength(1);
  });
});

describe('fresh facts before dispatching and before an approval', () => {
  it('a state that changed between decision and dispatch: nothing dispatched', async () => {
    const buffer = store();
    const { fake, recheck } = await stripeApi();
    let object: Record<string, any> = {};
    // The dispute closes while the model decides.
    const api = await anthropic((req) => {
      object.status = 'lost';
      return decideFirstAction(req);
    });
    const queued = await queue(buffer, fake, 'charge.dispute.created');
    object = queued.object;
    const { sink, received } = capturingSink();
    loop(buffer, api, { recheck, sink });
    await settled(buffer, queued.id, 'acked');
    expect(api.requests).toHaveLength(1);
    expect(received).toHaveLength(0);
    const history = await buffer.history(queued.id);
    expect(history.find((h) => h.kind === 'decision')?.outcome).toBe('decided');
    expect(history.find((h) => h.outcome === 'superseded')?.note).toMatch(
      /^superseded: the dispute is now lost \(status: lost\) \(checked against Stripe before dispatching\)/,
    );
    expect(history.some((h) => h.kind === 'dispatch')).toBe(false);
  });

  it('an invoice paid while its call awaited approval: the approval is refused with the reason', async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    const { id, object } = await queue(buffer, fake, 'invoice.payment_failed');
    const { sink, received } = capturingSink();
    loop(buffer, api, { recheck, sink, approval: { tools: ['retry_failed_payment'] } });
    await settled(buffer, id, 'awaiting_approval');
    // Smart Retries collected it meanwhile.
    object.status = 'paid';
    object.amount_remaining = 0;
    object.status_transitions = { paid_at: Date.parse('2026-12-05T14:02:00Z') / 1000 };
    const result = await approveAction(buffer, sink, id, 'person:ana', {
      fresh: { recheck, catalog },
    });
    expect(result.status).toBe('acked');
    expect(result.outcome).toBe(
      "approval refused, nothing dispatched: the invoice is now paid since 2026-12-05T14:02:00Z (status: paid); the invoice's amount_remaining is now 0 (the action needs above 0)",
    );
    expect(received).toHaveLength(0);
    const history = await buffer.history(id);
    expect(history.at(-1)).toMatchObject({ kind: 'acked', by: 'person:ana' });
    expect(history.find((h) => h.outcome === 'superseded')?.note).toContain(
      'checked against Stripe before carrying out the approval',
    );
  });
});

describe("a person's own call is checked too", () => {
  it('a dispute closed while a person was asked: their decision is refused, nothing dispatched', async () => {
    const buffer = store();
    const { fake, recheck } = await stripeApi();
    const { id, object } = await queue(buffer, fake, 'charge.dispute.created');
    // The model asked a person (no decided call): held with nothing to dispatch.
    const [claimed] = await buffer.claim({ owner: 'worker', leaseMs: 60_000 });
    await buffer.hold(id, claimed!.leaseOwner!, 'the model asked a person');
    object.status = 'won';
    const { sink, received } = capturingSink();
    const result = await decideByPerson(
      buffer,
      sink,
      catalog,
      id,
      { by: 'ana', action: 'accept', fields: { rationale: 'Not worth contesting.' } },
      { fresh: { recheck, catalog } },
    );
    expect(result.status).toBe('acked');
    expect(result.outcome).toMatch(/^approval refused, nothing dispatched: the dispute is now won/);
    expect(received).toHaveLength(0);
    expect((await buffer.get(id))?.outcome).toBe('superseded');
  });
});

describe('when Stripe cannot say', () => {
  it('a 403 names the permission; the event waits, no attempt spent', async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    fake.forbidden.add('disputes');
    const { id } = await queue(buffer, fake, 'charge.dispute.created');
    loop(buffer, api, { recheck });
    await waitFor(async () => {
      const history = await buffer.history(id);
      return history.some((h) => h.kind === 'released');
    }, 'the event to be released');
    const event = (await buffer.get(id))!;
    expect(event.attempts).toBe(0);
    const released = (await buffer.history(id)).find((h) => h.kind === 'released');
    expect(released?.note).toMatch(/give the restricted key the "Disputes: Read" permission/);
    expect(released?.note).toMatch(/rak_dispute_read/);
    expect(api.requests).toHaveLength(0);
  });

  it('the API down: the event waits, no attempt spent, and goes on once it is back', async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    fake.down = true;
    const { id } = await queue(buffer, fake, 'invoice.payment_failed');
    const { sink, received } = capturingSink();
    loop(buffer, api, { recheck, sink });
    await waitFor(async () => {
      const history = await buffer.history(id);
      return history.filter((h) => h.kind === 'released').length >= 2;
    }, 'the event to be released twice');
    const waiting = (await buffer.get(id))!;
    expect(waiting.attempts).toBe(0);
    expect(waiting.status).not.toBe('dead');
    expect(api.requests).toHaveLength(0);
    fake.down = false;
    await settled(buffer, id, 'acked');
    expect(received).toHaveLength(1);
    expect((await buffer.get(id))!.attempts).toBe(0);
  });
});

describe('rate limits and outages', () => {
  it("a 429 is retried with backoff on the shared client's reads, no attempt spent", async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    const { id, object } = await queue(buffer, fake, 'charge.dispute.created');
    // stripe-node retries a 429 only when Stripe-Should-Retry says so (RequestSender._shouldRetry):
    // the reader retries it itself.
    fake.rateLimitNext(2);
    const { sink, received } = capturingSink();
    loop(buffer, api, { recheck, sink });
    await settled(buffer, id, 'acked');
    expect(received).toHaveLength(1);
    expect((await buffer.get(id))!.attempts).toBe(0);
    const reads = fake.requests.filter((r) => r.path === `/v1/disputes/${object.id}`);
    expect(reads.length).toBe(4); // two 429s, then the read before deciding and before dispatching
  });

  it('the API down between decision and dispatch: nothing dispatched, no attempt, the decision kept', async () => {
    const buffer = store();
    const { fake, recheck } = await stripeApi();
    const api = await anthropic((req) => {
      fake.down = true;
      return decideFirstAction(req);
    });
    const { id } = await queue(buffer, fake, 'charge.dispute.created');
    const { sink, received } = capturingSink();
    loop(buffer, api, { recheck, sink });
    await waitFor(async () => {
      const history = await buffer.history(id);
      return history.some((h) => h.kind === 'released');
    }, 'the event to be released');
    expect(received).toHaveLength(0);
    const event = (await buffer.get(id))!;
    expect(event.attempts).toBe(0);
    const history = await buffer.history(id);
    expect(history.find((h) => h.kind === 'decision')?.outcome).toBe('decided');
    expect(history.find((h) => h.kind === 'released')?.note).toMatch(/could not read dispute/);
  });

  it('an unreachable API feeds the circuit breaker', async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    fake.down = true;
    const guardrails = new Guardrails(buffer.ledger, { breaker: { threshold: 2 } });
    for (let i = 0; i < 3; i++) {
      const event = buildTestEvent('invoice.payment_failed') as Record<string, any>;
      event.data.object.id = `in_outage_${i}`;
      fake.objects[event.data.object.id] = event.data.object;
      await buffer.append({
        id: event.id,
        type: event.type,
        created: event.created,
        livemode: false,
        objectId: event.data.object.id,
        payload: JSON.stringify(event),
      });
    }
    loop(buffer, api, { recheck, guardrails });
    await waitFor(() => guardrails.breakerStop() !== null, 'the breaker to open');
    const { events } = await buffer.list({ limit: 10 });
    expect(events.every((e) => e.attempts === 0 && e.status !== 'dead')).toBe(true);
    expect(api.requests).toHaveLength(0);
  });
});

describe('Connect', () => {
  it("a connected account's event is read with Stripe-Account", async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    const { id, object } = await queue(buffer, fake, 'charge.dispute.created', {
      account: 'acct_1Connected0001',
    });
    const { sink, received } = capturingSink();
    loop(buffer, api, { recheck, sink });
    await settled(buffer, id, 'acked');
    const reads = fake.requests.filter((r) => r.path === `/v1/disputes/${object.id}`);
    expect(reads.length).toBeGreaterThanOrEqual(2);
    expect(reads.every((r) => r.stripeAccount === 'acct_1Connected0001')).toBe(true);
    // The account is part of the idempotency key, and shown with the event.
    expect(received[0]!.key).toBe(idempotencyKey(id, 'handle_dispute', 'acct_1Connected0001'));
    expect(received[0]!.key).not.toBe(idempotencyKey(id, 'handle_dispute'));
    const event = (await buffer.get(id))!;
    expect(summarize(event, catalog).account).toBe('acct_1Connected0001');
    const page = eventBody(
      {
        event,
        toolCall: null,
        history: await buffer.history(id),
        dashboardUrl: null,
        decisionFields: null,
      },
      Date.now(),
    );
    expect(page).toContain('acct_1Connected0001 (connected account)');
  });
});

describe('without a key', () => {
  it('works as before, says so at start-up and in the queue status, and marks the decision', async () => {
    const buffer = store();
    const api = await anthropic();
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', write: (line) => lines.push(line) });
    const event = buildTestEvent('charge.dispute.created') as Record<string, any>;
    await buffer.append({
      id: event.id,
      type: event.type,
      created: event.created,
      livemode: false,
      objectId: event.data.object.id,
      payload: JSON.stringify(event),
    });
    const { sink, received } = capturingSink();
    loop(buffer, api, { sink, logger, recheck: createRecheck(null) });
    await settled(buffer, event.id, 'acked');
    expect(received).toHaveLength(1);
    expect(lines.some((l) => JSON.parse(l).msg === NOT_RECHECKED)).toBe(true);
    expect(userText(api.requests[0]!)).toContain("Facts (the event's snapshot: not re-checked");
    const history = await buffer.history(event.id);
    expect(history.find((h) => h.outcome === 'snapshot')?.note).toBe(
      `decided on the event's snapshot alone: ${NOT_RECHECKED}`,
    );
    const page = eventBody(
      {
        event: (await buffer.get(event.id))!,
        toolCall: null,
        history,
        dashboardUrl: null,
        decisionFields: null,
      },
      Date.now(),
    );
    expect(page).toContain('⚠ snapshot only');
    const without = createQueueOperations({ store: buffer, recheck: createRecheck(null) });
    expect((await without.status()).factsRechecked).toBe(false);
    const { recheck } = await stripeApi();
    const withKey = createQueueOperations({ store: buffer, recheck });
    expect((await withKey.status()).factsRechecked).toBe(true);
  });

  it('with a key, the decision is marked as made on fresh facts', async () => {
    const buffer = store();
    const api = await anthropic();
    const { fake, recheck } = await stripeApi();
    const { id } = await queue(buffer, fake, 'invoice.payment_failed');
    loop(buffer, api, { recheck });
    await settled(buffer, id, 'acked');
    const history = await buffer.history(id);
    expect(history.find((h) => h.outcome === 'fresh')?.note).toMatch(
      /^decided on facts read from Stripe at \S+ \(unchanged since the event\)$/,
    );
    expect(history.some((h) => h.outcome === 'snapshot')).toBe(false);
  });
});

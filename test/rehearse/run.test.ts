import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { FRAMING_TOKENS, requestBound, type RequestUsage } from '../../src/agent/decide.js';
import { costOf, LIST_PRICES } from '../../src/agent/pricing.js';
import type { StoredEvent } from '../../src/buffer/buffer.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import { buildReport } from '../../src/rehearse/report.js';
import { rehearseAll, type Policy } from '../../src/rehearse/run.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { startFakeAnthropic, toolUse, type FakeRequest } from '../helpers/fake-anthropic.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const TYPES = ['charge.dispute.created', 'invoice.payment_failed', 'charge.refunded'];
const SONNET = LIST_PRICES['claude-sonnet-5-5']!;
const HAIKU = LIST_PRICES['claude-haiku-5-5']!;
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

function stored(type: string, i: number): StoredEvent {
  const event = buildTestEvent(type, { now: new Date(Date.now() - i * 60_000) });
  return {
    id: event.id as string,
    type,
    created: event.created as number,
    livemode: false,
    objectId: null,
    payload: JSON.stringify(event),
    status: 'pending',
    attempts: 0,
    receivedAt: Date.now(),
    updatedAt: Date.now(),
    retryAt: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    lastError: null,
    outcome: null,
  };
}

function policy(model: string, price: Policy['price']): Policy {
  return {
    label: model,
    catalog: createCatalog(),
    model,
    approval: {},
    price,
    redact: [],
    maxTurns: 3,
    maxTokens: 1024,
  };
}

/**
 * A Messages API as dear as the bounds allow: every request but the very first (which is cheap)
 * reports exactly the upper bound `decide` reserved for it, so only the cap's accounting keeps the
 * spend in check. Disputes are answered with an invalid action first, so they take two requests.
 */
async function worstCaseApi() {
  /** Usage answered, by the tool_use id of the answer: a later request is bounded by it. */
  const byToolUse = new Map<string, RequestUsage>();
  const answered: { model: string; usage: RequestUsage; bound: RequestUsage }[] = [];
  const fake = await startFakeAnthropic((req: FakeRequest) => {
    const body = req.body;
    const tool = body.tools[0].name as string;
    let bound: RequestUsage;
    if (body.messages.length === 1) {
      bound = requestBound({
        system: body.system,
        userText: body.messages[0].content,
        tools: body.tools,
        maxTokens: body.max_tokens,
      });
    } else {
      const reply = body.messages.at(-2).content.find((b: any) => b.type === 'tool_use');
      const previous = byToolUse.get(reply.id)!;
      bound = {
        input_tokens:
          previous.input_tokens +
          previous.output_tokens +
          bytes(JSON.stringify(body.messages.at(-1))) +
          FRAMING_TOKENS,
        output_tokens: body.max_tokens,
      };
    }
    const usage = req.n === 1 ? { input_tokens: 10, output_tokens: 5 } : bound;
    const first = body.messages.length === 1;
    const answer =
      tool === 'handle_dispute' && first
        ? toolUse(tool, { action: 'refund_everything', rationale: 'x' })
        : tool === 'handle_dispute'
          ? toolUse(tool, { action: 'accept', rationale: 'Small.' })
          : toolUse('no_action_needed', { rationale: 'Fine.' });
    const id = (answer.body as any).content[0].id as string;
    byToolUse.set(id, usage);
    answered.push({ model: body.model, usage, bound });
    return { ...answer, usage, delayMs: 5 + (req.n % 7) * 3 };
  });
  cleanups.push(() => fake.close());
  return { fake, answered };
}

describe('rehearseAll with a cost cap', () => {
  it('at concurrency 64 with --compare, spends at most the cap plus one request bound, and stops with budget', async () => {
    const { fake, answered } = await worstCaseApi();
    const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.url, maxRetries: 0 });
    const events = Array.from({ length: 150 }, (_, i) => stored(TYPES[i % TYPES.length]!, i));
    const byId = new Map(events.map((e) => [e.id, e]));
    const policies = [policy('claude-sonnet-5-5', SONNET), policy('claude-haiku-5-5', HAIKU)];
    const price = (model: string) => (model === 'claude-haiku-5-5' ? HAIKU : SONNET);
    const cap = 0.2;
    const progress: number[] = [];
    const result = await rehearseAll({
      policies,
      client,
      ids: events.map((e) => e.id),
      load: async (id) => byId.get(id) ?? null,
      concurrency: 64,
      maxCostUsd: cap,
      onDone: (_, p) => progress.push(p.spentUsd),
    });

    const spent = answered.reduce((sum, a) => sum + costOf(a.usage, price(a.model)), 0);
    const largestBound = Math.max(...answered.map((a) => costOf(a.bound, price(a.model))));
    expect(result.stopped).toBe('budget');
    expect(spent).toBeGreaterThan(cap * 0.5);
    expect(spent).toBeLessThanOrEqual(cap + largestBound);
    expect(result.spentUsd).toBeCloseTo(spent, 9);
    // Both policies' requests counted against the one cap, and dispute decisions took two turns.
    expect(new Set(answered.map((a) => a.model))).toEqual(
      new Set(['claude-sonnet-5-5', 'claude-haiku-5-5']),
    );
    expect(answered.some((a) => a.bound.input_tokens > 0 && a.usage === a.bound)).toBe(true);
    // Only complete events are reported, every one with both policies' outcomes.
    expect(result.events.length).toBeGreaterThan(0);
    expect(result.events.length).toBeLessThan(events.length);
    for (const e of result.events) {
      expect(e.outcomes).toHaveLength(2);
      expect(e.outcomes.map((o) => o.outcome)).not.toContain('invalid');
    }
    const reported = result.events.flatMap((e) => e.outcomes).reduce((s, o) => s + o.cost_usd!, 0);
    expect(reported).toBeLessThanOrEqual(spent + 1e-12);
    expect(Math.max(...progress)).toBeLessThanOrEqual(spent + 1e-12);
  });

  it('rehearses everything when the cap is not reached', async () => {
    const { fake } = await worstCaseApi();
    const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.url, maxRetries: 0 });
    const events = Array.from({ length: 6 }, (_, i) => stored(TYPES[i % TYPES.length]!, i));
    const byId = new Map(events.map((e) => [e.id, e]));
    const result = await rehearseAll({
      policies: [policy('claude-haiku-5-5', HAIKU)],
      client,
      ids: events.map((e) => e.id),
      load: async (id) => byId.get(id) ?? null,
      concurrency: 4,
      maxCostUsd: 100,
    });
    expect(result.stopped).toBeNull();
    expect(result.events).toHaveLength(6);
  });
});

describe('rehearse: approvals by amount, per currency', () => {
  it('holds what the loop would hold (over the usd threshold, or a currency without one), and reports each amount in its currency', async () => {
    const fake = await startFakeAnthropic((req: FakeRequest) =>
      toolUse(req.body.tools[0].name, { action: 'accept', rationale: 'Evidence is strong.' }),
    );
    cleanups.push(() => fake.close());
    const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.url, maxRetries: 0 });
    const dispute = (i: number, amount: number, currency: string): StoredEvent => {
      const event = stored('charge.dispute.created', i);
      const parsed = JSON.parse(event.payload);
      parsed.data.object.amount = amount;
      parsed.data.object.currency = currency;
      return { ...event, payload: JSON.stringify(parsed) };
    };
    const events = [
      dispute(0, 412_000, 'usd'),
      dispute(1, 50_000, 'jpy'),
      dispute(2, 12_900, 'usd'),
    ];
    const byId = new Map(events.map((e) => [e.id, e]));
    const gated: Policy = {
      ...policy('claude-sonnet-5-5', SONNET),
      approval: { amount_over: { usd: 50_000 } },
    };
    const result = await rehearseAll({
      policies: [gated],
      client,
      ids: events.map((e) => e.id),
      load: async (id) => byId.get(id) ?? null,
      concurrency: 1,
    });
    const report = buildReport({
      policies: [gated],
      events: result.events,
      stopped: result.stopped,
      source: { kind: 'test' },
    });
    expect(report.approvals).toBe(2);
    expect(
      report.decisions.map((d) => [d.amount, d.currency, d.amount_display, d.approval]),
    ).toEqual([
      [412_000, 'usd', '$4,120.00', '$4,120.00 is over the $500.00 threshold for usd'],
      [
        50_000,
        'jpy',
        '¥50,000',
        'no approval threshold is set for jpy: held (set approval.amount_over.jpy)',
      ],
      [12_900, 'usd', '$129.00', null],
    ]);
    // The model read the amount in its currency, beside the integer.
    const prompts = fake.requests.map((r) => JSON.stringify(r.body.messages[0].content));
    expect(prompts.some((p) => p.includes('amount: 50000 (= ¥50,000 jpy)'))).toBe(true);
  });
});

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { approveAction, listApprovals, rejectAction } from '../../src/operations/approvals.js';
import {
  httpSink,
  idempotencyKey,
  moduleSink,
  recordSink,
  type Sink,
} from '../../src/dispatch/dispatch.js';
import { AgentLoop, type AgentLoopOptions } from '../../src/agent/loop.js';
import type { EventBuffer, StoredEvent } from '../../src/buffer/buffer.js';
import { SqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import { closeTag, openTag } from '../../src/catalog/untrusted.js';
import { createLogger } from '../../src/logger.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { injectedDispute, INJECTION } from '../catalog/fixtures.js';
import {
  apiError,
  decideFirstAction,
  firstDecision,
  startFakeAnthropic,
  toolUse,
  userText,
  type FakeAnthropic,
  type Responder,
} from '../helpers/fake-anthropic.js';
import { tempDir } from '../helpers/tmp.js';

const catalog = createCatalog();
const silent = createLogger({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function fakeApi(respond?: Responder): Promise<FakeAnthropic> {
  const fake = await startFakeAnthropic(respond);
  cleanups.push(() => fake.close());
  return fake;
}

function store(file?: string): { buffer: EventBuffer; file: string } {
  let f = file;
  if (!f) {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    f = path.join(tmp.dir, 'events.db');
  }
  const buffer = new SqliteBuffer({ file: f, maxAttempts: 3 });
  cleanups.push(() => buffer.close());
  return { buffer, file: f };
}

async function append(buffer: EventBuffer, event: Record<string, any>): Promise<string> {
  await buffer.append({
    id: event.id,
    type: event.type,
    created: event.created,
    livemode: false,
    objectId: event.data.object.id,
    payload: JSON.stringify(event),
  });
  return event.id as string;
}

/** A sink that records what it received and can be told to fail. */
function capturingSink(fail: (n: number) => boolean = () => false) {
  const received: { tool: string; input: Record<string, unknown>; key: string; eventId: string }[] =
    [];
  let n = 0;
  const sink: Sink = {
    kind: 'capture',
    async dispatch(req) {
      n += 1;
      received.push({
        tool: req.tool_call.name,
        input: req.tool_call.input,
        key: req.idempotency_key,
        eventId: req.event_id,
      });
      if (fail(n)) {
        const { DispatchError } = await import('../../src/dispatch/dispatch.js');
        throw new DispatchError(`handler failed (call ${n})`);
      }
      return { outcome: 'dispatched' };
    },
  };
  return { sink, received };
}

function loop(
  buffer: EventBuffer,
  fake: FakeAnthropic,
  over: Partial<AgentLoopOptions> = {},
): AgentLoop {
  const agent = new AgentLoop({
    buffer,
    catalog,
    client: new Anthropic({ apiKey: 'test-key', baseURL: fake.url, maxRetries: 3 }),
    sink: recordSink,
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

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function settled(
  buffer: EventBuffer,
  id: string,
  statuses = ['acked', 'dead', 'awaiting_approval'],
) {
  return until(`${id} to settle`, async () => {
    const e = await buffer.get(id);
    return e && statuses.includes(e.status) ? (e as StoredEvent) : undefined;
  });
}

describe('agent loop', () => {
  it('decides, dispatches and acks an event of every default catalog type', async () => {
    const fake = await fakeApi();
    const { buffer } = store();
    const { sink, received } = capturingSink();
    const ids = [];
    for (const def of catalog.entries()) ids.push(await append(buffer, buildTestEvent(def.type)));
    loop(buffer, fake, { sink, concurrency: 3 });
    for (const id of ids) {
      expect(await settled(buffer, id)).toMatchObject({ status: 'acked', outcome: 'dispatched' });
    }
    expect(received.map((r) => r.tool).sort()).toEqual(
      catalog
        .entries()
        .map((d) => d.tool)
        .sort(),
    );
    for (const r of received) {
      const event = JSON.parse((await buffer.get(r.eventId))!.payload);
      const facts = catalog.toolCall(event.type, event)!.input;
      expect(r.input).toMatchObject(facts);
      expect(r.input.action).toBe(catalog.lookup(event.type)!.actions[0]);
      expect(r.key).toBe(idempotencyKey(r.eventId, r.tool));
    }
    const history = await buffer.history(ids[0]!);
    const decision = history.find((h) => h.kind === 'decision')!;
    expect(decision).toMatchObject({
      model: 'claude-test',
      outcome: 'decided',
      tool_call: { name: 'handle_dispute' },
    });
    expect(decision.usage!.input_tokens).toBeGreaterThan(0);
    expect(decision.usage!.output_tokens).toBeGreaterThan(0);
    expect(typeof decision.latency_ms).toBe('number');
    expect(history.find((h) => h.kind === 'dispatch')).toMatchObject({ outcome: 'dispatched' });
    // One request per event: a valid decision ends the conversation.
    expect(fake.requests).toHaveLength(ids.length);
  });

  it('acks "no action" without dispatching', async () => {
    const fake = await fakeApi(() => toolUse('no_action_needed', { rationale: 'Nothing to do.' }));
    const { buffer } = store();
    const { sink, received } = capturingSink();
    const id = await append(buffer, buildTestEvent('payment_intent.succeeded'));
    loop(buffer, fake, { sink });
    expect(await settled(buffer, id)).toMatchObject({ status: 'acked', outcome: 'no_action' });
    expect(received).toEqual([]);
    expect((await buffer.history(id)).find((h) => h.kind === 'decision')).toMatchObject({
      outcome: 'no_action',
      note: 'Nothing to do.',
    });
  });

  it("dispatches the event's facts, never the model's copy of them", async () => {
    const fake = await fakeApi((req) =>
      toolUse(firstDecision(req).tool, {
        action: 'accept',
        rationale: 'ok',
        amount: 99_999_999,
        customer: 'cus_attacker',
        stripe_id: 'dp_forged',
        currency: 'btc',
      }),
    );
    const { buffer } = store();
    const { sink, received } = capturingSink();
    const event = buildTestEvent('charge.dispute.created');
    const id = await append(buffer, event);
    loop(buffer, fake, { sink });
    await settled(buffer, id);
    const facts = catalog.toolCall(event.type as string, event)!.input;
    expect(received[0]!.input).toMatchObject({
      amount: facts.amount,
      customer: facts.customer,
      stripe_id: facts.stripe_id,
      currency: 'usd',
    });
    expect(JSON.stringify(received[0]!.input)).not.toContain('attacker');
  });

  it('gives an invalid decision back to the model, and uses its corrected one', async () => {
    const fake = await fakeApi((req) =>
      req.n === 1
        ? toolUse(firstDecision(req).tool, { action: 'wire_funds', rationale: '' })
        : decideFirstAction(req),
    );
    const { buffer } = store();
    const { sink, received } = capturingSink();
    const id = await append(buffer, buildTestEvent('charge.refunded'));
    loop(buffer, fake, { sink });
    expect((await settled(buffer, id)).status).toBe('acked');
    expect(received).toHaveLength(1);
    expect(fake.requests).toHaveLength(2);
    const second = JSON.stringify(fake.requests[1]!.body.messages);
    expect(second).toContain('is_error');
  });

  it('kills an event whose decisions stay invalid, with the reason', async () => {
    const fake = await fakeApi((req) => toolUse(firstDecision(req).tool, { action: 'wire_funds' }));
    const { buffer } = store();
    const id = await append(buffer, buildTestEvent('charge.refunded'));
    loop(buffer, fake, { maxTurns: 2 });
    const dead = await settled(buffer, id, ['dead']);
    expect(dead.attempts).toBe(3);
    expect(dead.lastError).toMatch(/^the model chose action "wire_funds"; allowed: .*\(2 tries\)$/);
    expect(fake.requests).toHaveLength(6);
  });

  it('records a dead decision as one sentence in last_error, and the detail in the history', async () => {
    const fake = await fakeApi((req) =>
      toolUse(firstDecision(req).tool, { action: 'nuke_it_from_orbit', rationale: 'Be sure.' }),
    );
    const { buffer } = store();
    const id = await append(buffer, buildTestEvent('charge.dispute.created'));
    loop(buffer, fake, { maxTurns: 4 });
    const dead = await settled(buffer, id, ['dead']);
    expect(dead.lastError).toBe(
      'the model chose action "nuke_it_from_orbit"; allowed: accept, submit_evidence, escalate_to_human (4 tries)',
    );
    const history = await buffer.history(id);
    // Each attempt's nack (and the last, dead) says the sentence; its decision entry the detail.
    expect(
      history.filter((h) => h.kind === 'nacked' || h.kind === 'dead').map((h) => h.note),
    ).toEqual([dead.lastError, dead.lastError, dead.lastError]);
    const invalid = history.filter((h) => h.kind === 'decision' && h.outcome === 'invalid');
    expect(invalid).toHaveLength(3);
    for (const entry of invalid) {
      const lines = entry.note!.split('\n');
      expect(lines).toHaveLength(4);
      expect(lines[3]).toBe(
        'request 4: handle_dispute({"action":"nuke_it_from_orbit","rationale":"Be sure."}) → action: Invalid option: expected one of "accept"|"submit_evidence"|"escalate_to_human" [invalid_value]',
      );
      expect(entry.note!.length).toBeLessThanOrEqual(2000);
    }
  });

  it.each([
    ['429 with retry-after', apiError(429, 'rate_limit_error', { 'retry-after': '1' })],
    ['529 overloaded', apiError(529, 'overloaded_error')],
    ['500', apiError(500, 'api_error')],
  ])('retries a %s and then decides', async (_name, failure) => {
    const fake = await fakeApi((req) => (req.n === 1 ? failure : decideFirstAction(req)));
    const { buffer } = store();
    const id = await append(buffer, buildTestEvent('invoice.payment_failed'));
    loop(buffer, fake);
    const done = await settled(buffer, id);
    expect(done).toMatchObject({ status: 'acked', attempts: 0 });
    expect(fake.requests).toHaveLength(2);
  });

  it('honours retry-after on a 429', async () => {
    let first = 0;
    let second = 0;
    const fake = await fakeApi((req) => {
      if (req.n === 1) {
        first = Date.now();
        return apiError(429, 'rate_limit_error', { 'retry-after': '2' });
      }
      second = Date.now();
      return decideFirstAction(req);
    });
    const { buffer } = store();
    const id = await append(buffer, buildTestEvent('invoice.payment_failed'));
    loop(buffer, fake);
    await settled(buffer, id);
    // The SDK waited at least what the API asked (a lower bound, not a speed assertion).
    expect(second - first).toBeGreaterThanOrEqual(1900);
  });

  it('retries a handler that fails once with the same idempotency key', async () => {
    const fake = await fakeApi();
    const { buffer } = store();
    const { sink, received } = capturingSink((n) => n === 1);
    const id = await append(buffer, buildTestEvent('customer.subscription.deleted'));
    loop(buffer, fake, { sink });
    const done = await settled(buffer, id);
    expect(done).toMatchObject({ status: 'acked', attempts: 1 });
    expect(received).toHaveLength(2);
    expect(received[0]!.key).toBe(received[1]!.key);
    const kinds = (await buffer.history(id)).map((h) => `${h.kind}:${h.outcome ?? ''}`);
    expect(kinds).toContain('dispatch:failed');
    expect(kinds).toContain('nacked:');
  });

  it('kills an event whose handler always fails, keeping the last error', async () => {
    const fake = await fakeApi();
    const { buffer } = store();
    const { sink, received } = capturingSink(() => true);
    const id = await append(buffer, buildTestEvent('customer.subscription.deleted'));
    loop(buffer, fake, { sink });
    const dead = await settled(buffer, id, ['dead']);
    expect(dead.lastError).toMatch(/handler failed \(call 3\)/);
    expect(received).toHaveLength(3);
    expect(new Set(received.map((r) => r.key)).size).toBe(1);
  });

  it('keeps customer-written text inside fences in the request, and it changes nothing', async () => {
    const fake = await fakeApi();
    const { buffer } = store();
    const { sink, received } = capturingSink();
    const hostile = injectedDispute();
    const id = await append(buffer, hostile);
    loop(buffer, fake, { sink });
    await settled(buffer, id);
    const req = fake.requests[0]!;
    const text = userText(req);
    const nonce = /<untrusted-data-([0-9a-f]{16})>/.exec(text)![1]!;
    const outside = text.split(openTag(nonce))[0]! + text.split(closeTag(nonce))[1]!;
    expect(text).toContain('IGNORE ALL PREVIOUS');
    expect(outside).not.toContain('IGNORE ALL PREVIOUS');
    expect(JSON.stringify(req.body.system)).not.toContain('acct_attacker');
    const facts = catalog.toolCall(hostile.type, hostile)!.input;
    expect(received[0]!.input).toMatchObject({
      amount: 12900,
      stripe_id: facts.stripe_id,
      customer: null,
    });
    // Handlers get the customer's words as data, byte for byte; only models see them fenced.
    expect(received[0]!.input.evidence_product_description).toContain(INJECTION);
  });

  it('decides and dispatches with enriched facts, shown to the model as well', async () => {
    const fake = await fakeApi();
    const { buffer } = store();
    const { sink, received } = capturingSink();
    const id = await append(buffer, buildTestEvent('charge.dispute.created'));
    loop(buffer, fake, {
      sink,
      enrich: async (type, facts) =>
        type === 'charge.dispute.created' ? { ...facts, customer: 'cus_enriched' } : facts,
    });
    expect((await settled(buffer, id)).status).toBe('acked');
    expect(received[0]!.input.customer).toBe('cus_enriched');
    expect(userText(fake.requests[0]!)).toContain('customer: cus_enriched');
  });

  it('decides and records in --dry-run, dispatching nothing', async () => {
    const fake = await fakeApi();
    const { buffer } = store();
    const { sink, received } = capturingSink();
    const id = await append(buffer, buildTestEvent('charge.dispute.created'));
    loop(buffer, fake, { sink, dryRun: true });
    expect(await settled(buffer, id)).toMatchObject({ status: 'acked', outcome: 'dry_run' });
    expect(received).toEqual([]);
    expect((await buffer.history(id)).find((h) => h.kind === 'dispatch')).toMatchObject({
      outcome: 'dry_run',
    });
  });

  it('moves on while an outcome is written, never past its concurrency, and stop() writes every outcome', async () => {
    let inFlight = 0;
    let most = 0;
    const fake = await fakeApi(async (req) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 30));
      inFlight -= 1;
      return decideFirstAction(req);
    });
    const { buffer, file } = store();
    const { sink, received } = capturingSink();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++)
      ids.push(await append(buffer, buildTestEvent('invoice.payment_failed')));
    const agent = loop(buffer, fake, { sink, concurrency: 3 });
    await until('12 dispatches', async () => received.length === 12);
    // Stopped the instant the last handler has its call: its ack may not be written yet.
    await agent.stop();
    await buffer.close();
    const reopened = new SqliteBuffer({ file });
    cleanups.push(() => reopened.close());
    for (const id of ids) {
      expect(await reopened.get(id)).toMatchObject({ status: 'acked' });
      const dispatches = (await reopened.history(id)).filter((h) => h.kind === 'dispatch');
      expect(dispatches).toHaveLength(1);
    }
    expect(most).toBeLessThanOrEqual(3);
    expect(new Set(received.map((r) => r.eventId)).size).toBe(12);
  });

  it('gives its claims back on stop', async () => {
    const fake = await fakeApi(() => ({ hang: true }));
    const { buffer } = store();
    const id = await append(buffer, buildTestEvent('charge.dispute.created'));
    const agent = loop(buffer, fake, { concurrency: 1 });
    await until('the claim', async () => (await buffer.get(id))?.status === 'claimed');
    await agent.stop();
    expect(await buffer.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
  });
});

describe('approvals', () => {
  it('holds gated calls, and approve / reject work across a restart', async () => {
    const fake = await fakeApi();
    const { buffer, file } = store();
    const { sink, received } = capturingSink();
    const big = buildTestEvent('charge.dispute.created');
    const gated = buildTestEvent('charge.refunded');
    const free = buildTestEvent('payment_intent.succeeded');
    (big.data as any).object.amount = 75_000;
    const [bigId, gatedId, freeId] = [
      await append(buffer, big),
      await append(buffer, gated),
      await append(buffer, free),
    ];
    const agent = loop(buffer, fake, {
      sink,
      approval: { tools: ['log_refund'], amount_over: 50_000 },
    });
    expect((await settled(buffer, bigId)).status).toBe('awaiting_approval');
    expect((await settled(buffer, gatedId)).status).toBe('awaiting_approval');
    expect((await settled(buffer, freeId)).status).toBe('acked');
    expect(received.map((r) => r.eventId)).toEqual([freeId]);
    await agent.stop();
    await buffer.close();

    const reopened = new SqliteBuffer({ file });
    cleanups.push(() => reopened.close());
    const waiting = await listApprovals(reopened);
    expect(waiting.map((w) => w.id).sort()).toEqual([bigId, gatedId].sort());
    const bigWait = waiting.find((w) => w.id === bigId)!;
    // The old plain-number threshold reads as USD: the reason speaks in dollars.
    expect(bigWait.reason).toBe('$750.00 is over the $500.00 threshold for usd');
    expect(bigWait.tool_call).toMatchObject({
      name: 'handle_dispute',
      input: { amount: 75_000, action: 'accept' },
    });

    const approved = await approveAction(reopened, sink, bigId);
    expect(approved).toMatchObject({ status: 'acked', outcome: 'dispatched' });
    expect(received.at(-1)).toMatchObject({
      eventId: bigId,
      tool: 'handle_dispute',
      key: idempotencyKey(bigId, 'handle_dispute'),
    });
    await expect(approveAction(reopened, sink, bigId)).rejects.toThrow(/not awaiting approval/);

    const rejected = await rejectAction(reopened, gatedId, 'refund already handled by finance');
    expect(rejected).toMatchObject({ status: 'acked', outcome: 'rejected' });
    expect(received.map((r) => r.eventId)).not.toContain(gatedId);
    expect((await reopened.get(gatedId))!.status).toBe('acked');
    expect(await listApprovals(reopened)).toEqual([]);
    // Three ways to end, three outcomes (not one `acked`).
    expect((await reopened.get(bigId))!.outcome).toBe('approved');
    expect((await reopened.get(gatedId))!.outcome).toBe('rejected');
    expect((await reopened.get(freeId))!.outcome).toBe('dispatched');
  });

  it('puts an event a person must look at in the approvals list', async () => {
    const fake = await fakeApi(() =>
      toolUse('ask_a_person', { reason: 'Customer claims the card was stolen.' }),
    );
    const { buffer } = store();
    const id = await append(buffer, buildTestEvent('radar.early_fraud_warning.created'));
    loop(buffer, fake);
    expect((await settled(buffer, id)).status).toBe('awaiting_approval');
    const [waiting] = await listApprovals(buffer);
    expect(waiting).toMatchObject({ id, tool_call: null });
    expect(waiting!.reason).toContain('stolen');
    expect(await approveAction(buffer, recordSink, id)).toMatchObject({
      status: 'acked',
      outcome: 'acknowledged',
    });
    // Nothing was dispatched: the person closed it by hand.
    expect((await buffer.get(id))!.outcome).toBe('handled');
  });
});

describe('sinks', () => {
  it('http: POSTs the call with a Stripe-style signature the receiver can verify, retrying a 503', async () => {
    const secret = crypto.randomBytes(24).toString('hex');
    const seen: { body: string; signature: string; idem: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({
          body,
          signature: String(req.headers['stripe-events-signature']),
          idem: String(req.headers['idempotency-key']),
        });
        res.writeHead(seen.length === 1 ? 503 : 200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/handle`;
    const sink = httpSink({ url, secret, backoffMs: () => 10 });
    const call = {
      name: 'log_refund',
      input: { amount: 100, action: 'record_only', rationale: 'x' },
    };
    const result = await sink.dispatch({
      event_id: 'evt_1',
      event_type: 'charge.refunded',
      tool_call: call,
      idempotency_key: 'k1',
      event: {},
    });
    expect(result.outcome).toBe('dispatched');
    expect(seen).toHaveLength(2);
    for (const s of seen) {
      const [t, v1] = s.signature.split(',').map((p) => p.split('=')[1]!);
      const expected = crypto.createHmac('sha256', secret).update(`${t}.${s.body}`).digest('hex');
      expect(v1).toBe(expected);
      expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(300);
      expect(JSON.parse(s.body)).toEqual({
        event_id: 'evt_1',
        event_type: 'charge.refunded',
        tool_call: call,
        idempotency_key: 'k1',
      });
      expect(s.idem).toBe('k1');
    }
  });

  it('module: calls the export named after the tool with the input and its context', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const file = path.join(tmp.dir, 'handlers.mjs');
    fs.writeFileSync(
      file,
      `export const calls = [];\nexport async function handle_dispute(input, ctx) { calls.push({ input, key: ctx.idempotency_key, id: ctx.event.id }); }\n`,
    );
    const sink = await moduleSink(file);
    const event = buildTestEvent('charge.dispute.created');
    const call = { name: 'handle_dispute', input: { action: 'accept' } };
    await sink.dispatch({
      event_id: event.id as string,
      event_type: 'charge.dispute.created',
      tool_call: call,
      idempotency_key: 'k9',
      event,
    });
    const mod = (await import(file)) as { calls: unknown[] };
    expect(mod.calls).toEqual([{ input: { action: 'accept' }, key: 'k9', id: event.id }]);
    await expect(
      sink.dispatch({
        event_id: 'evt_2',
        event_type: 'charge.refunded',
        tool_call: { name: 'log_refund', input: {} },
        idempotency_key: 'k',
        event: {},
      }),
    ).rejects.toThrow(/exports no function named log_refund/);
  });
});

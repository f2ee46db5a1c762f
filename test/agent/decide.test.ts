import Anthropic from '@anthropic-ai/sdk';
import { countTokens } from '@anthropic-ai/tokenizer';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  decide,
  FRAMING_TOKENS,
  nextRequestBound,
  requestBound,
  type DecideOptions,
  type RequestBudget,
  type RequestUsage,
} from '../../src/agent/decide.js';
import { SYSTEM_PROMPT, userMessage } from '../../src/agent/prompt.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import {
  apiError,
  message,
  startFakeAnthropic,
  toolUse,
  type FakeRequest,
  type Responder,
} from '../helpers/fake-anthropic.js';

const catalog = createCatalog();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function run(type: string, respond: Responder) {
  const fake = await startFakeAnthropic(respond);
  cleanups.push(() => fake.close());
  const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.url, maxRetries: 0 });
  const result = await decide(catalog.lookup(type)!, 'An event.', {
    client,
    model: 'claude-test',
    maxTokens: 512,
    maxTurns: 3,
  });
  return { result, requests: fake.requests };
}

describe('the decision tools a model is offered', () => {
  it('are inline JSON Schema: no $ref or $defs, closed objects', async () => {
    const { requests } = await run('invoice.payment_failed', () =>
      toolUse('no_action_needed', { rationale: 'nothing to do' }),
    );
    const tools = requests[0]!.body.tools as { name: string; input_schema: object }[];
    expect(tools.map((t) => t.name)).toEqual([
      'retry_failed_payment',
      'no_action_needed',
      'ask_a_person',
    ]);
    for (const tool of tools) {
      const text = JSON.stringify(tool.input_schema);
      expect(text, tool.name).not.toContain('$ref');
      expect(text, tool.name).not.toContain('$defs');
      expect(tool.input_schema).toMatchObject({ type: 'object', additionalProperties: false });
    }
    // customer_message is the field the SDK's conversion turned into a $ref to a plain string.
    expect((tools[0]!.input_schema as any).properties.customer_message).toMatchObject({
      type: 'string',
    });
  });

  it('every catalog decision converts without $ref', async () => {
    for (const def of catalog.entries()) {
      const { requests } = await run(def.type, () =>
        toolUse('no_action_needed', { rationale: 'nothing to do' }),
      );
      expect(JSON.stringify(requests[0]!.body.tools), def.tool).not.toMatch(/\$ref|\$defs/);
    }
  });

  it('null in an optional field means the field left out, not an error turn', async () => {
    const { result, requests } = await run('invoice.payment_failed', () =>
      toolUse('retry_failed_payment', {
        action: 'wait_for_automatic_retry',
        rationale: 'Stripe retries on its own.',
        customer_message: null,
      }),
    );
    expect(requests).toHaveLength(1);
    expect(result.decision).toEqual({
      kind: 'tool',
      decision: { action: 'wait_for_automatic_retry', rationale: 'Stripe retries on its own.' },
    });
  });

  it('null in a required field is still sent back as an error', async () => {
    let n = 0;
    const { result, requests } = await run('invoice.payment_failed', () =>
      ++n === 1
        ? toolUse('retry_failed_payment', { action: 'retry_now', rationale: null })
        : toolUse('retry_failed_payment', { action: 'retry_now', rationale: 'Card updated.' }),
    );
    expect(requests).toHaveLength(2);
    expect(result.decision).toMatchObject({ kind: 'tool', decision: { action: 'retry_now' } });
  });
});

describe('why there is no decision', () => {
  it('is one sentence from the zod issues of the last reply, and the detail of every request', async () => {
    let n = 0;
    const { result } = await run('invoice.payment_failed', () =>
      ++n === 1
        ? toolUse('retry_failed_payment', { action: 'retry_now' })
        : toolUse('retry_failed_payment', { action: 'nuke_it_from_orbit', rationale: 'why not' }),
    );
    expect(result.decision).toBeNull();
    const actions = catalog.lookup('invoice.payment_failed')!.actions.join(', ');
    expect(result.failure).toBe(
      `the model chose action "nuke_it_from_orbit"; allowed: ${actions} (3 tries)`,
    );
    const lines = result.detail!.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(
      'request 1: retry_failed_payment({"action":"retry_now"}) → rationale: Invalid input: expected string, received undefined [invalid_type]',
    );
    expect(lines[2]).toMatch(
      /^request 3: retry_failed_payment\(\{"action":"nuke_it_from_orbit","rationale":"why not"\}\) → action: Invalid option: .*\[invalid_value\]$/,
    );
  });

  it('names a tool the model made up, and a reply without a tool', async () => {
    let n = 0;
    const { result } = await run('invoice.payment_failed', () =>
      ++n < 3
        ? toolUse('refund_everything', { amount: 1 })
        : message([{ type: 'text', text: 'I would rather not.' }], 'end_turn'),
    );
    expect(result.failure).toBe('the model answered without choosing an action (3 tries)');
    expect(result.detail!.split('\n')).toEqual([
      'request 1: refund_everything({"amount":1}) → no such tool',
      'request 2: refund_everything({"amount":1}) → no such tool',
      'request 3: no tool call (stop_reason end_turn); it wrote: I would rather not.',
    ]);
    const once = await run('invoice.payment_failed', () => toolUse('refund_everything', {}));
    expect(once.result.failure).toBe(
      'the model called "refund_everything", which is not one of its tools (3 tries)',
    );
  });

  it('is absent with a decision', async () => {
    const { result } = await run('invoice.payment_failed', () =>
      toolUse('no_action_needed', { rationale: 'nothing to do' }),
    );
    expect(result.failure).toBeUndefined();
    expect(result.detail).toBeUndefined();
  });
});

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** The bound `requestBound` gives for a request as the fake received it. */
function boundOfSent(req: FakeRequest): RequestUsage {
  return requestBound({
    system: req.body.system,
    userText: req.body.messages[0].content,
    tools: req.body.tools,
    maxTokens: req.body.max_tokens,
  });
}

describe('the upper bound of a request', () => {
  it('is the UTF-8 bytes of the system prompt, user text and tool definitions, plus framing; output is max_tokens', () => {
    const tools = [
      {
        name: 'a_tool',
        description: 'Déjà vu €',
        input_schema: { type: 'object', properties: {} },
      },
    ];
    const bound = requestBound({ system: 'sys é', userText: 'ü€😀', tools, maxTokens: 777 });
    const toolBytes = bytes(
      JSON.stringify({
        name: 'a_tool',
        description: 'Déjà vu €',
        input_schema: tools[0]!.input_schema,
      }),
    );
    // é is 2 bytes, ü 2, € 3, 😀 4: bytes, not characters (a UTF-16 length would undercount).
    expect(bound).toEqual({
      input_tokens: 6 + 9 + toolBytes + FRAMING_TOKENS,
      output_tokens: 777,
    });
    expect(bytes('ü€😀')).toBe(9);
    expect('ü€😀'.length).toBeLessThan(9);
  });

  it('is at least the token count of what every catalog type sends (offline tokenizer)', async () => {
    for (const def of catalog.entries()) {
      const event = buildTestEvent(def.type);
      const text = userMessage(catalog, event as never, []);
      const { requests } = await run(def.type, () =>
        toolUse('no_action_needed', { rationale: 'nothing to do' }),
      );
      const sent = requests[0]!.body;
      const bound = requestBound({
        system: SYSTEM_PROMPT,
        userText: text,
        tools: sent.tools,
        maxTokens: 512,
      });
      const tokens =
        countTokens(SYSTEM_PROMPT) + countTokens(text) + countTokens(JSON.stringify(sent.tools));
      expect(bound.input_tokens - FRAMING_TOKENS, def.type).toBeGreaterThanOrEqual(tokens);
      // The slack is large: a token is several bytes of English or JSON.
      expect(bound.input_tokens - FRAMING_TOKENS, def.type).toBeGreaterThan(2 * tokens);
    }
  });

  it('of a later request adds the previous usage (cached input included), the tool results bytes and framing', () => {
    const results = {
      role: 'user',
      content: [{ type: 'tool_result', content: 'Erreur: « non »' }],
    };
    expect(
      nextRequestBound(
        {
          input_tokens: 1000,
          output_tokens: 50,
          cache_creation_input_tokens: 7,
          cache_read_input_tokens: null,
        },
        results,
        256,
      ),
    ).toEqual({
      input_tokens: 1000 + 7 + 50 + bytes(JSON.stringify(results)) + FRAMING_TOKENS,
      output_tokens: 256,
    });
  });
});

interface Reservation {
  bound: RequestUsage;
  /** Requests the fake had received when this one was reserved. */
  sentBefore: number;
  settled: RequestUsage[];
}

/** A budget that records every reservation and its settlements; `grant` decides each. */
function recordingBudget(
  sent: () => number,
  grant: (n: number, bound: RequestUsage) => boolean = () => true,
) {
  const reservations: Reservation[] = [];
  let refusals = 0;
  const budget: RequestBudget = {
    async reserve(bound) {
      if (!grant(reservations.length + refusals + 1, bound)) {
        refusals += 1;
        return null;
      }
      const r: Reservation = { bound, sentBefore: sent(), settled: [] };
      reservations.push(r);
      return {
        async settle(actual) {
          r.settled.push(actual);
        },
      };
    },
  };
  return { budget, reservations, refusals: () => refusals };
}

async function withBudget(
  respond: Responder,
  options: Partial<DecideOptions> & { grant?: (n: number, bound: RequestUsage) => boolean } = {},
) {
  const fake = await startFakeAnthropic(respond);
  cleanups.push(() => fake.close());
  const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.url, maxRetries: 0 });
  const recorder = recordingBudget(() => fake.requests.length, options.grant);
  const decision = decide(catalog.lookup('invoice.payment_failed')!, 'An event.', {
    client,
    model: 'claude-test',
    maxTokens: 512,
    maxTurns: 3,
    budget: recorder.budget,
    ...options,
  });
  return { decision, requests: fake.requests, ...recorder };
}

const invalid = () =>
  toolUse('retry_failed_payment', { action: 'refund_everything', rationale: 'x' });
const valid = () =>
  toolUse('retry_failed_payment', { action: 'retry_now', rationale: 'Card updated.' });

describe('decide with a request budget', () => {
  it('reserves each request before it is sent, and settles it once with its real usage', async () => {
    let n = 0;
    const usages = [
      { input_tokens: 900, output_tokens: 40 },
      { input_tokens: 1100, output_tokens: 35 },
    ];
    const { decision, requests, reservations } = await withBudget(() => {
      const answer = ++n === 1 ? invalid() : valid();
      return { ...answer, usage: usages[n - 1] };
    });
    const result = await decision;
    expect(result.decision).toMatchObject({ kind: 'tool', decision: { action: 'retry_now' } });
    expect(result.stopped).toBeUndefined();
    expect(requests).toHaveLength(2);
    expect(reservations.map((r) => r.sentBefore)).toEqual([0, 1]);
    expect(reservations.map((r) => r.settled)).toEqual([[usages[0]], [usages[1]]]);
    // The first bound is what was sent, and at least its bytes: the request body is JSON of it.
    expect(reservations[0]!.bound).toEqual(boundOfSent(requests[0]!));
    expect(reservations[0]!.bound.input_tokens).toBeGreaterThanOrEqual(
      bytes(JSON.stringify(requests[0]!.body)),
    );
    // The second: the first's real usage, the tool results it added, framing.
    const toolResults = requests[1]!.body.messages[2];
    expect(toolResults.content[0].type).toBe('tool_result');
    expect(reservations[1]!.bound).toEqual({
      input_tokens: 900 + 40 + bytes(JSON.stringify(toolResults)) + FRAMING_TOKENS,
      output_tokens: 512,
    });
    expect(result.usage).toEqual({ input_tokens: 2000, output_tokens: 75 });
  });

  it('asks for no reservation beyond the requests the runner makes', async () => {
    // A valid decision on the first request: the conversation ends, nothing more is reserved.
    const once = await withBudget(valid);
    await once.decision;
    expect(once.reservations).toHaveLength(1);
    // The model stops without a tool: the runner sends nothing more.
    const stops = await withBudget(() => message([{ type: 'text', text: 'Hmm.' }], 'end_turn'));
    const stopped = await stops.decision;
    expect(stopped.failure).toBe('the model answered without choosing an action (1 try)');
    expect(stops.requests).toHaveLength(1);
    expect(stops.reservations).toHaveLength(1);
    // Invalid every time: maxTurns requests, as many reservations, each settled once.
    const spent = await withBudget(invalid, { maxTurns: 2 });
    const result = await spent.decision;
    expect(result.failure).toMatch(/^the model chose action "refund_everything"; .* \(2 tries\)$/);
    expect(spent.requests).toHaveLength(2);
    expect(spent.reservations.map((r) => r.settled.length)).toEqual([1, 1]);
  });

  it('a refusal of the first request sends nothing', async () => {
    const { decision, requests, reservations } = await withBudget(valid, { grant: () => false });
    const result = await decision;
    expect(result).toEqual({
      decision: null,
      failure: 'budget reached before request 1',
      usage: { input_tokens: 0, output_tokens: 0 },
      calls: 0,
      stopped: 'budget',
    });
    expect(requests).toHaveLength(0);
    expect(reservations).toHaveLength(0);
  });

  it('a refusal of a later request ends the conversation before it is sent', async () => {
    const { decision, requests, reservations } = await withBudget(
      () => ({ ...invalid(), usage: { input_tokens: 800, output_tokens: 30 } }),
      { grant: (n) => n === 1 },
    );
    const result = await decision;
    expect(result).toMatchObject({
      decision: null,
      failure: 'budget reached before request 2',
      usage: { input_tokens: 800, output_tokens: 30 },
      calls: 1,
      stopped: 'budget',
    });
    expect(requests).toHaveLength(1);
    expect(reservations.map((r) => r.settled)).toEqual([
      [{ input_tokens: 800, output_tokens: 30 }],
    ]);
  });

  it('a request refused with an HTTP status is settled with nothing (not billed), and the error propagates', async () => {
    let n = 0;
    const { decision, requests, reservations } = await withBudget(() =>
      ++n === 1
        ? { ...invalid(), usage: { input_tokens: 700, output_tokens: 20 } }
        : apiError(500, 'api_error'),
    );
    await expect(decision).rejects.toBeInstanceOf(Anthropic.InternalServerError);
    expect(requests).toHaveLength(2);
    expect(reservations.map((r) => r.settled)).toEqual([
      [{ input_tokens: 700, output_tokens: 20 }],
      [{ input_tokens: 0, output_tokens: 0 }],
    ]);
  });

  it('a request cut off without an answer keeps its bound (it may have been billed), and the error propagates', async () => {
    const lost = await withBudget(() => ({ destroy: true }));
    await expect(lost.decision).rejects.toBeInstanceOf(Anthropic.APIConnectionError);
    expect(lost.reservations).toHaveLength(1);
    expect(lost.reservations[0]!.settled).toEqual([lost.reservations[0]!.bound]);

    const controller = new AbortController();
    const aborted = await withBudget(() => ({ hang: true }), { signal: controller.signal });
    await vi.waitFor(() => expect(aborted.requests).toHaveLength(1));
    controller.abort();
    await expect(aborted.decision).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
    expect(aborted.reservations[0]!.settled).toEqual([aborted.reservations[0]!.bound]);
  });

  it('without a budget makes the same requests', async () => {
    let n = 0;
    const { result, requests } = await run('invoice.payment_failed', () =>
      ++n === 1 ? invalid() : valid(),
    );
    expect(requests).toHaveLength(2);
    expect(result.stopped).toBeUndefined();
  });
});

/**
 * The demo's scripted model (src/agent/scripted-model.ts), spoken to as the loop speaks to it:
 * decide() through the real Anthropic SDK client, over HTTP on loopback. Every tool of the default
 * catalog gets its scripted decision, and each passes the same zod checks a model's would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelClient } from '../../src/agent/client.js';
import { decide } from '../../src/agent/decide.js';
import {
  DEMO_MODEL,
  DEMO_SCRIPT,
  MAX_REQUEST_BYTES,
  scriptedAnswer,
  startScriptedModel,
  type ScriptedModel,
} from '../../src/agent/scripted-model.js';
import { createCatalog } from '../../src/catalog/catalog.js';

let model: ScriptedModel;
beforeAll(async () => {
  model = await startScriptedModel();
});
afterAll(() => model.close());

const catalog = createCatalog();

describe('the scripted model', () => {
  it('answers every default catalog tool with its scripted decision, valid for decide()', async () => {
    const client = createModelClient({ apiKey: model.apiKey, baseURL: model.url, maxRetries: 0 });
    expect(
      catalog
        .entries()
        .map((d) => d.tool)
        .sort(),
    ).toEqual(Object.keys(DEMO_SCRIPT).sort());
    for (const def of catalog.entries()) {
      const result = await decide(def, `A ${def.type} event.`, {
        client,
        model: DEMO_MODEL,
        maxTokens: 1024,
        maxTurns: 2,
      });
      const entry = DEMO_SCRIPT[def.tool]!;
      // One request each: the scripted decision is valid the first time.
      expect(result.calls, def.tool).toBe(1);
      expect(result.usage).toEqual({ input_tokens: 0, output_tokens: 0 });
      if ('decide' in entry) {
        expect(result.decision).toEqual({ kind: 'tool', decision: entry.decide });
      } else if ('askAPerson' in entry) {
        expect(result.decision).toEqual({ kind: 'ask_a_person', reason: entry.askAPerson });
      } else {
        expect(result.decision).toEqual({ kind: 'no_action', rationale: entry.noAction });
      }
    }
  });

  it('asks a person for a tool it has no script for, and after a refused decision', () => {
    const custom = scriptedAnswer({ tools: [{ name: 'handle_payout' }, { name: 'ask_a_person' }] });
    expect(custom.name).toBe('ask_a_person');
    expect(String(custom.input.reason)).toContain('no decision for handle_payout');
    const refused = scriptedAnswer({
      tools: [{ name: 'handle_dispute' }],
      messages: [
        { role: 'user', content: 'event' },
        {
          role: 'user',
          content: [{ type: 'tool_result', is_error: true, content: 'action: invalid option' }],
        },
      ],
    });
    expect(refused.name).toBe('ask_a_person');
    expect(String(refused.input.reason)).toContain('action: invalid option');
    const notOffered = scriptedAnswer({
      tools: [
        { name: 'handle_dispute', input_schema: { properties: { action: { enum: ['accept'] } } } },
      ],
    });
    expect(notOffered.name).toBe('ask_a_person');
  });

  it('refuses a request without its key (401) and a body over its bound (413)', async () => {
    const noKey = await fetch(`${model.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-other' },
      body: '{}',
    });
    expect(noKey.status).toBe(401);
    const big = await fetch(`${model.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': model.apiKey },
      body: 'x'.repeat(MAX_REQUEST_BYTES + 1),
    }).catch((error: unknown) => error);
    // Refused with 413, or cut off while still sending: either way nothing is read past the bound.
    if (big instanceof Response) expect(big.status).toBe(413);
    else expect(big).toBeInstanceOf(Error);
    expect(model.answered()).toBe(catalog.entries().length);
  });
});

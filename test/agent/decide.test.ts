import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { decide } from '../../src/agent/decide.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import { startFakeAnthropic, toolUse, type Responder } from '../helpers/fake-anthropic.js';

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

import type Anthropic from '@anthropic-ai/sdk';
import { Ajv } from 'ajv';
import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/catalog/catalog.js';
import {
  exportCatalog,
  toAnthropicTool,
  toAnthropicToolUse,
  toJsonEntry,
  toOpenAITool,
  toOpenAIToolCall,
} from '../../src/catalog/formats.js';
import { fixed } from './fixtures.js';

const catalog = createCatalog();

function completeInput(type: string): Record<string, unknown> {
  const def = catalog.lookup(type)!;
  return {
    ...catalog.toolCall(type, fixed(type))!.input,
    action: def.actions[0],
    rationale: 'Evidence is strong and the deadline is a week away.',
  };
}

describe('tool formats', () => {
  // Assignments to the SDKs' own types: `tsc -p test` fails if a shape drifts from them.
  const anthropicTools: Anthropic.Tool[] = catalog.entries().map(toAnthropicTool);
  const openaiTools: OpenAI.Chat.Completions.ChatCompletionFunctionTool[] = catalog
    .entries()
    .map(toOpenAITool);

  it('exports one Anthropic and one OpenAI tool per catalog entry, with the same schema', () => {
    expect(anthropicTools.map((t) => t.name)).toEqual(catalog.entries().map((d) => d.tool));
    for (const [i, tool] of anthropicTools.entries()) {
      const openai = openaiTools[i]!;
      expect(openai.type).toBe('function');
      expect(openai.function.name).toBe(tool.name);
      expect(openai.function.description).toBe(tool.description);
      expect(openai.function.parameters).toEqual(tool.input_schema);
      expect(tool.input_schema.type).toBe('object');
      expect(tool.input_schema).not.toHaveProperty('$schema');
    }
  });

  it('compiles every schema with ajv and accepts a complete call, rejecting a bad decision', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    for (const tool of anthropicTools) {
      const def = catalog.entries().find((d) => d.tool === tool.name)!;
      const validate = ajv.compile(tool.input_schema);
      const input = completeInput(def.type);
      expect(validate(input), `${tool.name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      expect(validate({ ...input, action: 'wire_money_to_attacker' })).toBe(false);
      const { rationale: _r, ...noRationale } = input;
      expect(validate(noRationale)).toBe(false);
      expect(validate({ ...input, amount: 'lots' })).toBe(false);
    }
  });

  it('prints the json format with the event type, actions and untrusted fields', () => {
    const entries = exportCatalog(catalog, 'json') as ReturnType<typeof toJsonEntry>[];
    const dispute = entries.find((e) => e.event_type === 'charge.dispute.created')!;
    expect(dispute).toMatchObject({
      tool: 'handle_dispute',
      actions: ['accept', 'submit_evidence', 'escalate_to_human'],
      untrusted_fields: { evidence_customer_name: 'name', evidence_customer_email: 'email' },
    });
  });

  it('gives a tool call in both shapes', () => {
    const call = catalog.toolCall('charge.refunded', fixed('charge.refunded'))!;
    const block: Anthropic.ToolUseBlockParam = toAnthropicToolUse(call, 'toolu_01');
    expect(block).toEqual({
      type: 'tool_use',
      id: 'toolu_01',
      name: 'log_refund',
      input: call.input,
    });
    const openaiCall: OpenAI.Chat.Completions.ChatCompletionMessageToolCall = toOpenAIToolCall(
      call,
      'call_1',
    );
    expect(openaiCall.type).toBe('function');
    if (openaiCall.type === 'function') {
      expect(JSON.parse(openaiCall.function.arguments)).toEqual(call.input);
    }
  });
});

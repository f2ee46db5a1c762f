import { z } from 'zod';
import type { Catalog, ToolCall } from './catalog.js';
import type { ToolDefinition } from './tool.js';
import type { Precondition } from './precondition.js';

/**
 * The catalog's definitions in the shapes agents consume: Anthropic tool use, OpenAI function
 * calling, and our own JSON (with the event type and the untrusted fields).
 */
export type JsonSchema = Record<string, unknown>;

export function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { target: 'draft-7' }) as JsonSchema;
  return withoutSafeIntegerBounds(rest) as JsonSchema;
}

/** zod spells `.int()` with ±2^53 bounds; they say nothing to an agent and cost tokens. */
function withoutSafeIntegerBounds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutSafeIntegerBounds);
  if (node === null || typeof node !== 'object') return node;
  const entries = Object.entries(node).filter(
    ([k, v]) =>
      !(k === 'minimum' && v === Number.MIN_SAFE_INTEGER) &&
      !(k === 'maximum' && v === Number.MAX_SAFE_INTEGER),
  );
  return Object.fromEntries(entries.map(([k, v]) => [k, withoutSafeIntegerBounds(v)]));
}

export interface AnthropicToolDefinition {
  name: string;
  description: string;
  input_schema: { type: 'object'; [key: string]: unknown };
}

export interface OpenAIToolDefinition {
  type: 'function';
  function: { name: string; description: string; parameters: JsonSchema };
}

export interface CatalogJsonEntry {
  event_type: string;
  tool: string;
  description: string;
  actions: readonly string[];
  input_schema: JsonSchema;
  untrusted_fields: Readonly<Record<string, string>>;
  /** The object state under which the action still makes sense; null when none is stated. */
  precondition: Precondition | null;
}

export function toAnthropicTool(def: ToolDefinition): AnthropicToolDefinition {
  return {
    name: def.tool,
    description: def.description,
    input_schema: { ...jsonSchemaOf(def.inputSchema), type: 'object' },
  };
}

export function toOpenAITool(def: ToolDefinition): OpenAIToolDefinition {
  return {
    type: 'function',
    function: {
      name: def.tool,
      description: def.description,
      parameters: jsonSchemaOf(def.inputSchema),
    },
  };
}

export function toJsonEntry(def: ToolDefinition): CatalogJsonEntry {
  return {
    event_type: def.type,
    tool: def.tool,
    description: def.description,
    actions: def.actions,
    input_schema: jsonSchemaOf(def.inputSchema),
    untrusted_fields: def.untrusted,
    precondition: def.precondition ?? null,
  };
}

export const CATALOG_FORMATS = ['anthropic', 'openai', 'json'] as const;
export type CatalogFormat = (typeof CATALOG_FORMATS)[number];

export function exportCatalog(catalog: Catalog, format: CatalogFormat): unknown[] {
  const convert = { anthropic: toAnthropicTool, openai: toOpenAITool, json: toJsonEntry }[format];
  return catalog.entries().map((def) => convert(def));
}

/** A tool call as an Anthropic `tool_use` content block. */
export function toAnthropicToolUse(call: ToolCall, id: string) {
  return { type: 'tool_use' as const, id, name: call.name, input: call.input };
}

/** A tool call as an OpenAI chat-completions `tool_calls[]` item (arguments are a JSON string). */
export function toOpenAIToolCall(call: ToolCall, id: string) {
  return {
    id,
    type: 'function' as const,
    function: { name: call.name, arguments: JSON.stringify(call.input) },
  };
}

import { DEFAULT_DEFINITIONS, genericDefinition } from './definitions.js';
import { obj } from './extract.js';
import type { Precondition } from './precondition.js';
import { renameTool, type EventInput, type ToolDefinition } from './tool.js';

export type { ToolDefinition } from './tool.js';

export interface ToolCall {
  name: string;
  input: Record<string, unknown>;
}

/** `--config` `events`: add a type, rename or re-describe its tool, or remove it with `false`. */
export type EventOverrides = Record<
  string,
  false | { tool?: string; description?: string; precondition?: Precondition }
>;

export interface Catalog {
  lookup(type: string): ToolDefinition | undefined;
  entries(): readonly ToolDefinition[];
  /** Every mapped type, for the webhook and the Events API filter. */
  types(): string[];
  /**
   * The tool call an event maps to: the tool's name and the facts extracted from the event (no
   * model involved). Null for a type the catalog does not map.
   */
  toolCall(type: string, event: string | unknown): ToolCall | null;
}

const GENERIC_DESCRIPTION = (type: string) =>
  `A Stripe ${type} event occurred. Decide whether to act on it, take no action, or hand it to a person.`;

export function createCatalog(overrides: EventOverrides = {}): Catalog {
  const byType = new Map<string, ToolDefinition>(DEFAULT_DEFINITIONS.map((d) => [d.type, d]));
  for (const [type, change] of Object.entries(overrides)) {
    if (change === false) {
      byType.delete(type);
      continue;
    }
    const base = byType.get(type);
    const tool = change.tool ?? base?.tool ?? type.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64);
    const description = change.description ?? base?.description ?? GENERIC_DESCRIPTION(type);
    const def = base
      ? renameTool(base, tool, description)
      : genericDefinition(type, tool, description);
    // A user's precondition replaces the built-in one: they know their own handler's needs.
    byType.set(type, change.precondition ? { ...def, precondition: change.precondition } : def);
  }
  const entries = [...byType.values()];
  return {
    lookup: (type) => byType.get(type),
    entries: () => entries,
    types: () => [...byType.keys()],
    toolCall(type, event) {
      const def = byType.get(type);
      if (!def) return null;
      return { name: def.tool, input: def.extract(asEventInput(type, event)) };
    },
  };
}

/** Parses a stored payload if needed; an unreadable one still maps to its tool with null facts. */
export function asEventInput(type: string, event: unknown): EventInput {
  let parsed: unknown = event;
  if (typeof event === 'string') {
    try {
      parsed = JSON.parse(event);
    } catch {
      parsed = null;
    }
  }
  const data = obj(obj(parsed)?.data);
  return {
    type,
    data: { object: obj(data?.object) ?? {}, previous_attributes: data?.previous_attributes },
  };
}

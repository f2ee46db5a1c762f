import { jsonSchemaOf } from './formats.js';
import { withoutNullOptionals, type ToolDefinition } from './tool.js';

/**
 * A tool's decision schema as the fields a person fills (the console's ask-a-person form, the CLI's
 * `--set`, MCP's decide_event), and the check of what they filled: the same zod schema the model's
 * decision is validated against (ToolDefinition.decision), so a person's decision obeys the same
 * rules as the model's.
 */
export interface DecisionField {
  name: string;
  /** `choice`: one of `options` (the action); `text`: free text (a rationale, a message). */
  kind: 'choice' | 'text';
  options: readonly string[];
  required: boolean;
  description: string;
  /** Longer text (a message, a summary) gets a text area. */
  long: boolean;
}

const fieldCache = new WeakMap<ToolDefinition, DecisionField[]>();

export function decisionFields(def: ToolDefinition): DecisionField[] {
  const cached = fieldCache.get(def);
  if (cached) return cached;
  const schema = jsonSchemaOf(def.decision) as {
    properties?: Record<string, { enum?: unknown[]; description?: string }>;
    required?: string[];
  };
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties ?? {}).map(([name, p]) => {
    const options = Array.isArray(p.enum) ? p.enum.map(String) : [];
    return {
      name,
      kind: options.length ? ('choice' as const) : ('text' as const),
      options,
      required: required.has(name),
      description: p.description ?? '',
      long: name !== 'action' && options.length === 0,
    };
  });
  fieldCache.set(def, fields);
  return fields;
}

/** What is wrong with a field a person filled, in words shown next to it. */
export interface FieldIssue {
  field: string;
  message: string;
}

export type DecisionCheck =
  { ok: true; decision: Record<string, unknown> } | { ok: false; issues: FieldIssue[] };

/**
 * A person's decision checked by the tool's decision schema. Empty text means "left out" (a form
 * sends every field); a field the tool does not take is refused by name rather than dropped.
 */
export function checkDecision(def: ToolDefinition, filled: Record<string, unknown>): DecisionCheck {
  const shape = def.decision.shape;
  const issues: FieldIssue[] = [];
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(filled)) {
    if (!Object.hasOwn(shape, key)) {
      issues.push({
        field: key,
        message: `${def.tool} takes no field ${JSON.stringify(key)}; its fields are ${Object.keys(shape).join(', ')}`,
      });
      continue;
    }
    if (typeof value === 'string' && value.trim() === '') continue;
    input[key] = typeof value === 'string' ? value.trim() : value;
  }
  const parsed = def.decision.safeParse(withoutNullOptionals(def.decision, input));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = String(issue.path[0] ?? 'action');
      const message =
        issue.code === 'invalid_value' && field === 'action'
          ? `choose one of ${def.actions.join(', ')}`
          : input[field] === undefined
            ? `${field} is required`
            : issue.message;
      issues.push({ field, message });
    }
  }
  if (issues.length > 0 || !parsed.success) return { ok: false, issues };
  return { ok: true, decision: parsed.data as Record<string, unknown> };
}

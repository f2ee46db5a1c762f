import { z } from 'zod';
import type { Precondition } from './precondition.js';
import type { UntrustedKind } from './untrusted.js';

/** The event as an extractor sees it: parsed JSON, nothing trusted about its shape. */
export interface EventInput {
  type: string;
  data: { object: Record<string, unknown>; previous_attributes?: unknown };
}

/**
 * One catalog tool: which event type triggers it, what the agent must decide, the facts extracted
 * from the event (deterministically: no model builds a tool call) and the decision fields the
 * agent fills. `untrusted` names the facts that carry customer-written text.
 */
export interface ToolDefinition {
  type: string;
  tool: string;
  description: string;
  facts: z.ZodObject;
  decision: z.ZodObject;
  /** facts + decision: what an agent's complete call to this tool looks like. */
  inputSchema: z.ZodObject;
  untrusted: Readonly<Record<string, UntrustedKind>>;
  actions: readonly string[];
  /**
   * The state of the event's Stripe object under which the action still makes sense
   * (src/catalog/precondition.ts); undefined: none stated, nothing to re-check.
   */
  precondition?: Precondition;
  extract(event: EventInput): Record<string, unknown>;
}

export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * The agent loop's own tools, offered beside every catalog tool: no catalog entry may take their
 * names, or the model's "no action" would dispatch a catalog call (or the reverse).
 */
export const LOOP_TOOL_NAMES = ['no_action_needed', 'ask_a_person'] as const;

/** The facts every tool input carries, whatever the event type. */
export const commonFacts = {
  stripe_id: z
    .string()
    .nullable()
    .describe("The id of the event's Stripe object (dp_…, in_…, sub_…)"),
  amount: z
    .number()
    .int()
    .nullable()
    .describe(
      'Amount in the smallest currency unit (cents for USD), null when the object has none',
    ),
  currency: z.string().nullable().describe('Three-letter ISO currency code, lower case'),
  customer: z
    .string()
    .nullable()
    .describe('Stripe customer id (cus_…), null when not on the object'),
  reason: z.string().nullable().describe("Stripe's reason code for this event, null when none"),
};

const rationale = z
  .string()
  .min(1)
  .describe('Why this action, in one or two sentences a person reviewing it can check');

const customerMessage = z
  .string()
  .optional()
  .describe('The message to send the customer, when the action contacts them');

export interface ToolSpec {
  type: string;
  tool: string;
  description: string;
  facts: z.ZodRawShape;
  untrusted?: Record<string, UntrustedKind>;
  actions: readonly [string, ...string[]];
  /** Adds `customer_message` to the decision. */
  messagesCustomer?: boolean;
  extraDecision?: z.ZodRawShape;
  precondition?: Precondition;
  extract(event: EventInput): Record<string, unknown>;
}

export function defineTool(spec: ToolSpec): ToolDefinition {
  const facts = z.object({ ...commonFacts, ...spec.facts });
  const decision = z.object({
    action: z.enum(spec.actions).describe('What to do about this event'),
    rationale,
    ...(spec.messagesCustomer ? { customer_message: customerMessage } : {}),
    ...spec.extraDecision,
  });
  return {
    type: spec.type,
    tool: spec.tool,
    description: spec.description,
    facts,
    decision,
    inputSchema: facts.extend(decision.shape),
    untrusted: Object.freeze({ ...spec.untrusted }),
    actions: spec.actions,
    ...(spec.precondition ? { precondition: spec.precondition } : {}),
    extract: spec.extract,
  };
}

/**
 * The arguments a model sent, with null dropped from the optional fields that do not take null:
 * models in strict mode (and some others) send null for a field they leave out, and that means
 * leaving it out, not a mistake worth another turn. Required fields and nullable ones are kept.
 */
export function withoutNullOptionals(schema: z.ZodObject, input: unknown): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const shape = schema.shape;
  return Object.fromEntries(
    Object.entries(input).filter(([key, value]) => {
      if (value !== null || !Object.hasOwn(shape, key)) return true;
      const field = shape[key]!;
      return !field.safeParse(undefined).success || field.safeParse(null).success;
    }),
  );
}

/** A copy of a definition under another name or description (user config). */
export function renameTool(
  def: ToolDefinition,
  tool: string,
  description: string,
  precondition?: Precondition,
): ToolDefinition {
  return { ...def, tool, description, ...(precondition ? { precondition } : {}) };
}

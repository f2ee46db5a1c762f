import type Anthropic from '@anthropic-ai/sdk';
import { betaZodTool } from '@anthropic-ai/sdk/helpers/beta/zod';
import { z } from 'zod';
import type { ToolDefinition } from '../catalog/catalog.js';
import { jsonSchemaOf } from '../catalog/formats.js';
import { LOOP_TOOL_NAMES, withoutNullOptionals } from '../catalog/tool.js';
import { SYSTEM_PROMPT } from './prompt.js';

/** What the model decided for one event. */
export type Decision =
  | { kind: 'tool'; decision: Record<string, unknown> }
  | { kind: 'no_action'; rationale: string }
  | { kind: 'ask_a_person'; reason: string };

export interface DecideResult {
  decision: Decision | null;
  /** Why there is no decision (the last tool error the model got, or how it stopped). */
  failure?: string;
  usage: { input_tokens: number; output_tokens: number };
  calls: number;
}

export interface DecideOptions {
  client: Anthropic;
  model: string;
  maxTokens: number;
  maxTurns: number;
  signal?: AbortSignal;
}

export const [NO_ACTION_TOOL, ASK_A_PERSON_TOOL] = LOOP_TOOL_NAMES;

const unused = () => '';

/**
 * A tool for the SDK's runner whose JSON Schema is inline (the SDK's own conversion reuses even a
 * plain string through `$defs`/`$ref`, which some models and gateways read badly) and whose parse
 * treats null in an optional field as the field left out.
 */
function modelTool<S extends z.ZodObject>(name: string, description: string, schema: S) {
  const tool = betaZodTool({ name, description, inputSchema: schema, run: unused });
  return {
    ...tool,
    input_schema: { ...jsonSchemaOf(schema), type: 'object' as const },
    parse: (args: unknown): z.output<S> => schema.parse(withoutNullOptionals(schema, args)),
  };
}

/** The model-facing tools of a definition, built once: turning zod into JSON Schema is not free. */
const toolCache = new WeakMap<ToolDefinition, ReturnType<typeof buildTools>>();

function buildTools(def: ToolDefinition) {
  return {
    decision: modelTool(
      def.tool,
      `${def.description} The system attaches the event's facts; give only your decision.`,
      def.decision,
    ),
    noAction: modelTool(
      NO_ACTION_TOOL,
      'Decide that this event needs no action.',
      z.object({ rationale: z.string().min(1).describe('Why no action is needed') }),
    ),
    askAPerson: modelTool(
      ASK_A_PERSON_TOOL,
      'Hand this event to a person before anything happens.',
      z.object({ reason: z.string().min(1).describe('What the person must look at') }),
    ),
  };
}

function toolsFor(def: ToolDefinition) {
  let tools = toolCache.get(def);
  if (!tools) toolCache.set(def, (tools = buildTools(def)));
  return tools;
}

/**
 * One event, one bounded conversation with the SDK's tool runner. The catalog tool takes only the
 * decision fields: the facts are the catalog's extraction from the event, so the model neither
 * needs nor gets a say in them. An invalid decision comes back to the model as a tool error and it
 * tries again, up to `maxTurns` requests.
 */
export async function decide(
  def: ToolDefinition,
  userText: string,
  options: DecideOptions,
): Promise<DecideResult> {
  let decision: Decision | null = null;
  let failure: string | undefined;
  const decided = (d: Decision) => {
    decision ??= d;
    return 'Decision recorded. Nothing else is needed.';
  };
  const base = toolsFor(def);
  const tools = [
    {
      ...base.decision,
      run: (input: unknown) =>
        decided({ kind: 'tool', decision: input as Record<string, unknown> }),
    },
    {
      ...base.noAction,
      run: ({ rationale }: { rationale: string }) => decided({ kind: 'no_action', rationale }),
    },
    {
      ...base.askAPerson,
      run: ({ reason }: { reason: string }) => decided({ kind: 'ask_a_person', reason }),
    },
  ];
  const usage = { input_tokens: 0, output_tokens: 0 };
  let calls = 0;
  const runner = options.client.beta.messages.toolRunner(
    {
      model: options.model,
      max_tokens: options.maxTokens,
      system: SYSTEM_PROMPT,
      messages: [{ role: 'user', content: userText }],
      tools,
      max_iterations: options.maxTurns,
      thread: false,
    },
    { signal: options.signal },
  );
  for await (const message of runner) {
    calls += 1;
    usage.input_tokens += message.usage.input_tokens;
    usage.output_tokens += message.usage.output_tokens;
    // Run this turn's tool calls now, so a valid decision ends the conversation without asking the
    // model for a closing reply it does not need to write.
    const response = await runner.generateToolResponse();
    if (decision) break;
    const blocks = Array.isArray(response?.content) ? response.content : [];
    const errors = blocks.flatMap((b) =>
      b.type === 'tool_result' && b.is_error === true
        ? [typeof b.content === 'string' ? b.content : JSON.stringify(b.content)]
        : [],
    );
    failure = errors.length
      ? `invalid decision: ${errors.join('; ').slice(0, 500)}`
      : `the model stopped (${message.stop_reason ?? 'unknown'}) without calling a tool`;
  }
  if (!decision && !failure) failure = 'the model made no decision';
  return {
    decision,
    failure: decision ? undefined : `${failure} (after ${calls} request(s))`,
    usage,
    calls,
  };
}

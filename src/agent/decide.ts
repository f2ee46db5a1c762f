import type Anthropic from '@anthropic-ai/sdk';
import { betaZodTool } from '@anthropic-ai/sdk/helpers/beta/zod';
import { z } from 'zod';
import type { ToolDefinition } from '../catalog/catalog.js';
import { jsonSchemaOf } from '../catalog/formats.js';
import { LOOP_TOOL_NAMES, withoutNullOptionals } from '../catalog/tool.js';
import { mayHaveBeenBilled } from './client.js';
import { failureDetail, failureSentence, type ToolProblem, type Turn } from './failure-text.js';
import { SYSTEM_PROMPT } from './prompt.js';

/** What the model decided for one event. */
export type Decision =
  | { kind: 'tool'; decision: Record<string, unknown> }
  | { kind: 'no_action'; rationale: string }
  | { kind: 'ask_a_person'; reason: string };

/** Usage of one Messages API request (or an upper bound of it). */
export interface RequestUsage {
  input_tokens: number;
  output_tokens: number;
}
/** A reservation of one request's upper bound; settled with what the request really used. */
export interface RequestReservation {
  settle(actual: RequestUsage): Promise<void>;
}
/** Asked before every Messages API request of a decision: null refuses it (the budget is spent). */
export interface RequestBudget {
  reserve(bound: RequestUsage): Promise<RequestReservation | null>;
}

export interface DecideResult {
  decision: Decision | null;
  /**
   * Why there is no decision, as one sentence a person reads (failure-text.ts): what was wrong with
   * the last reply and how many requests were made. It becomes the nack's reason, so `last_error`.
   */
  failure?: string;
  /** The same failure in full: every request's failed calls, their inputs and issues (bounded). */
  detail?: string;
  usage: { input_tokens: number; output_tokens: number };
  calls: number;
  /** 'budget': the budget refused a request, so the conversation ended before it was sent. */
  stopped?: 'budget';
}

export interface DecideOptions {
  client: Anthropic;
  model: string;
  maxTokens: number;
  maxTurns: number;
  signal?: AbortSignal;
  /** Asked to reserve every request's upper bound before it is sent; none: no reservations. */
  budget?: RequestBudget;
}

/**
 * Input tokens added to every bound for what reaches the model without being in the bytes we
 * count: the tool-use system prompt the API adds whenever tools are offered (Anthropic's pricing
 * page lists 159 to 530 tokens for it, by model and tool choice), the role and turn markers around
 * each message, and the API's own rendering of the tool definitions.
 */
export const FRAMING_TOKENS = 1024;

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** What a tool definition sends: its name, description and JSON input schema. */
export interface ToolDefinitionSent {
  name: string;
  description?: string;
  input_schema: unknown;
}

/**
 * The bytes a tool definition sends. The loop's tools are built once per catalog definition
 * (toolsFor), so their schema objects repeat on every decision: the JSON is measured once per
 * schema rather than once per request, on the hot path of every budgeted decision.
 */
const measured = new WeakMap<object, { name: string; description?: string; bytes: number }>();

function toolBytes(t: ToolDefinitionSent): number {
  const key = typeof t.input_schema === 'object' && t.input_schema !== null ? t.input_schema : null;
  const known = key ? measured.get(key) : undefined;
  if (known && known.name === t.name && known.description === t.description) return known.bytes;
  const bytes = utf8Bytes(
    JSON.stringify({ name: t.name, description: t.description, input_schema: t.input_schema }),
  );
  if (key) measured.set(key, { name: t.name, description: t.description, bytes });
  return bytes;
}

/**
 * An upper bound of the usage of a conversation's first request, known before it is sent.
 *
 * Output: `max_tokens` caps it. Input: Claude's tokenizer works on UTF-8 bytes and no token stands
 * for less than one byte, so a text never counts more tokens than it has bytes; the byte length of
 * everything we send (system prompt, user text, each tool's name, description and input schema as
 * JSON, whose quotes and punctuation only add bytes) is therefore at least its token count, and
 * `FRAMING_TOKENS` covers what the API adds around it. In practice a token is 3 to 4 bytes of
 * English or JSON, so the bound is about three times the real input: a cap reserved with it is
 * never overrun by a request, at the price of waiting for settlements near the cap.
 */
export function requestBound(request: {
  system: string;
  userText: string;
  tools: readonly ToolDefinitionSent[];
  maxTokens: number;
}): RequestUsage {
  const tools = request.tools.reduce((sum, t) => sum + toolBytes(t), 0);
  return {
    input_tokens: utf8Bytes(request.system) + utf8Bytes(request.userText) + tools + FRAMING_TOKENS,
    output_tokens: request.maxTokens,
  };
}

/**
 * An upper bound of a later request of the same conversation. Each request sends the whole
 * conversation again (the runner keeps no server-side thread), so its input is the previous
 * request's input, plus the reply it got (which the model wrote in `output_tokens`), plus the tool
 * results added (bounded by their bytes as JSON, as in `requestBound`), plus the framing of the two
 * new turns. Cached input tokens, which the API reports apart from `input_tokens`, count too.
 */
export function nextRequestBound(
  previous: RequestUsage & {
    cache_creation_input_tokens?: number | null;
    cache_read_input_tokens?: number | null;
  },
  added: unknown,
  maxTokens: number,
): RequestUsage {
  return {
    input_tokens:
      previous.input_tokens +
      (previous.cache_creation_input_tokens ?? 0) +
      (previous.cache_read_input_tokens ?? 0) +
      previous.output_tokens +
      utf8Bytes(JSON.stringify(added ?? null)) +
      FRAMING_TOKENS,
    output_tokens: maxTokens,
  };
}

/** Stop reasons after which the runner sends the same turn again to let the model finish it. */
const UNFINISHED: readonly string[] = ['pause_turn', 'compaction'];

/**
 * Whether the runner will send another request after this one: the SDK's own rule (another turn
 * after tool results or an unfinished reply, while under `max_iterations`; 0 means no limit),
 * restated so that the budget is asked only for a request that will really be made.
 */
function anotherRequestFollows(
  stopReason: string | null,
  toolResponse: unknown,
  calls: number,
  maxTurns: number,
): boolean {
  if (maxTurns > 0 && calls >= maxTurns) return false;
  if (stopReason !== null && UNFINISHED.includes(stopReason)) return true;
  return stopReason === 'tool_use' && toolResponse !== null && toolResponse !== undefined;
}

const NOTHING: RequestUsage = { input_tokens: 0, output_tokens: 0 };

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
 *
 * With a `budget`, every request is reserved at its upper bound before it is sent (the first
 * before the runner starts, each later one in the loop body, since the runner sends the next only
 * when iterated again) and settled once with its real usage; a refusal ends the conversation with
 * `stopped: 'budget'` and no decision.
 */
export async function decide(
  def: ToolDefinition,
  userText: string,
  options: DecideOptions,
): Promise<DecideResult> {
  let decision: Decision | null = null;
  const decided = (d: Decision) => {
    decision ??= d;
    return 'Decision recorded. Nothing else is needed.';
  };
  // What went wrong in each request without a decision, for the sentence and the detail. The
  // runner tells the model only a string (zod's issues pretty-printed), so each tool's parse is
  // wrapped to keep the issues themselves, with the input they are about.
  const turns: Turn[] = [];
  let problems: ToolProblem[] = [];
  const checked = <T extends { name: string; parse: (args: unknown) => unknown }>(tool: T): T => ({
    ...tool,
    parse: (args: unknown) => {
      try {
        return tool.parse(args);
      } catch (error) {
        problems.push(
          error instanceof z.ZodError
            ? { kind: 'invalid', tool: tool.name, input: args, issues: error.issues }
            : {
                kind: 'error',
                tool: tool.name,
                input: args,
                error: error instanceof Error ? error.message : String(error),
              },
        );
        throw error;
      }
    },
  });
  const base = toolsFor(def);
  const tools = [
    {
      ...checked(base.decision),
      run: (input: unknown) =>
        decided({ kind: 'tool', decision: input as Record<string, unknown> }),
    },
    {
      ...checked(base.noAction),
      run: ({ rationale }: { rationale: string }) => decided({ kind: 'no_action', rationale }),
    },
    {
      ...checked(base.askAPerson),
      run: ({ reason }: { reason: string }) => decided({ kind: 'ask_a_person', reason }),
    },
  ];
  const offered = new Set(tools.map((t) => t.name));
  const usage = { input_tokens: 0, output_tokens: 0 };
  let calls = 0;
  const { budget } = options;
  // The reservation of the request about to be sent or in flight, with the bound it holds.
  let open: { reservation: RequestReservation; bound: RequestUsage } | null = null;
  const settle = async (actual: RequestUsage) => {
    const held = open;
    open = null;
    if (held) await held.reservation.settle(actual);
  };
  const refused = (): DecideResult => ({
    decision: null,
    failure: `budget reached before request ${calls + 1}`,
    usage,
    calls,
    stopped: 'budget',
  });
  if (budget) {
    const bound = requestBound({
      system: SYSTEM_PROMPT,
      userText,
      tools,
      maxTokens: options.maxTokens,
    });
    const reservation = await budget.reserve(bound);
    if (!reservation) return refused();
    open = { reservation, bound };
  }
  let stopped = false;
  try {
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
      await settle({
        input_tokens: message.usage.input_tokens,
        output_tokens: message.usage.output_tokens,
      });
      // Run this turn's tool calls now, so a valid decision ends the conversation without asking
      // the model for a closing reply it does not need to write.
      problems = [];
      const response = await runner.generateToolResponse();
      if (decision) break;
      turns.push(turnOf(message.content, message.stop_reason, problems, response, offered));
      if (budget && anotherRequestFollows(message.stop_reason, response, calls, options.maxTurns)) {
        const bound = nextRequestBound(message.usage, response, options.maxTokens);
        const reservation = await budget.reserve(bound);
        if (!reservation) {
          stopped = true;
          break;
        }
        open = { reservation, bound };
      }
    }
  } catch (error) {
    // The request in flight failed. Refused with an HTTP status, it was not billed; cut off any
    // other way (connection lost, timeout, abort), it may have been, so it keeps its bound. The
    // request's error is what the caller must see, so a failure to settle does not replace it.
    const held = open;
    if (held) await settle(mayHaveBeenBilled(error) ? held.bound : NOTHING).catch(() => undefined);
    throw error;
  } finally {
    // Reserved for a request the runner then did not send (it ended the conversation itself).
    await settle(NOTHING);
  }
  if (stopped) return refused();
  if (decision) return { decision, usage, calls };
  return { decision, failure: failureSentence(turns), detail: failureDetail(turns), usage, calls };
}

/**
 * One request without a decision: the failed calls its parses recorded, the tools the model named
 * that it was not offered (the runner answers those without parsing), and any other error the
 * runner answered with.
 */
function turnOf(
  content: readonly Anthropic.Beta.BetaContentBlock[],
  stopReason: string | null,
  parsed: readonly ToolProblem[],
  response: { content?: unknown } | null | undefined,
  offered: ReadonlySet<string>,
): Turn {
  const problems: ToolProblem[] = [...parsed];
  const text: string[] = [];
  const uses = new Map<string, { name: string; input: unknown }>();
  for (const block of content) {
    if (block.type === 'text') text.push(block.text);
    if (block.type !== 'tool_use') continue;
    uses.set(block.id, block);
    if (!offered.has(block.name)) {
      problems.push({ kind: 'unknown_tool', tool: block.name, input: block.input });
    }
  }
  if (problems.length === 0) {
    // Errors neither a parse nor the tool names account for: kept in the runner's words.
    const blocks = Array.isArray(response?.content) ? (response.content as unknown[]) : [];
    type Result = { type?: string; tool_use_id?: string; is_error?: boolean; content?: unknown };
    for (const b of blocks as Result[]) {
      if (b.type !== 'tool_result' || b.is_error !== true) continue;
      const use = uses.get(b.tool_use_id ?? '');
      const error = typeof b.content === 'string' ? b.content : JSON.stringify(b.content);
      problems.push({ kind: 'error', tool: use?.name ?? 'a tool', input: use?.input, error });
    }
  }
  return { problems, stopReason, text: text.join('\n') };
}

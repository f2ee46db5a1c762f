import { z } from 'zod';
import { EVENT_OUTCOMES, EVENT_STATUSES } from '../buffer/buffer.js';

/**
 * The MCP tools as data: name, description, input and output schemas, annotations. The handlers
 * live in handlers.ts; server.ts joins the two. Input messages say what to do, because a model
 * reads them when its arguments are refused.
 */

export const MAX_PAGE = 200;
export const DEFAULT_PAGE = 20;

/**
 * A tool's arguments: a closed object (`additionalProperties: false`), so strict-mode clients
 * (OpenAI's Structured Outputs, the OpenAI Agents SDK) convert every tool, and a misspelt argument
 * is refused with its name instead of silently dropped.
 */
function args<T extends z.ZodRawShape>(shape: T) {
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown argument${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}: this tool takes ${Object.keys(shape).join(', ') || 'no arguments'}`
        : undefined,
  });
}

/**
 * An optional argument that also accepts null: strict-mode clients must send every property, and
 * send null for the ones they leave out, which means the same as leaving it out.
 */
function optional<T extends z.ZodType>(schema: T, description: string) {
  return schema
    .nullish()
    .transform((value) => value ?? undefined)
    .describe(description);
}

/** A page's cursor, as list_pending_events and list_events take it. */
const pageCursor = optional(
  z.string().max(100, 'cursor is not one this server issued; call again without a cursor'),
  'next_cursor from the previous page; leave it out for the first page',
);

const eventId = z
  .string({ error: 'id is required: the Stripe event id (evt_…) from list_pending_events' })
  .min(1, 'id is empty: give the Stripe event id (evt_…) from list_pending_events')
  .max(255, 'id is too long to be a Stripe event id (evt_…)')
  .describe('The Stripe event id (evt_…), as list_pending_events returns it');

/*
 * Output schemas say the shape and nothing more: clients validate structuredContent against them,
 * and every tools/list carries them, so their field descriptions (and the ±2^53 bounds `.int()`
 * adds) cost each session thousands of characters no model needs. What each field means is in
 * docs/MCP.md; input schemas keep their descriptions, which a model reads to call the tool.
 */
const toolCall = z.object({
  name: z.string(),
  input: z.record(z.string(), z.unknown()),
});

const status = z.enum(EVENT_STATUSES);
const outcome = z.enum(EVENT_OUTCOMES).nullable();

export const summarySchema = z.object({
  id: z.string(),
  type: z.string(),
  created: z.number().nullable(),
  livemode: z.boolean(),
  object_id: z.string().nullable(),
  account: z.string().nullable(),
  status,
  outcome,
  attempts: z.number(),
  tool_call: toolCall.nullable(),
  untrusted_facts: z.string().nullable(),
  waiting_reason: z.string().nullable().optional(),
});

const historyEntry = z.object({
  at: z.string(),
  kind: z.string(),
  model: z.string().optional(),
  tool_call: toolCall.optional(),
  outcome: z.string().optional(),
  note: z.string().optional(),
  usage: z.object({ input_tokens: z.number(), output_tokens: z.number() }).optional(),
  latency_ms: z.number().optional(),
  by: z.string().optional(),
});

const notice = z.string();

const listPendingEvents = {
  name: 'list_pending_events',
  title: 'List pending Stripe events',
  description:
    'Lists the Stripe events waiting to be handled, oldest first, each with the tool call it maps to (e.g. charge.dispute.created → handle_dispute); customer-written facts are in untrusted_facts, fenced. Page with next_cursor.',
  inputSchema: args({
    types: optional(
      z
        .array(z.string().min(1, 'event types cannot be empty strings'))
        .max(50, 'give at most 50 event types'),
      'Only these event types, e.g. ["charge.dispute.created"]; default: all',
    ),
    limit: z
      .number({ error: 'limit must be a whole number from 1 to 200; leave it out for 20' })
      .int('limit must be a whole number from 1 to 200')
      .min(1, 'limit must be at least 1; leave it out for 20')
      .max(MAX_PAGE, 'limit must be at most 200; page through more with next_cursor')
      .nullish()
      .default(DEFAULT_PAGE)
      .transform((limit) => limit ?? DEFAULT_PAGE)
      .describe('How many events per page, 1 to 200 (default 20)'),
    cursor: pageCursor,
  }),
  outputSchema: {
    events: z.array(summarySchema),
    next_cursor: z.string().nullable(),
    total_pending: z.number(),
    notice,
  },
  annotations: { readOnlyHint: true, openWorldHint: false },
} as const;

const pageLimit = z
  .number({ error: 'limit must be a whole number from 1 to 200; leave it out for 20' })
  .int('limit must be a whole number from 1 to 200')
  .min(1, 'limit must be at least 1; leave it out for 20')
  .max(MAX_PAGE, 'limit must be at most 200; page through more with next_cursor')
  .nullish()
  .default(DEFAULT_PAGE)
  .transform((limit) => limit ?? DEFAULT_PAGE)
  .describe('How many events per page, 1 to 200 (default 20)');

const listEvents = {
  name: 'list_events',
  title: 'List stored Stripe events',
  description:
    'Lists stored events of any status in arrival order, filtered by status, type and outcome (how a finished event ended: e.g. outcomes ["approved","rejected"]). Shaped as list_pending_events; page with next_cursor.',
  inputSchema: args({
    statuses: optional(
      z.array(status).max(EVENT_STATUSES.length, 'give each status at most once'),
      `Only these statuses (${EVENT_STATUSES.join(', ')}); default: all`,
    ),
    types: optional(
      z
        .array(z.string().min(1, 'event types cannot be empty strings'))
        .max(50, 'give at most 50 event types'),
      'Only these event types, e.g. ["charge.dispute.created"]; default: all',
    ),
    outcomes: optional(
      z
        .array(
          z.enum(EVENT_OUTCOMES, {
            error: `an outcome is one of ${EVENT_OUTCOMES.join(', ')}`,
          }),
        )
        .max(EVENT_OUTCOMES.length, 'give each outcome at most once'),
      `Only finished events that ended so (${EVENT_OUTCOMES.join(', ')}); default: any`,
    ),
    limit: pageLimit,
    cursor: pageCursor,
  }),
  outputSchema: {
    events: z.array(summarySchema),
    next_cursor: z.string().nullable(),
    notice,
  },
  annotations: { readOnlyHint: true, openWorldHint: false },
} as const;

const getEvent = {
  name: 'get_event',
  title: 'Get one Stripe event',
  description:
    'Returns one stored event: the tool call it maps to (its facts), its status, attempts and history (every decision and state change); the event as Stripe sent it with include_event. Customer-written text is fenced.',
  inputSchema: args({
    id: eventId,
    include_event: optional(
      z.boolean(),
      'Also return the event as Stripe sent it (default: only for a type no tool maps)',
    ),
  }),
  outputSchema: {
    id: z.string(),
    type: z.string(),
    event: z.record(z.string(), z.unknown()).optional(),
    tool_call: toolCall.nullable(),
    untrusted_facts: z.string().nullable(),
    status,
    outcome,
    attempts: z.number(),
    received_at: z.string(),
    retry_at: z.string().nullable(),
    last_error: z.string().nullable(),
    history: z.array(historyEntry),
    notice,
  },
  annotations: { readOnlyHint: true, openWorldHint: false },
} as const;

const ackEvent = {
  name: 'ack_event',
  title: 'Acknowledge a Stripe event',
  description:
    'Marks an event as handled so it leaves the pending queue. Acking an event twice is fine. Add a note saying what was done; it is kept in the event history. Acking an event awaiting approval does not approve its decided call: the history records that the call was not carried out (to dispatch it, use approve_action).',
  inputSchema: args({
    id: eventId,
    note: optional(
      z.string().max(2000, 'note must be at most 2000 characters'),
      'What was done about the event, kept in its history',
    ),
  }),
  outputSchema: { id: z.string(), status: z.literal('acked') },
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
} as const;

const nackEvent = {
  name: 'nack_event',
  title: 'Give a Stripe event back',
  description:
    'Reports that handling an event failed: it goes back to pending for another try (after retry_in_seconds), or to dead once its attempts run out. Counts an attempt each time. Refused for an event awaiting approval (its decided call would be discarded and decided again): turn the call down with reject_action instead.',
  inputSchema: args({
    id: eventId,
    reason: z
      .string({ error: 'reason is required: say why the event could not be handled' })
      .min(1, 'reason is empty: say why the event could not be handled')
      .max(2000, 'reason must be at most 2000 characters')
      .describe('Why the event could not be handled now'),
    retry_in_seconds: optional(
      z
        .number({ error: 'retry_in_seconds must be a number of seconds from 0 to 604800' })
        .int('retry_in_seconds must be a whole number of seconds')
        .min(0, 'retry_in_seconds cannot be negative')
        .max(7 * 24 * 3600, 'retry_in_seconds must be at most 604800 (7 days)'),
      'Wait this long before the event may be handled again (default 0)',
    ),
  }),
  outputSchema: {
    id: z.string(),
    status: z.enum(['pending', 'dead']),
    attempts: z.number(),
    retry_at: z.string().nullable(),
  },
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: false,
  },
} as const;

const replayEvent = {
  name: 'replay_event',
  title: 'Replay a Stripe event',
  description:
    'Puts a stored event back to pending with its attempts reset, so it is handled again: e.g. a dead event once the cause of its failures is fixed, or an acked one that must be redone. Refused while the event is claimed (being handled) or awaiting approval.',
  inputSchema: args({
    id: eventId,
    note: optional(
      z.string().max(2000, 'note must be at most 2000 characters'),
      'Why it is replayed, kept in its history',
    ),
  }),
  outputSchema: {
    id: z.string(),
    status: z.literal('pending'),
    attempts: z.number(),
    previous_status: status,
  },
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
} as const;

const backfillEvents = {
  name: 'backfill_events',
  title: "Pull missed events from Stripe's Events API",
  description:
    "Fetches events this server may have missed (while it was down, or of types added since) from Stripe's Events API and queues them through the same dedup as webhooks: nothing is stored twice. Reports progress (fetched, queued) as MCP progress notifications. Needs STRIPE_SECRET_KEY on the server.",
  inputSchema: args({
    since: optional(
      z.string().max(100, 'since is a duration (24h, 7d), an ISO date or an event id (evt_…)'),
      'How far back: a duration such as 24h or 7d, an ISO date, Unix seconds, or an event id; default 24h (Stripe keeps 30 days)',
    ),
    types: optional(
      z.array(z.string().min(1)).max(100),
      'Only these event types; default: every type the catalog maps',
    ),
  }),
  outputSchema: {
    fetched: z.number(),
    queued: z.number(),
    duplicate: z.number(),
    ignored: z.number(),
  },
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
} as const;

const agentState = z.object({
  paused: z.boolean(),
  reason: z.string().nullable(),
  note: z.string().nullable(),
  by: z.string().nullable(),
  since: z.string().nullable(),
  until: z.string().nullable(),
});

const agentInstance = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number(),
  state: z.enum(['running', 'paused']),
  reason: z.string().nullable(),
  note: z.string().nullable(),
  since: z.string(),
  until: z.string().nullable(),
  last_seen: z.string(),
});

const getQueueStatus = {
  name: 'get_queue_status',
  title: 'Stripe event queue status',
  description:
    "Counts events by status (pending, claimed, acked, dead, awaiting_approval), pending events by type, the age of the oldest pending event, and the queue's stored retry policy.",
  inputSchema: args({}),
  outputSchema: {
    counts: z.object({
      pending: z.number(),
      claimed: z.number(),
      acked: z.number(),
      dead: z.number(),
      awaiting_approval: z.number(),
    }),
    by_type: z.record(z.string(), z.number()),
    oldest_pending_age_seconds: z.number().nullable(),
    policy: z.object({
      max_attempts: z.number(),
      retry_base_seconds: z.number(),
    }),
    agent: agentState.extend({
      instances: z.array(agentInstance),
    }),
    // Whether this server re-reads each event's Stripe object before acting (docs/MCP.md).
    facts_rechecked: z.boolean(),
  },
  annotations: { readOnlyHint: true, openWorldHint: false },
} as const;

const pauseAgent = {
  name: 'pause_agent',
  title: 'Pause the agent loop',
  description:
    'Pauses the built-in agent loops on this queue (every instance): they finish the events they hold and claim no new ones; events wait pending, nothing goes dead. Stays paused until resume_agent.',
  inputSchema: args({
    reason: optional(z.string().max(500), 'Why it is paused, shown in get_queue_status and logs'),
  }),
  outputSchema: { agent: agentState },
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
} as const;

const resumeAgent = {
  name: 'resume_agent',
  title: 'Resume the agent loop',
  description:
    "Lifts the agent loops' store-wide pause, whoever set it (a person, or the daily budget: that one comes back while the day's budget is spent). A loop's own circuit breaker is not a stored pause: it lifts when a probe succeeds.",
  inputSchema: args({}),
  outputSchema: { agent: agentState },
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
} as const;

/**
 * Beside a tool call's raw `amount` (an integer in minor units, kept as Stripe sent it), the same
 * amount as a person reads it: what an approver must see before money moves.
 */
const amountDisplay = z.string().nullable();

const approval = z.object({
  id: z.string(),
  type: z.string(),
  since: z.string(),
  tool_call: toolCall.nullable(),
  amount_display: amountDisplay,
  reason: z.string().nullable(),
});

const listApprovals = {
  name: 'list_approvals',
  title: 'List decisions waiting for approval',
  description:
    "Lists the agent loop's decided tool calls that wait for a person (awaiting_approval): those the config gates by tool or amount, and events the agent handed to a person. Approve with approve_action, reject with reject_action.",
  inputSchema: args({}),
  outputSchema: { approvals: z.array(approval), notice },
  annotations: { readOnlyHint: true, openWorldHint: false },
} as const;

const approvalResult = {
  id: z.string(),
  type: z.string(),
  status: z.enum(['acked', 'awaiting_approval']),
  outcome: z.string(),
  tool_call: toolCall.nullable(),
  amount_display: amountDisplay,
  notice,
};

const approveAction = {
  name: 'approve_action',
  title: 'Approve a waiting decision',
  description:
    "Approves the decided tool call of an event in awaiting_approval: it is dispatched exactly as decided (the event's own facts) to the configured handler, then the event is acked. If the handler fails it keeps waiting.",
  inputSchema: args({ id: eventId }),
  outputSchema: approvalResult,
  annotations: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: false,
    openWorldHint: true,
  },
} as const;

const rejectAction = {
  name: 'reject_action',
  title: 'Reject a waiting decision',
  description:
    'Rejects the decided tool call of an event in awaiting_approval: nothing is dispatched, the reason is recorded, and the event is acked.',
  inputSchema: args({
    id: eventId,
    reason: z
      .string({ error: 'reason is required: say why the decision is rejected' })
      .min(1, 'reason is empty: say why the decision is rejected')
      .max(2000, 'reason must be at most 2000 characters')
      .describe('Why the decision is rejected, kept in the event history'),
  }),
  outputSchema: approvalResult,
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: false,
  },
} as const;

const decideEvent = {
  name: 'decide_event',
  title: 'Decide an event the agent handed to a person',
  description:
    "For an event in awaiting_approval with no decided call (the agent asked a person; list_approvals shows it as 'a person must look'): the person's decision — one of the tool's actions and its decision fields (rationale, and customer_message, evidence_summary, offer … as the tool takes them). Checked by the same rules as the model's decision, then dispatched to the configured handler like an approved call, and the event acked. Only with the user's decision: this sends. To close it without dispatching, ack_event with a note.",
  inputSchema: args({
    id: eventId,
    action: z
      .string({ error: "action is required: one of the tool's actions (see the event's tool)" })
      .min(1, "action is empty: give one of the tool's actions")
      .max(64, 'action is too long to be an action name')
      .describe("One of the event's tool's actions (e.g. submit_evidence, accept)"),
    rationale: z
      .string({ error: 'rationale is required: why this action, in a sentence or two' })
      .min(1, 'rationale is empty: say why this action')
      .max(2000, 'rationale must be at most 2000 characters')
      .describe('Why this action, as the person decided it (every tool takes one)'),
    fields: optional(
      z
        .array(
          z.strictObject({
            name: z.string().min(1).max(64).describe('The field (customer_message, offer …)'),
            value: z.string().max(2000, 'a field is at most 2000 characters'),
          }),
        )
        .max(20, 'at most 20 fields'),
      "The tool's other decision fields as name/value pairs (evidence_summary, customer_message, offer … as the tool takes them)",
    ),
  }),
  outputSchema: approvalResult,
  annotations: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: false,
    openWorldHint: true,
  },
} as const;

export const TOOLS = {
  list_pending_events: listPendingEvents,
  list_events: listEvents,
  get_event: getEvent,
  ack_event: ackEvent,
  nack_event: nackEvent,
  replay_event: replayEvent,
  backfill_events: backfillEvents,
  get_queue_status: getQueueStatus,
  list_approvals: listApprovals,
  approve_action: approveAction,
  reject_action: rejectAction,
  decide_event: decideEvent,
  pause_agent: pauseAgent,
  resume_agent: resumeAgent,
} as const;

export type ToolName = keyof typeof TOOLS;
type Shape<T> = T extends z.ZodRawShape ? z.infer<z.ZodObject<T>> : never;
export type ToolInput<N extends ToolName> = z.output<(typeof TOOLS)[N]['inputSchema']>;
export type ToolOutput<N extends ToolName> = Shape<(typeof TOOLS)[N]['outputSchema']>;

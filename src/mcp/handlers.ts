import type { AgentInstance } from '../buffer/ledger.js';
import type { EventsOptions } from './events/handlers.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type {
  CallToolResult,
  ServerNotification,
  ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { AgentPause, EventBuffer } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Enrich } from '../catalog/enrich.js';
import { fenceModelText, type RedactKind } from '../catalog/untrusted.js';
import {
  AppError,
  BeingHandledError,
  EventNotFoundError,
  InvalidCursorError,
  InvalidTransitionError,
  LeaseLostError,
  NotAwaitingApprovalError,
  StoreUnavailableError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { ApprovalResult } from '../operations/approvals.js';
import type { BackfillProgress } from '../operations/backfill.js';
import { NOT_RECHECKED } from '../operations/fresh.js';
import type { QueueOperations } from '../operations/queue.js';
import { ADMIN, historyName, type Actor } from '../operations/people.js';
import type { ToolInput, ToolName, ToolOutput } from './tools.js';
import { callAmount } from '../money.js';
import {
  amountText,
  detailForModel,
  fencedCall,
  leanSummary,
  newView,
  statusText,
  summaryLine,
} from './view.js';

/** What every part of the MCP surface works from. */
export interface McpContext {
  /** Read side only: resources, prompts and the change feed. Every change goes through operations. */
  buffer: EventBuffer;
  /** The queue operations every door shares (src/operations/queue.ts). */
  operations: QueueOperations;
  catalog: Catalog;
  /** Personal data replaced before a model sees it (--redact). */
  redact: readonly RedactKind[];
  logger: Logger;
  /** --enrich: adds facts the event lacks to the tool call get_event and the event resource show. */
  enrich?: Enrich;
  /**
   * Who this session acts for (operations/people.ts): a person by their bearer token, else the
   * administrator (MCP_AUTH_TOKEN, stdio, a loopback server nobody signs in to).
   */
  actor?: Actor;
  /** MCP Events (events/handlers.ts): callback address allowances, caps, the deliverer. */
  events?: EventsOptions;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * Who asks, for the history: a person by name; the administrator as before, by the HTTP session,
 * else (stdio, in-memory) this process.
 */
function whoIn(actor: Actor | undefined, extra: Extra | undefined): string {
  return historyName(
    actor ?? ADMIN,
    extra?.sessionId ? `mcp:${extra.sessionId}` : `mcp:${process.pid}`,
  );
}

export type ToolHandlers = {
  [N in ToolName]: (input: ToolInput<N>, extra?: Extra) => Promise<CallToolResult>;
};

/**
 * A result with `structuredContent` (valid against the tool's output schema) and two text
 * blocks: a short line for people, then the same structure as JSON for clients that only read
 * text content (the MCP spec's advice for tools with an output schema).
 */
function result<N extends ToolName>(structured: ToolOutput<N>, text: string): CallToolResult {
  const data = structured as Record<string, unknown>;
  return {
    content: [
      { type: 'text', text },
      { type: 'text', text: JSON.stringify(data) },
    ],
    structuredContent: data,
  };
}

function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The message a model (or person) reads when a tool fails: what went wrong and what to do. */
export function errorMessage(error: unknown, logger: Logger): string {
  if (error instanceof EventNotFoundError) {
    return `${sentence(error.message)}. Check the id (evt_…) against list_pending_events; handled events are kept for 7 days.`;
  }
  if (error instanceof InvalidCursorError) return `${sentence(error.message)}.`;
  // The store's refusals say what to do themselves: the same words the CLI and console show.
  if (
    error instanceof BeingHandledError ||
    error instanceof NotAwaitingApprovalError ||
    error instanceof LeaseLostError
  ) {
    return `${sentence(error.message)}.`;
  }
  if (error instanceof InvalidTransitionError) {
    return `${sentence(error.message)}. A person can nack only pending events (a held call is turned down with reject_action); call get_event to see its status.`;
  }
  if (error instanceof StoreUnavailableError) {
    logger.warn('mcp tool failed: store unavailable', { error });
    return `The event store is unavailable (${error.message}); nothing was changed. Try again in a few seconds; if it persists, the server's operator should check its logs and data directory.`;
  }
  if (error instanceof AppError) return `${sentence(error.message)}.`;
  logger.error('mcp tool failed', { error });
  return `Unexpected error: ${error instanceof Error ? error.message : String(error)}. Try again; if it persists, report it with the server's logs.`;
}

export function toolError(error: unknown, logger: Logger): CallToolResult {
  return { content: [{ type: 'text', text: errorMessage(error, logger) }], isError: true };
}

/** Why a held event waits: the note of its last `held` history entry (the gate, or the model's words). */
async function heldReason(operations: QueueOperations, id: string): Promise<string | null> {
  try {
    const { history } = await operations.get(id);
    return history.findLast((h) => h.kind === 'held')?.note ?? null;
  } catch (error) {
    // Gone between the list and this read (pruned): the line goes without a reason. Anything else
    // (the store failing) fails the call, as the list itself would.
    if (error instanceof EventNotFoundError) return null;
    throw error;
  }
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function createToolHandlers(ctx: McpContext): ToolHandlers {
  const { operations, catalog, redact, logger } = ctx;
  const who = (extra: Extra | undefined) => whoIn(ctx.actor, extra);

  const handlers: Omit<
    ToolHandlers,
    'list_approvals' | 'approve_action' | 'reject_action' | 'decide_event' | 'backfill_events'
  > &
    Partial<ToolHandlers> = {
    async list_pending_events({ types, limit, cursor }) {
      const wanted = types && types.length > 0 ? [...new Set(types)] : undefined;
      const [page, stats] = await Promise.all([
        operations.list({ statuses: ['pending'], types: wanted, limit, cursor: cursor ?? null }),
        operations.status(),
      ]);
      const view = newView(redact);
      const events = page.events.map((e) => leanSummary(e, catalog, view));
      const total = wanted
        ? wanted.reduce((n, t) => n + (stats.pendingByType[t] ?? 0), 0)
        : stats.counts.pending;
      const of = wanted ? ` of type ${wanted.join(', ')}` : '';
      const lines =
        events.length === 0
          ? [cursor ? `No more pending events${of}.` : `No pending events${of}.`]
          : [
              `${events.length} of ${total} pending event(s)${of}, oldest first:`,
              ...events.map(summaryLine),
            ];
      if (page.nextCursor) {
        lines.push(`More: call list_pending_events with cursor "${page.nextCursor}".`);
      }
      if (events.length > 0) lines.push(view.notice);
      return result<'list_pending_events'>(
        { events, next_cursor: page.nextCursor, total_pending: total, notice: view.notice },
        lines.join('\n'),
      );
    },

    async list_events({ statuses, types, outcomes, limit, cursor }) {
      const page = await operations.list({
        statuses: statuses && statuses.length > 0 ? [...new Set(statuses)] : undefined,
        types,
        outcomes,
        limit,
        cursor: cursor ?? null,
      });
      const view = newView(redact);
      // A held event says why it waits: the reason is in its history (the last `held` entry),
      // read only for the held events of this page.
      const events = await Promise.all(
        page.events.map(async (e) =>
          leanSummary(
            e,
            catalog,
            view,
            e.status === 'awaiting_approval' ? await heldReason(operations, e.id) : undefined,
          ),
        ),
      );
      const lines =
        events.length === 0
          ? [cursor ? 'No more events match.' : 'No events match.']
          : [`${events.length} event(s), in arrival order:`, ...events.map(summaryLine)];
      if (page.nextCursor) {
        lines.push(`More: call list_events with the same filters and cursor "${page.nextCursor}".`);
      }
      if (events.length > 0) lines.push(view.notice);
      return result<'list_events'>(
        { events, next_cursor: page.nextCursor, notice: view.notice },
        lines.join('\n'),
      );
    },

    async get_event({ id, include_event }) {
      const { event, history } = await operations.get(id);
      const view = newView(redact);
      const shown = await detailForModel(
        event,
        history,
        catalog,
        view,
        ctx.enrich,
        include_event ?? 'when-unmapped',
      );
      const tool = shown.tool_call ? ` → ${shown.tool_call.name}` : '';
      const text = [
        `${id}  ${event.type}  ${statusText(event)} (attempts ${event.attempts})${tool}${amountText(shown.tool_call)}; received ${shown.received_at}.`,
        view.notice,
      ].join('\n');
      return result<'get_event'>(
        // `event` is absent, not undefined, when left out: a client sees no such key.
        { ...(shown as typeof shown & { event?: Record<string, unknown> }), notice: view.notice },
        text,
      );
    },

    async ack_event({ id, note }, extra) {
      const event = await operations.ack(id, { by: who(extra), note });
      return result<'ack_event'>(
        { id: event.id, status: 'acked' },
        `Acked ${event.id} (${event.type}); it is no longer pending.`,
      );
    },

    async nack_event({ id, reason, retry_in_seconds }, extra) {
      const event = await operations.nack(id, {
        by: who(extra),
        reason,
        retryInMs: (retry_in_seconds ?? 0) * 1000,
      });
      const status = event.status === 'dead' ? 'dead' : 'pending';
      const retryAt = iso(event.retryAt);
      const text =
        status === 'dead'
          ? `${event.id} is dead after ${event.attempts} attempts and will not be retried. Once the cause is fixed, an operator can run \`stripe-events-mcp events replay ${event.id}\`.`
          : `${event.id} is pending again (attempts ${event.attempts})${retryAt ? `; it may be handled again from ${retryAt}` : ''}.`;
      return result<'nack_event'>(
        { id: event.id, status, attempts: event.attempts, retry_at: retryAt },
        text,
      );
    },

    async replay_event({ id, note }, extra) {
      // Refused for a claimed or held event by the store's rules (BeingHandledError), as from
      // every other door.
      const { event, previousStatus } = await operations.replay(id, {
        by: who(extra),
        note: note ?? 'replayed with replay_event',
      });
      return result<'replay_event'>(
        {
          id: event.id,
          status: 'pending',
          attempts: event.attempts,
          previous_status: previousStatus,
        },
        `${event.id} (${event.type}) is pending again (was ${previousStatus}; attempts reset).`,
      );
    },

    async get_queue_status() {
      const stats = await operations.status();
      const age =
        stats.oldestPendingReceivedAt === null
          ? null
          : Math.max(0, Math.floor((Date.now() - stats.oldestPendingReceivedAt) / 1000));
      const byType = Object.entries(stats.pendingByType)
        .sort((a, b) => b[1] - a[1])
        .map(([type, n]) => `${type} ${n}`);
      const c = stats.counts;
      const text = [
        `pending ${c.pending}, claimed ${c.claimed}, awaiting_approval ${c.awaiting_approval}, acked ${c.acked}, dead ${c.dead}.`,
        byType.length ? `Pending by type: ${byType.join(', ')}.` : '',
        age === null ? '' : `Oldest pending event arrived ${age} s ago.`,
        `Policy: an event is dead after ${stats.policy.maxAttempts} failed attempts; retries start after ${stats.policy.retryBaseMs / 1000} s.`,
      ]
        .filter(Boolean)
        .join('\n');
      return result<'get_queue_status'>(
        {
          counts: { ...c },
          by_type: { ...stats.pendingByType },
          oldest_pending_age_seconds: age,
          policy: {
            max_attempts: stats.policy.maxAttempts,
            retry_base_seconds: stats.policy.retryBaseMs / 1000,
          },
          agent: { ...agentView(stats.agent), instances: stats.agents.map(instanceView) },
          facts_rechecked: stats.factsRechecked,
        },
        [
          text,
          stats.factsRechecked
            ? "Facts are re-checked: each event's Stripe object is read again before deciding and before dispatching."
            : `Note: ${NOT_RECHECKED}.`,
          stats.agent.paused
            ? `The agent loops are paused (${stats.agent.reason ?? 'manual'}${stats.agent.note ? `: ${stats.agent.note}` : ''}).`
            : '',
          ...stats.agents.map(
            (a) =>
              `Agent loop ${a.host} pid ${a.pid}: ${a.state === 'running' ? 'running' : `paused (${a.reason}${a.note ? `: ${a.note}` : ''})`}.`,
          ),
        ]
          .filter(Boolean)
          .join('\n'),
      );
    },

    async pause_agent({ reason }, extra?: Extra) {
      const pause = await operations.pauseAgent({ by: who(extra), reason });
      return result<'pause_agent'>(
        { agent: agentView(pause) },
        'The agent loop is paused: it claims no new events until resume_agent. Events wait pending.',
      );
    },

    async resume_agent(_input: ToolInput<'resume_agent'>, extra?: Extra) {
      const pause = await operations.resumeAgent({ by: who(extra) });
      return result<'resume_agent'>(
        { agent: agentView(pause) },
        'The agent loop is running again.',
      );
    },
  };

  const approvals = {
    async list_approvals() {
      const view = newView(ctx.redact);
      const waiting = await operations.approvals();
      const shown = waiting.map((w) => ({
        ...w,
        tool_call: w.tool_call && fencedCall(ctx.catalog, w.type, w.tool_call, view),
        // The call's amount in its currency, beside the raw integer its tool_call keeps.
        amount_display: callAmount(w.tool_call?.input),
        // Why it waits: the config's gate, or the model's own words (`a person must look: …`).
        reason: w.reason === null ? null : fenceModelText(w.reason, view.nonce),
      }));
      const line = (w: (typeof shown)[number]) => {
        const action = w.tool_call?.input.action;
        const what = w.tool_call
          ? `${w.tool_call.name}${typeof action === 'string' ? ` ${action}` : ''}`
          : 'a person must look';
        const amount = w.amount_display === null ? '' : `  ${w.amount_display}`;
        return `${w.id}  ${w.type}  ${what}${amount}${w.reason === null ? '' : `  ${w.reason}`}`;
      };
      const text = shown.length
        ? `${shown.length} decision(s) wait for approval:\n${shown.map(line).join('\n')}\n${view.notice}`
        : 'Nothing waits for approval.';
      return result<'list_approvals'>({ approvals: shown, notice: view.notice }, text);
    },
    async approve_action({ id }: ToolInput<'approve_action'>, extra?: Extra) {
      const outcome = await operations.approve(id, { by: who(extra) });
      return approvalReply(outcome, ctx, 'approve_action');
    },
    async reject_action({ id, reason }: ToolInput<'reject_action'>, extra?: Extra) {
      const outcome = await operations.reject(id, { by: who(extra), reason });
      return approvalReply(outcome, ctx, 'reject_action');
    },
    async decide_event(
      { id, action, rationale, fields }: ToolInput<'decide_event'>,
      extra?: Extra,
    ) {
      // A field named twice is refused rather than one of the two silently kept.
      const named: Record<string, string> = { rationale };
      for (const f of fields ?? []) {
        if (Object.hasOwn(named, f.name)) {
          throw new AppError('duplicate_field', `the field ${f.name} is given twice: give it once`);
        }
        named[f.name] = f.value;
      }
      const outcome = await operations.decide(id, { by: who(extra), action, fields: named });
      return approvalReply(outcome, ctx, 'decide_event');
    },
  };
  Object.assign(handlers, approvals);

  // Every failure becomes an isError result whose message says what to do.
  const guarded = {} as Record<ToolName, (input: never, extra?: Extra) => Promise<CallToolResult>>;
  for (const name of Object.keys(handlers) as ToolName[]) {
    const handler = handlers[name]! as (input: unknown, extra?: Extra) => Promise<CallToolResult>;
    guarded[name] = async (input: unknown, extra?: Extra) => {
      try {
        return await handler(input, extra);
      } catch (error) {
        return toolError(error, logger);
      }
    };
  }
  return guarded as unknown as ToolHandlers;
}

function instanceView(a: AgentInstance) {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: a.id,
    host: a.host,
    pid: a.pid,
    state: a.state,
    reason: a.reason,
    note: a.note,
    since: iso(a.since),
    until: a.until === null ? null : iso(a.until),
    last_seen: iso(a.seen),
  };
}

function agentView(pause: AgentPause) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    paused: pause.paused,
    reason: pause.reason,
    note: pause.note,
    by: pause.by,
    since: iso(pause.since),
    until: iso(pause.until),
  };
}

function approvalReply(
  outcome: ApprovalResult,
  ctx: McpContext,
  tool: 'approve_action' | 'reject_action' | 'decide_event',
): CallToolResult {
  const view = newView(ctx.redact);
  const call = outcome.tool_call && fencedCall(ctx.catalog, outcome.type, outcome.tool_call, view);
  const shown = outcomeForModel(outcome.outcome, view.nonce);
  const amount_display = callAmount(outcome.tool_call?.input);
  // Which call, for how much: `evt_… (handle_dispute, $4,120.00)`.
  const what = outcome.tool_call
    ? ` (${outcome.tool_call.name}${amount_display === null ? '' : `, ${amount_display}`})`
    : '';
  const text =
    outcome.status === 'acked'
      ? `${outcome.id}${what}: ${shown}; the event is acked.`
      : `${outcome.id}${what} still waits for approval: ${shown}.\n${view.notice}`;
  return result<typeof tool>(
    { ...outcome, outcome: shown, tool_call: call, amount_display, notice: view.notice },
    text,
  );
}

const OUTCOMES = new Set(['recorded', 'dispatched', 'acknowledged', 'rejected']);
const DISPATCH_FAILED = 'dispatch failed: ';

/**
 * An approval's outcome is one of our words, or `dispatch failed: <the sink's error>`, which can
 * carry the handler's response or exception text: that part is fenced, the prefix stays readable.
 */
function outcomeForModel(outcome: string, nonce: string): string {
  if (OUTCOMES.has(outcome)) return outcome;
  if (outcome.startsWith(DISPATCH_FAILED)) {
    return `${DISPATCH_FAILED}${fenceModelText(outcome.slice(DISPATCH_FAILED.length), nonce)}`;
  }
  return fenceModelText(outcome, nonce);
}

const PROGRESS_EVERY_MS = 100;

/**
 * backfill_events: reports progress as `notifications/progress` when the client asked for it (a
 * progressToken in the request's _meta), at most every 100 ms and once at the end.
 */
export function backfillEventsHandler(ctx: McpContext) {
  return async (input: ToolInput<'backfill_events'>, extra: Extra): Promise<CallToolResult> => {
    const token = extra._meta?.progressToken;
    let last = 0;
    const report = (c: Readonly<BackfillProgress>, force = false) => {
      if (token === undefined) return;
      const now = Date.now();
      if (!force && now - last < PROGRESS_EVERY_MS) return;
      last = now;
      void extra
        .sendNotification({
          method: 'notifications/progress',
          params: {
            progressToken: token,
            progress: c.fetched,
            message: `fetched ${c.fetched}, queued ${c.queued}, duplicate ${c.duplicate}, ignored ${c.ignored}`,
          },
        })
        .catch(() => {});
    };
    try {
      const counts = await ctx.operations.backfill({
        since: input.since,
        types: input.types,
        onProgress: report,
      });
      report(counts, true);
      const out = {
        fetched: counts.fetched,
        queued: counts.queued,
        duplicate: counts.duplicate,
        ignored: counts.ignored,
      };
      return result<'backfill_events'>(
        out,
        `Fetched ${out.fetched} events from Stripe: ${out.queued} queued, ${out.duplicate} already stored, ${out.ignored} of unmapped types.`,
      );
    } catch (error) {
      return toolError(error, ctx.logger);
    }
  };
}

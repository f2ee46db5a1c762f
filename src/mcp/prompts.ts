import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, type GetPromptResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { renderEventForPrompt } from '../catalog/prompt.js';
import { errorMessage, type McpContext } from './handlers.js';
import { completeEventId } from './resources.js';
import { newView, summaryForModel, summaryLine } from './view.js';

const SUMMARY_COUNT = 20;

function userText(description: string, text: string): GetPromptResult {
  return { description, messages: [{ role: 'user', content: { type: 'text', text } }] };
}

function promptError(error: unknown, ctx: McpContext): McpError {
  if (error instanceof McpError) return error;
  return new McpError(ErrorCode.InternalError, errorMessage(error, ctx.logger));
}

function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} days`;
}

export function registerPrompts(server: McpServer, ctx: McpContext): void {
  const { buffer, catalog } = ctx;

  server.registerPrompt(
    'triage_event',
    {
      title: 'Triage a Stripe event',
      description:
        "One event's facts (customer-written text fenced), the tool call it maps to, and what to decide about it.",
      argsSchema: {
        event_id: completable(
          z
            .string()
            .min(1, 'event_id is empty: give a Stripe event id (evt_…) from list_pending_events')
            .describe('The Stripe event id (evt_…)'),
          (value) => completeEventId(ctx, value),
        ),
      },
    },
    async ({ event_id: id }) => {
      try {
        const event = await buffer.get(id);
        if (!event) {
          throw new McpError(
            ErrorCode.InvalidParams,
            `No event with id ${JSON.stringify(id)} is stored. Check the id against list_pending_events.`,
          );
        }
        const view = newView(ctx.redact);
        // With --enrich, the facts the agent loop would decide on (one event: one cached lookup).
        const base = ctx.enrich ? catalog.toolCall(event.type, event.payload) : null;
        const call =
          base && ctx.enrich
            ? { ...base, input: await ctx.enrich(event.type, base.input) }
            : undefined;
        const rendered = renderEventForPrompt(catalog, event, {
          nonce: view.nonce,
          redact: view.redact,
          call,
        });
        const def = catalog.lookup(event.type);
        const lines = ['Triage this Stripe event and decide what to do about it.', ''];
        lines.push(rendered.text, '');
        lines.push(`Status: ${event.status}, attempts ${event.attempts}.`);
        if (event.status !== 'pending' && event.status !== 'claimed') {
          lines.push(`Note: it is ${event.status} already, so it may need nothing more.`);
        }
        if (def) {
          lines.push(
            '',
            `Suggested tool call: ${def.tool}, with the facts above (get_event shows them as JSON).`,
            `What to decide: ${def.description}`,
            `Choose one action: ${def.actions.join(', ')}.`,
            `Fill in: ${Object.keys(def.decision.shape).join(', ')}.`,
          );
        }
        lines.push(
          '',
          `Answer with the action and a rationale a person can check in one or two sentences. Then call ack_event with id "${event.id}" and a note saying what was decided, or nack_event with a reason if it cannot be handled now.`,
          view.notice,
        );
        return userText(`Triage ${event.id} (${event.type})`, lines.join('\n'));
      } catch (error) {
        throw promptError(error, ctx);
      }
    },
  );

  server.registerPrompt(
    'pending_summary',
    {
      title: 'Summarize the pending Stripe events',
      description: `The pending queue: counts by type, the oldest event, and the first ${SUMMARY_COUNT} summaries.`,
    },
    async () => {
      try {
        const [stats, page] = await Promise.all([
          buffer.stats(),
          buffer.list({ statuses: ['pending'], limit: SUMMARY_COUNT }),
        ]);
        const pending = stats.counts.pending;
        if (pending === 0) {
          return userText(
            'No pending events',
            'There are no pending Stripe events. Say so, and mention any dead events: ' +
              `${stats.counts.dead} dead, ${stats.counts.acked} acked.`,
          );
        }
        const view = newView(ctx.redact);
        const summaries = page.events.map((e) => summaryForModel(e, catalog, view));
        const lines = [
          'Summarize the pending Stripe events below and propose an order to handle them.',
        ];
        lines.push('', `Pending: ${pending} (dead: ${stats.counts.dead}).`);
        if (stats.oldestPendingReceivedAt !== null) {
          lines.push(
            `Oldest pending arrived ${new Date(stats.oldestPendingReceivedAt).toISOString()} (${age(Date.now() - stats.oldestPendingReceivedAt)} ago).`,
          );
        }
        lines.push('', 'By type:');
        for (const [type, n] of Object.entries(stats.pendingByType).sort((a, b) => b[1] - a[1])) {
          const tool = catalog.lookup(type)?.tool;
          lines.push(`- ${type}${tool ? ` → ${tool}` : ''}: ${n}`);
        }
        lines.push(
          '',
          `The first ${summaries.length}, oldest first:`,
          ...summaries.map(summaryLine),
        );
        lines.push('', 'Their tool calls (facts extracted from each event):');
        lines.push(JSON.stringify(summaries.map((s) => ({ id: s.id, tool_call: s.tool_call }))));
        lines.push(
          '',
          'Use get_event or the triage_event prompt for one event, then ack_event or nack_event.',
          view.notice,
        );
        return userText(`${pending} pending events`, lines.join('\n'));
      } catch (error) {
        throw promptError(error, ctx);
      }
    },
  );
}

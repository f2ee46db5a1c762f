import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  ErrorCode,
  McpError,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type ReadResourceResult,
} from '@modelcontextprotocol/sdk/types.js';
import { errorMessage, type McpContext } from './handlers.js';
import { EVENT_URI_TEMPLATE, eventUri, PENDING_URI } from './uris.js';
import { detailForModel, leanSummary, newView } from './view.js';

/** How many pending summaries the pending resource holds; list_pending_events pages further. */
export const PENDING_RESOURCE_LIMIT = 100;
/** How many pending events the event template lists in resources/list. */
const LISTED_EVENTS = 50;
/** JSON-RPC error code the MCP spec gives an unknown resource. */
const RESOURCE_NOT_FOUND = -32002;
/**
 * Subscriptions one session may hold. A client needs a handful (the pending resource and the
 * events it works on); without a cap one session could store URIs without end.
 */
export const MAX_SUBSCRIPTIONS = 100;
/** Longest URI a subscription takes; ours are far shorter (Stripe event ids are ~30 chars). */
export const MAX_SUBSCRIPTION_URI_LENGTH = 512;

const JSON_MIME = 'application/json';

/** Compact JSON: a model reads every character, and indentation was a third of the pending list. */
function json(uri: string, body: unknown): ReadResourceResult {
  return { contents: [{ uri, mimeType: JSON_MIME, text: JSON.stringify(body) }] };
}

/** A failed read becomes a JSON-RPC error whose message says what to do. */
function readError(error: unknown, ctx: McpContext): McpError {
  if (error instanceof McpError) return error;
  return new McpError(ErrorCode.InternalError, errorMessage(error, ctx.logger));
}

/** Pending event ids starting with `prefix`, for argument completion. */
export async function completeEventId(ctx: McpContext, prefix: string): Promise<string[]> {
  try {
    const page = await ctx.buffer.list({ statuses: ['pending'], limit: 200 });
    return page.events
      .map((e) => e.id)
      .filter((id) => id.startsWith(prefix))
      .slice(0, 20);
  } catch {
    return [];
  }
}

export function registerResources(server: McpServer, ctx: McpContext): void {
  const { buffer, catalog } = ctx;

  server.registerResource(
    'pending',
    PENDING_URI,
    {
      title: 'Pending Stripe events',
      description: `The events waiting to be handled, oldest first (at most ${PENDING_RESOURCE_LIMIT}), each with the tool call it maps to and its customer-written facts in one fence (untrusted_facts). Subscribe to be told when it changes.`,
      mimeType: JSON_MIME,
    },
    async (uri) => {
      try {
        const view = newView(ctx.redact);
        const [page, stats] = await Promise.all([
          buffer.list({ statuses: ['pending'], limit: PENDING_RESOURCE_LIMIT }),
          buffer.stats(),
        ]);
        const events = page.events.map((e) => leanSummary(e, catalog, view));
        return json(uri.href, {
          notice: view.notice,
          total_pending: stats.counts.pending,
          events,
          more:
            page.nextCursor === null
              ? null
              : `Only the oldest ${events.length} are here: call list_pending_events with cursor "${page.nextCursor}" for the rest.`,
        });
      } catch (error) {
        throw readError(error, ctx);
      }
    },
  );

  const template = new ResourceTemplate(EVENT_URI_TEMPLATE, {
    // resources/list shows the pending events (oldest first) as readable resources.
    list: async () => {
      try {
        const page = await buffer.list({ statuses: ['pending'], limit: LISTED_EVENTS });
        return {
          resources: page.events.map((e) => {
            const tool = catalog.lookup(e.type)?.tool;
            return {
              uri: eventUri(e.id),
              name: e.id,
              title: `${e.type}${tool ? ` → ${tool}` : ''} (${e.status})`,
              mimeType: JSON_MIME,
            };
          }),
        };
      } catch (error) {
        ctx.logger.warn('mcp resources/list failed', { error });
        return { resources: [] };
      }
    },
    complete: { id: (value) => completeEventId(ctx, value) },
  });

  server.registerResource(
    'event',
    template,
    {
      title: 'One Stripe event',
      description:
        'One stored event: as received from Stripe, with its tool call, status, attempts and history. Customer-written text is fenced as untrusted data.',
      mimeType: JSON_MIME,
    },
    async (uri, variables) => {
      const raw = variables.id;
      const id = decodeURIComponent((Array.isArray(raw) ? raw[0] : raw) ?? '');
      try {
        const event = await buffer.get(id);
        if (!event) {
          throw new McpError(
            RESOURCE_NOT_FOUND,
            `No event with id ${JSON.stringify(id)} is stored. Check the id against stripe-events://pending or list_pending_events.`,
            { uri: uri.href },
          );
        }
        const view = newView(ctx.redact);
        const history = await buffer.history(id);
        const shown = await detailForModel(event, history, catalog, view, ctx.enrich);
        return json(uri.href, { notice: view.notice, ...shown });
      } catch (error) {
        throw readError(error, ctx);
      }
    },
  );
}

/**
 * resources/subscribe and resources/unsubscribe (McpServer does not implement them): the session's
 * subscribed URIs, in the set returned, which the change hub reads. Any URI may be subscribed, so
 * a client can subscribe to an event before it arrives, but at most MAX_SUBSCRIPTIONS of them, each
 * at most MAX_SUBSCRIPTION_URI_LENGTH characters; past either limit the request fails with an
 * Invalid params error that names the limit, and nothing is stored.
 */
export function registerSubscriptions(server: McpServer): Set<string> {
  const subscriptions = new Set<string>();
  server.server.setRequestHandler(SubscribeRequestSchema, (request) => {
    const { uri } = request.params;
    if (uri.length > MAX_SUBSCRIPTION_URI_LENGTH) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `The URI is ${uri.length} characters long; subscriptions take URIs of at most ${MAX_SUBSCRIPTION_URI_LENGTH} characters, such as stripe-events://pending or stripe-events://events/evt_….`,
      );
    }
    if (!subscriptions.has(uri) && subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `This session already has ${subscriptions.size} subscriptions, the most one session may hold (${MAX_SUBSCRIPTIONS}). Unsubscribe from one first (resources/unsubscribe), or subscribe to stripe-events://pending, which changes with every event.`,
      );
    }
    subscriptions.add(uri);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });
  return subscriptions;
}

import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * The SDK's Streamable HTTP transport asks zod, for every message it sends, whether it is a
 * response — twice (`isJSONRPCResultResponse(m) || isJSONRPCErrorResponse(m)`, each a
 * `safeParse(m).success`). For a notification both parses fail, and a failed zod parse builds
 * issue objects with localised messages. Every session hears every change, so under load this
 * was the server's largest source of garbage: in a soak (bench/soak.mjs: 120 webhooks a second,
 * 10 sessions, the agent at concurrency 8) notification delivery was 59 % of all the bytes the
 * server allocated, and the scavenges it fed paused the webhook's answers (p99 17 ms against 5 ms
 * for ingest alone).
 *
 * A notification that belongs to no request goes to the session's standalone GET stream. For that
 * case — and only when the transport keeps no event store, as ours does not — this sends it the
 * way the SDK's own `send` does (the same stream lookup and the same SSE frame through its own
 * `writeSSEEvent`), without the two parses. Everything else (responses, messages tied to a
 * request, a transport with an event store) goes through the SDK's `send` unchanged.
 *
 * It reaches into the SDK's transport, so it checks the parts it uses and does nothing if they
 * are not there: an SDK upgrade that changes them costs the speed, never a notification. The SDK
 * is pinned exactly (package.json), and test/mcp/lean-notify.test.ts fails if the fast path is
 * not taken with it.
 */
export function leanNotifications(transport: StreamableHTTPServerTransport): boolean {
  const inner = (transport as unknown as { _webStandardTransport?: unknown })
    ._webStandardTransport as WebStandardInternals | undefined;
  if (
    inner === undefined ||
    typeof inner.send !== 'function' ||
    typeof inner.writeSSEEvent !== 'function' ||
    !(inner._streamMapping instanceof Map) ||
    typeof inner._standaloneSseStreamId !== 'string' ||
    inner._eventStore !== undefined
  ) {
    return false;
  }
  const sdkSend = inner.send.bind(inner);
  inner.send = (message, options) => {
    if (
      options?.relatedRequestId !== undefined ||
      'id' in message ||
      !('method' in message) ||
      inner._eventStore !== undefined
    ) {
      return sdkSend(message, options);
    }
    const stream = inner._streamMapping.get(inner._standaloneSseStreamId);
    // No GET stream open: the SDK drops the notification too (there is no store to replay from).
    if (stream?.controller && stream.encoder) {
      inner.writeSSEEvent(stream.controller, stream.encoder, message, undefined);
    }
    return Promise.resolve();
  };
  return true;
}

/** The parts of the SDK's WebStandardStreamableHTTPServerTransport (1.32.2) used above. */
interface WebStandardInternals {
  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void>;
  writeSSEEvent(
    controller: unknown,
    encoder: unknown,
    message: JSONRPCMessage,
    eventId: string | undefined,
  ): boolean;
  _streamMapping: Map<string, { controller?: unknown; encoder?: unknown }>;
  _standaloneSseStreamId: string;
  _eventStore?: unknown;
}

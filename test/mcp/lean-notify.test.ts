import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { leanNotifications } from '../../src/mcp/lean-notify.js';

// What the fast path touches inside the SDK's transport; the end-to-end delivery over Streamable
// HTTP (every subscribed session hears a webhook) is test/mcp/http.test.ts.
type Inner = { send(m: JSONRPCMessage, o?: object): Promise<void> };
const innerOf = (t: StreamableHTTPServerTransport) =>
  (t as unknown as { _webStandardTransport: Inner })._webStandardTransport;
const notification: JSONRPCMessage = {
  jsonrpc: '2.0',
  method: 'notifications/resources/updated',
  params: { uri: 'stripe-events://pending' },
};

describe('leanNotifications', () => {
  it('takes the fast path with the SDK version this project pins', () => {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => 'x' });
    const sdkSend = innerOf(transport).send;
    expect(leanNotifications(transport)).toBe(true);
    expect(innerOf(transport).send).not.toBe(sdkSend);
  });

  it('sends a notification with no GET stream open as the SDK does: dropped, no error', async () => {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => 'x' });
    leanNotifications(transport);
    await expect(transport.send(notification)).resolves.toBeUndefined();
  });

  it('leaves responses and messages tied to a request to the SDK', async () => {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => 'x' });
    leanNotifications(transport);
    // The SDK's own send answers these: no stream was ever opened for request 7.
    await expect(transport.send({ jsonrpc: '2.0', id: 7, result: {} })).rejects.toThrow(
      /No connection established for request ID: 7/,
    );
    await expect(transport.send(notification, { relatedRequestId: 7 })).rejects.toThrow(
      /No connection established for request ID: 7/,
    );
  });

  it('stays out of a transport that keeps an event store (it replays, so the SDK must store)', () => {
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => 'x',
      eventStore: {
        storeEvent: async () => 'e1',
        replayEventsAfter: async () => 'stream',
      },
    });
    const sdkSend = innerOf(transport).send;
    expect(leanNotifications(transport)).toBe(false);
    expect(innerOf(transport).send).toBe(sdkSend);
  });
});

import { toStrictJsonSchema } from 'openai/lib/transform';
import { afterEach, describe, expect, it } from 'vitest';
import { call, callError, connectInMemory, incoming, openStore, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('tool input schemas every client can use', () => {
  it('every tool takes a closed object that converts to OpenAI strict mode', async () => {
    const c = await connectInMemory(openStore(cleanups), cleanups);
    const { tools } = await c.client.listTools();
    expect(tools).toHaveLength(14);
    for (const tool of tools) {
      expect(tool.inputSchema.type, tool.name).toBe('object');
      expect(tool.inputSchema.additionalProperties, tool.name).toBe(false);
      // The OpenAI SDK's own strict conversion (what Structured Outputs and the Agents SDK
      // require): it throws on an open object or an optional field without null.
      expect(() => toStrictJsonSchema(tool.inputSchema as never), tool.name).not.toThrow();
    }
    const list = tools.find((t) => t.name === 'list_pending_events')!;
    expect((list.inputSchema.properties as any).limit.description).toMatch(/default 20/);
  });

  it('refuses a misspelt argument by name, and takes null as an argument left out', async () => {
    const store = openStore(cleanups);
    const c = await connectInMemory(store, cleanups);
    const e = incoming('charge.refunded');
    await store.buffer.append(e);

    expect(await callError(c.client, 'get_event', { id: e.id, verbose: true })).toMatch(
      /unknown argument verbose: this tool takes id/,
    );
    expect(await callError(c.client, 'get_queue_status', { x: 1 })).toMatch(
      /unknown argument x: this tool takes no arguments/,
    );

    // What a strict-mode client sends: every property, null for the ones it leaves out.
    const page = await call(c.client, 'list_pending_events', {
      types: null,
      limit: null,
      cursor: null,
    });
    expect(page.events.map((x: any) => x.id)).toEqual([e.id]);
    await call(c.client, 'nack_event', { id: e.id, reason: 'later', retry_in_seconds: null });
    expect((await call(c.client, 'get_event', { id: e.id })).retry_at).toBeNull();
    expect(await call(c.client, 'ack_event', { id: e.id, note: null })).toMatchObject({
      status: 'acked',
    });
    expect(await call(c.client, 'get_queue_status', {})).toMatchObject({
      counts: { acked: 1 },
    });
  });
});

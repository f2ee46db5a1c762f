import { afterEach, describe, expect, it } from 'vitest';
import { call, callError, connectInMemory, incoming, openStore, type Cleanups } from './helpers.js';

/** replay_event over the official MCP client on in-memory transports, on a real SQLite store. */
const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('replay_event (MCP tool)', () => {
  it('puts an acked or dead event back to pending with its attempts reset', async () => {
    const store = openStore(cleanups, { maxAttempts: 1 });
    const { client } = await connectInMemory(store, cleanups);
    const { tools } = await client.listTools();
    const tool = tools.find((t) => t.name === 'replay_event');
    expect(tool?.inputSchema.required).toEqual(['id']);
    expect(tool?.annotations).toMatchObject({ readOnlyHint: false, idempotentHint: true });

    const acked = incoming('charge.refunded');
    await store.buffer.append(acked);
    await store.buffer.ack(acked.id, { note: 'done' });
    const replayed = await call(client, 'replay_event', {
      id: acked.id,
      note: 'redo the refund log',
    });
    expect(replayed).toMatchObject({
      id: acked.id,
      status: 'pending',
      attempts: 0,
      previous_status: 'acked',
    });
    expect((await store.buffer.get(acked.id))?.status).toBe('pending');
    const history = await store.buffer.history(acked.id);
    expect(history.at(-1)).toMatchObject({ kind: 'replayed', note: 'redo the refund log' });

    const dead = incoming('invoice.payment_failed');
    await store.buffer.append(dead);
    await store.buffer.nack(dead.id, { reason: 'handler down' });
    expect((await store.buffer.get(dead.id))?.status).toBe('dead');
    const revived = await call(client, 'replay_event', { id: dead.id });
    expect(revived).toMatchObject({ status: 'pending', attempts: 0, previous_status: 'dead' });
    const pending = await call(client, 'list_pending_events');
    expect(pending.events.map((e: { id: string }) => e.id).sort()).toEqual(
      [acked.id, dead.id].sort(),
    );
  });

  it('is a tool error for an unknown id and for an event being handled', async () => {
    const store = openStore(cleanups);
    const { client } = await connectInMemory(store, cleanups);
    expect(await callError(client, 'replay_event', { id: 'evt_unknown' })).toMatch(
      /no event with id "evt_unknown" is stored/i,
    );
    const e = incoming('charge.dispute.created');
    await store.buffer.append(e);
    const [claimed] = await store.buffer.claim({ owner: 'agent-1', leaseMs: 60_000 });
    // The store's refusal (BeingHandledError), the same words the CLI prints.
    expect(await callError(client, 'replay_event', { id: e.id })).toMatch(
      /cannot be replayed: it is being handled now \(claimed by agent-1\).*or ack it to mark it done/,
    );
    expect((await store.buffer.get(e.id))?.leaseOwner).toBe(claimed!.leaseOwner);
  });
});

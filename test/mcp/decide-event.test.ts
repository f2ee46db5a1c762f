/**
 * decide_event (issue #20.3) over the official SDK client: a person decides an event the agent
 * handed to a person — checked by the tool's decision schema, dispatched through the configured
 * sink like an approved call, recorded with who decided.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DispatchError, type DispatchRequest } from '../../src/dispatch/dispatch.js';
import {
  call,
  callError,
  connectInMemory,
  incoming,
  openStore,
  type Cleanups,
  type Store,
} from './helpers.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function capture() {
  const requests: DispatchRequest[] = [];
  return {
    requests,
    sink: {
      kind: 'capture',
      async dispatch(req: DispatchRequest) {
        requests.push(req);
        return { outcome: 'dispatched' as const };
      },
    },
  };
}

/** A dispute the agent handed to a person, as the loop holds it (no decided call). */
async function askedAPerson(store: Store, decided = false): Promise<string> {
  const event = incoming('charge.dispute.created', { 'data.object.amount': 412_000 });
  await store.buffer.append(event);
  const [claimed] = await store.buffer.claim({ owner: 'agent', leaseMs: 60_000, limit: 1 });
  const facts = store.catalog.toolCall(event.type, event.payload)!;
  await store.buffer.hold(
    event.id,
    claimed!.leaseOwner!,
    decided ? 'approval required' : 'a person must look: the customer called',
    [
      decided
        ? {
            kind: 'decision',
            tool_call: { ...facts, input: { ...facts.input, action: 'accept', rationale: 'ok' } },
            outcome: 'decided',
          }
        : { kind: 'decision', outcome: 'ask_a_person', note: 'the customer called' },
    ],
  );
  return event.id;
}

describe('decide_event', () => {
  it('is a destructive, non-read-only tool', async () => {
    const { client } = await connectInMemory(openStore(cleanups), cleanups);
    const tool = (await client.listTools()).tools.find((t) => t.name === 'decide_event');
    expect(tool?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
  });

  it("refuses a decision that breaks the tool's rules field by field, dispatching nothing; a valid one is dispatched with the person's fields and the event's facts", async () => {
    const store = openStore(cleanups);
    const { sink, requests } = capture();
    const { client } = await connectInMemory(store, cleanups, { sink });
    const id = await askedAPerson(store);

    expect(
      await callError(client, 'decide_event', {
        id,
        action: 'nuke_it_from_orbit',
        rationale: 'x',
      }),
    ).toMatch(/action: choose one of accept, submit_evidence, escalate_to_human/);
    expect(
      await callError(client, 'decide_event', { id, action: 'submit_evidence', rationale: ' ' }),
    ).toMatch(/rationale: rationale is required.*Nothing was dispatched/);
    expect(await callError(client, 'decide_event', { id, action: 'accept' })).toMatch(
      /rationale is required/,
    );
    expect(
      await callError(client, 'decide_event', {
        id,
        action: 'accept',
        rationale: 'x',
        fields: [{ name: 'refund_amount', value: '5' }],
      }),
    ).toMatch(/takes no field "refund_amount"/);
    expect(
      await callError(client, 'decide_event', {
        id,
        action: 'accept',
        rationale: 'x',
        fields: [{ name: 'rationale', value: 'y' }],
      }),
    ).toMatch(/rationale is given twice/);
    expect(requests).toEqual([]);
    expect((await store.buffer.get(id))!.status).toBe('awaiting_approval');

    const decided = await call(client, 'decide_event', {
      id,
      action: 'submit_evidence',
      rationale: 'Support confirmed delivery.',
      fields: [{ name: 'evidence_summary', value: 'Signed receipt.' }],
    });
    expect(decided).toMatchObject({
      id,
      status: 'acked',
      outcome: 'dispatched',
      amount_display: '$4,120.00',
    });
    expect(requests).toHaveLength(1);
    expect(requests[0]!.tool_call).toMatchObject({
      name: 'handle_dispute',
      input: {
        action: 'submit_evidence',
        rationale: 'Support confirmed delivery.',
        evidence_summary: 'Signed receipt.',
        amount: 412_000,
        currency: 'usd',
      },
    });
    const history = (await call(client, 'get_event', { id })).history as {
      kind: string;
      by?: string;
      outcome?: string;
    }[];
    expect(history).toContainEqual(
      expect.objectContaining({ kind: 'decision', by: `mcp:${process.pid}`, outcome: 'decided' }),
    );
    expect(
      await callError(client, 'decide_event', {
        id,
        action: 'accept',
        rationale: 'again',
      }),
    ).toMatch(/not awaiting approval/);
    expect(requests).toHaveLength(1);
  });

  it('refuses an event whose call the model decided: that one is approved or rejected', async () => {
    const store = openStore(cleanups);
    const { sink, requests } = capture();
    const { client } = await connectInMemory(store, cleanups, { sink });
    const id = await askedAPerson(store, true);
    expect(
      await callError(client, 'decide_event', { id, action: 'accept', rationale: 'x' }),
    ).toMatch(/approve or reject it/);
    expect(requests).toEqual([]);
  });

  it("keeps the person's call waiting, recorded, when the handler fails", async () => {
    const store = openStore(cleanups);
    const sink = {
      kind: 'failing',
      async dispatch(): Promise<never> {
        throw new DispatchError('the handler is down');
      },
    };
    const { client } = await connectInMemory(store, cleanups, { sink });
    const id = await askedAPerson(store);
    const result = await call(client, 'decide_event', {
      id,
      action: 'accept',
      rationale: 'cheaper to accept',
    });
    expect(result).toMatchObject({ status: 'awaiting_approval' });
    expect(String(result.outcome)).toMatch(/dispatch failed/);
    // The person's call now waits as a decided call: approving it later dispatches it.
    const [waiting] = await call<{ approvals: { tool_call: { input: object } | null }[] }>(
      client,
      'list_approvals',
    ).then((r) => r.approvals);
    expect(waiting!.tool_call?.input).toMatchObject({ action: 'accept' });
  });
});

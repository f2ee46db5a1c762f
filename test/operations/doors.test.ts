import { afterEach, describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../src/errors.js';
import {
  call,
  callError,
  connectInMemory,
  incoming,
  openStore,
  type Cleanups,
} from '../mcp/helpers.js';
import { killLeftovers, runCli } from '../helpers/spawn.js';

/**
 * One operations layer behind every door: the MCP tools (official SDK client, in-memory) and the
 * `events` commands (the built binary, spawned) on the same SQLite store give the same answers,
 * refusals included, because both call src/operations/queue.ts and the store's rules decide.
 */
const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killLeftovers();
});

describe('every door, the same rules and words', () => {
  it('a replay of a claimed or held event is refused with the same message by MCP and the CLI', async () => {
    const store = openStore(cleanups);
    const { client } = await connectInMemory(store, cleanups);
    const e = incoming('charge.dispute.created');
    await store.buffer.append(e);
    const [claimed] = await store.buffer.claim({ owner: 'worker-1', leaseMs: 600_000 });
    const token = claimed!.leaseOwner!;

    const beingHandled = `event ${e.id} cannot be replayed: it is being handled now (claimed by worker-1): wait until it is acked, nacked or its lease expires, or ack it to mark it done`;
    const mcp = await callError(client, 'replay_event', { id: e.id });
    // MCP capitalizes the sentence and ends it with a period; the words are the same.
    expect(mcp).toBe(`E${beingHandled.slice(1)}.`);
    const cli = await runCli(['events', 'replay', e.id, '--data-dir', store.dir]);
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.stderr.trim()).toBe(`stripe-events-mcp: ${beingHandled}`);
    // Nothing changed: the worker still holds its claim.
    expect(await store.buffer.get(e.id)).toMatchObject({ status: 'claimed', leaseOwner: token });

    await store.buffer.hold(e.id, token, 'amount over the approval limit');
    const waiting = `event ${e.id} cannot be replayed: it waits for approval: approve or reject it, or ack it to mark it done`;
    expect(await callError(client, 'replay_event', { id: e.id })).toBe(`E${waiting.slice(1)}.`);
    const held = await runCli(['events', 'replay', e.id, '--data-dir', store.dir]);
    expect(held.code, held.stderr).toBe(1);
    expect(held.stderr.trim()).toBe(`stripe-events-mcp: ${waiting}`);
    expect((await store.buffer.get(e.id))?.status).toBe('awaiting_approval');
  });

  it("a person's ack of a claimed event wins over the worker and names who acked", async () => {
    const store = openStore(cleanups);
    const { client } = await connectInMemory(store, cleanups);
    const viaMcp = incoming('invoice.payment_failed');
    const viaCli = incoming('charge.refunded');
    await store.buffer.append(viaMcp);
    await store.buffer.append(viaCli);
    const claims = await store.buffer.claim({ owner: 'worker-1', leaseMs: 600_000, limit: 2 });
    expect(claims).toHaveLength(2);

    await call(client, 'ack_event', { id: viaMcp.id, note: 'paid by bank transfer' });
    const cli = await runCli(
      ['events', 'ack', viaCli.id, '--note', 'refund logged by hand', '--data-dir', store.dir],
      { env: { USER: 'alice' } },
    );
    expect(cli.code, cli.stderr).toBe(0);

    expect((await store.buffer.history(viaMcp.id)).at(-1)).toMatchObject({
      kind: 'acked',
      note: 'paid by bank transfer',
      by: `mcp:${process.pid}`,
    });
    expect((await store.buffer.history(viaCli.id)).at(-1)).toMatchObject({
      kind: 'acked',
      note: 'refund logged by hand',
      by: 'cli:alice',
    });
    // The worker's late outcome is refused: the person's ack stands.
    for (const claim of claims) {
      await expect(store.buffer.ack(claim.id, { token: claim.leaseOwner! })).rejects.toThrow(
        LeaseLostError,
      );
      expect((await store.buffer.get(claim.id))?.status).toBe('acked');
    }
  });

  it("a person's nack of a held call is refused, pointing at reject; an ack records it not carried out", async () => {
    const store = openStore(cleanups);
    const { client } = await connectInMemory(store, cleanups);
    const e = incoming('charge.dispute.created');
    await store.buffer.append(e);
    const [claimed] = await store.buffer.claim({ owner: 'worker-1', leaseMs: 600_000 });
    const call = { name: 'handle_dispute', input: { action: 'accept' } };
    await store.buffer.hold(e.id, claimed!.leaseOwner!, 'handle_dispute needs approval', [
      { kind: 'decision', tool_call: call, outcome: 'decided' },
    ]);

    const refusal = `event ${e.id} cannot be nacked: its decided call awaits approval; to turn it down use reject_action (MCP), \`events reject ${e.id} --reason …\` (CLI) or the console's Reject — a nack would discard the decision and have the model decide again`;
    expect(await callError(client, 'nack_event', { id: e.id, reason: 'not now' })).toBe(
      `E${refusal.slice(1)}.`,
    );
    // `events nack`: the same words, pointing at the CLI's own way to turn it down.
    const nack = await runCli([
      'events',
      'nack',
      e.id,
      '--reason',
      'not now',
      '--data-dir',
      store.dir,
    ]);
    expect(nack.code, nack.stderr).toBe(1);
    expect(nack.stderr).toBe(`stripe-events-mcp: ${refusal}\n`);
    // Nothing changed: the decision still waits, no attempt counted.
    expect(await store.buffer.get(e.id)).toMatchObject({
      status: 'awaiting_approval',
      attempts: 0,
    });

    const cli = await runCli(
      ['events', 'ack', e.id, '--note', 'refunded by hand', '--data-dir', store.dir],
      { env: { USER: 'alice' } },
    );
    expect(cli.code, cli.stderr).toBe(0);
    expect((await store.buffer.history(e.id)).slice(-2)).toMatchObject([
      {
        kind: 'decision',
        outcome: 'not_carried_out',
        by: 'cli:alice',
        note: 'acked by cli:alice without approving: nothing was dispatched',
      },
      { kind: 'acked', by: 'cli:alice', note: 'refunded by hand' },
    ]);
  });

  it('approving or rejecting a call that does not wait is the same refusal from MCP and the CLI', async () => {
    const store = openStore(cleanups);
    const { client } = await connectInMemory(store, cleanups);
    const e = incoming('charge.dispute.created');
    await store.buffer.append(e);

    const refusal = `event ${e.id} is pending, not awaiting approval (someone else approved or rejected it, or it was acked): nothing was changed`;
    expect(await callError(client, 'approve_action', { id: e.id })).toBe(`E${refusal.slice(1)}.`);
    for (const args of [
      ['events', 'approve', e.id],
      ['events', 'reject', e.id, '--reason', 'no'],
    ]) {
      const cli = await runCli([...args, '--data-dir', store.dir]);
      expect(cli.code, cli.stderr).toBe(1);
      expect(cli.stderr).toBe(`stripe-events-mcp: ${refusal}\n`);
    }
    expect(await store.buffer.get(e.id)).toMatchObject({ status: 'pending', attempts: 0 });
    expect((await store.buffer.history(e.id)).map((h) => h.kind)).toEqual(['received']);
  });

  it('an unknown id is the same refusal from MCP and the CLI', async () => {
    const store = openStore(cleanups);
    const { client } = await connectInMemory(store, cleanups);
    const message = 'no event with id "evt_nope" is stored';
    expect(await callError(client, 'ack_event', { id: 'evt_nope' })).toContain(
      `N${message.slice(1)}.`,
    );
    const cli = await runCli(['events', 'ack', 'evt_nope', '--data-dir', store.dir]);
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim()).toBe(`stripe-events-mcp: ${message}`);
  });
});

/**
 * An approval survives a crash (issue #19): the approver's claim is renewed while the handler has
 * the call, and once it expires anyway (the process died), approvedCall hands the approved call to
 * the agent loop to dispatch again — only when the history says the approval still stands.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HistoryInput, StoredEvent } from '../../src/buffer/buffer.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import {
  APPROVED_CALL_INTERRUPTED,
  interruptedApprovalError,
} from '../../src/buffer/transitions.js';
import type { ToolCall } from '../../src/catalog/catalog.js';
import {
  DispatchError,
  idempotencyKey,
  type DispatchRequest,
  type Sink,
} from '../../src/dispatch/dispatch.js';
import { LeaseLostError } from '../../src/errors.js';
import {
  approveAction,
  approvedCall,
  dispatchApproved,
  redispatchNote,
} from '../../src/operations/approvals.js';
import { incoming } from '../buffer/contract.js';

const CALL: ToolCall = { name: 'handle_dispute', input: { action: 'accept', amount: 75_000 } };
const ID = incoming(1).id;

afterEach(() => {
  vi.useRealTimers();
});

/** A store with one event whose decided call waits for approval. */
async function heldStore(options: { now?: () => number } = {}) {
  const buffer = new MemoryBuffer({ now: options.now, maxAttempts: 3 });
  await buffer.append(incoming(1));
  const [claim] = await buffer.claim({ owner: 'worker', leaseMs: 60_000 });
  const decided: HistoryInput = { kind: 'decision', tool_call: CALL, outcome: 'decided' };
  await buffer.hold(ID, claim!.leaseOwner!, 'handle_dispute needs approval', [decided]);
  return buffer;
}

/** A sink whose handler keeps the call until released (or aborted), recording what it got. */
function heldSink() {
  const got: { request: DispatchRequest; signal?: AbortSignal }[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const sink: Sink = {
    kind: 'module',
    async dispatch(request, signal) {
      got.push({ request, signal });
      await new Promise<void>((resolve, reject) => {
        void gate.then(resolve);
        signal?.addEventListener('abort', () => reject(signal.reason as Error));
      });
      return { outcome: 'dispatched', note: 'module handle_dispute' };
    },
  };
  return { sink, got, release };
}

/** Approves, then the approving process "dies": its claim is left to expire. */
async function interrupted(clock: { t: number }) {
  const buffer = await heldStore({ now: () => clock.t });
  await buffer.approve(ID, 'mcp:alice', 120_000);
  clock.t += 120_001;
  expect(await buffer.recoverExpiredLeases()).toBe(1);
  return buffer;
}

describe('approveAction', () => {
  it("renews the approver's claim while the handler holds the call", async () => {
    vi.useFakeTimers();
    const buffer = await heldStore({ now: () => Date.now() });
    const { sink, got, release } = heldSink();
    const approving = approveAction(buffer, sink, ID, 'mcp:alice');
    await vi.waitFor(() => expect(got).toHaveLength(1));
    // Five minutes in the handler, well past the 120 s lease, with the sweep running.
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(30_000);
      expect(await buffer.recoverExpiredLeases()).toBe(0);
    }
    expect(await buffer.get(ID)).toMatchObject({ status: 'claimed', attempts: 0 });
    release();
    expect(await approving).toMatchObject({ status: 'acked', outcome: 'dispatched' });
    expect((await buffer.get(ID))!.outcome).toBe('approved');
    const kinds = (await buffer.history(ID)).map((h) => h.kind);
    expect(kinds).toEqual([
      'received',
      'claimed',
      'decision',
      'held',
      'resumed',
      'dispatch',
      'acked',
    ]);
    // Renewal stops once settled: the lease is no longer extended.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborts the dispatch when the claim is lost meanwhile (a person acked), and holds nothing', async () => {
    vi.useFakeTimers();
    const buffer = await heldStore({ now: () => Date.now() });
    const { sink, got } = heldSink();
    const approving = approveAction(buffer, sink, ID, 'mcp:alice');
    const refused = expect(approving).rejects.toBeInstanceOf(LeaseLostError);
    await vi.waitFor(() => expect(got).toHaveLength(1));
    await buffer.ack(ID, { by: 'cli:bob', note: 'handled by phone' });
    await vi.advanceTimersByTimeAsync(40_000);
    expect(got[0]!.signal?.aborted).toBe(true);
    await refused;
    expect(await buffer.get(ID)).toMatchObject({ status: 'acked', outcome: 'handled' });
    expect((await buffer.history(ID)).at(-1)).toMatchObject({ kind: 'acked', by: 'cli:bob' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps the approved call waiting when the handler fails', async () => {
    const buffer = await heldStore();
    const failing: Sink = {
      kind: 'http',
      dispatch: async () => {
        throw new DispatchError('the http handler failed: HTTP 503');
      },
    };
    expect(await approveAction(buffer, failing, ID, 'mcp:alice')).toMatchObject({
      status: 'awaiting_approval',
      outcome: 'dispatch failed: the http handler failed: HTTP 503',
      tool_call: CALL,
    });
    expect(await buffer.get(ID)).toMatchObject({ status: 'awaiting_approval', attempts: 0 });
  });
});

describe('approvedCall', () => {
  it('answers null for an ordinary event without reading its history', async () => {
    const buffer = new MemoryBuffer();
    await buffer.append(incoming(1));
    await buffer.nack(ID, { reason: 'handler down' });
    const history = vi.spyOn(buffer, 'history');
    expect(await approvedCall(buffer, (await buffer.get(ID))!)).toBeNull();
    expect(history).not.toHaveBeenCalled();
  });

  it('hands over the approved call of an interrupted approval, with who approved it', async () => {
    const clock = { t: 1_790_000_000_000 };
    const buffer = await interrupted(clock);
    const pending = (await buffer.get(ID))!;
    expect(pending).toMatchObject({ status: 'pending', attempts: 0 });
    expect(pending.lastError?.startsWith(APPROVED_CALL_INTERRUPTED)).toBe(true);
    expect(await approvedCall(buffer, pending)).toEqual({ call: CALL, by: 'mcp:alice' });
    // What the loop does: claim, ask, dispatch that call with the claim's token, no model.
    const [claimed] = await buffer.claim({ owner: 'agent', leaseMs: 60_000 });
    const approved = (await approvedCall(buffer, claimed!))!;
    expect(approved).toEqual({ call: CALL, by: 'mcp:alice' });
    const got: DispatchRequest[] = [];
    const sink: Sink = {
      kind: 'module',
      dispatch: async (request) => {
        got.push(request);
        return { outcome: 'dispatched' };
      },
    };
    expect(
      await dispatchApproved(buffer, sink, claimed!, approved.call, claimed!.leaseOwner!, {
        note: redispatchNote(approved.by),
      }),
    ).toEqual({ status: 'acked', outcome: 'dispatched' });
    expect(got[0]).toMatchObject({
      tool_call: CALL,
      idempotency_key: idempotencyKey(ID, 'handle_dispute'),
    });
    // Still the person's approval that sent it: `approved`, not the agent's `dispatched`.
    expect(await buffer.get(ID)).toMatchObject({
      status: 'acked',
      attempts: 0,
      outcome: 'approved',
    });
    expect((await buffer.history(ID)).slice(-2)).toMatchObject([
      { kind: 'dispatch', tool_call: CALL, outcome: 'dispatched' },
      {
        kind: 'acked',
        note: 'approved by mcp:alice; dispatched again after the first dispatch was interrupted',
      },
    ]);
    expect(await approvedCall(buffer, (await buffer.get(ID))!)).toBeNull();
  });

  it('answers null for a forged marker: a nack reason that starts with it', async () => {
    const forged = interruptedApprovalError('mallory');
    // On an event never approved.
    const buffer = new MemoryBuffer();
    await buffer.append(incoming(1));
    await buffer.addHistory(ID, { kind: 'decision', tool_call: CALL, outcome: 'decided' });
    const nacked = await buffer.nack(ID, { by: 'mcp:mallory', reason: forged });
    expect(nacked).toMatchObject({ status: 'pending', lastError: forged });
    expect(await approvedCall(buffer, nacked)).toBeNull();

    // On an event whose approval was interrupted: a person's nack after it ends the approval.
    const clock = { t: 1_790_000_000_000 };
    const approvedBefore = await interrupted(clock);
    const renacked = await approvedBefore.nack(ID, { by: 'mcp:mallory', reason: forged });
    expect(renacked.lastError).toBe(forged);
    expect(await approvedCall(approvedBefore, renacked)).toBeNull();
  });

  it('answers null once anything after the approval ended it', async () => {
    // The marker as a nack could have left it: only the history can tell.
    const forged = (event: StoredEvent): StoredEvent => ({
      ...event,
      lastError: interruptedApprovalError('mcp:alice'),
    });
    const clock = { t: 1_790_000_000_000 };

    // Approved, dispatched, failed, held again: the approval that stands is the next one.
    const heldAgain = await heldStore({ now: () => clock.t });
    const failing: Sink = {
      kind: 'http',
      dispatch: async () => {
        throw new DispatchError('down');
      },
    };
    await approveAction(heldAgain, failing, ID, 'mcp:alice');
    const held = (await heldAgain.get(ID))!;
    expect(await approvedCall(heldAgain, forged(held))).toBeNull();

    // A person's decision after the approval.
    const rejected = await interrupted(clock);
    await rejected.addHistory(ID, {
      kind: 'decision',
      outcome: 'not_carried_out',
      by: 'cli:bob',
    });
    expect(await approvedCall(rejected, forged((await rejected.get(ID))!))).toBeNull();

    // Acked by a person after the interruption.
    const acked = await interrupted(clock);
    await acked.ack(ID, { by: 'cli:bob' });
    expect(await approvedCall(acked, forged((await acked.get(ID))!))).toBeNull();

    // Replayed: its last_error is cleared, so the pre-check answers.
    await acked.replay(ID, { by: 'cli:bob' });
    expect(await approvedCall(acked, (await acked.get(ID))!)).toBeNull();

    // A newer decision with a call than the approval (the model decided again).
    const decidedAgain = await interrupted(clock);
    await decidedAgain.addHistory(ID, { kind: 'decision', tool_call: CALL, outcome: 'decided' });
    expect(await approvedCall(decidedAgain, forged((await decidedAgain.get(ID))!))).toBeNull();
  });

  it('survives a second crash while the loop dispatches the approved call again', async () => {
    const clock = { t: 1_790_000_000_000 };
    const buffer = await interrupted(clock);
    await buffer.claim({ owner: 'agent', leaseMs: 60_000 });
    clock.t += 60_001;
    expect(await buffer.recoverExpiredLeases()).toBe(1);
    const after = (await buffer.get(ID))!;
    // That crash counts (the loop's own claim), but the approved call is still the one to send.
    expect(after).toMatchObject({ status: 'pending', attempts: 1 });
    expect(await approvedCall(buffer, after)).toEqual({ call: CALL, by: 'mcp:alice' });
  });
});

/**
 * The buffer port's contract, run against every adapter (memory, SQLite in both commit modes, and
 * Redis when it lands). Adapter-specific behaviour lives in each adapter's own test file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  EVENT_OUTCOMES,
  EVENT_STATUSES,
  type BufferOptions,
  type EventOutcome,
  type EventBuffer,
  type EventStatus,
  type HistoryEntry,
  type IncomingEvent,
  type StoredEvent,
} from '../../src/buffer/buffer.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { happeningsContract } from './happenings-contract.js';
import {
  BeingHandledError,
  BufferFullError,
  EventNotFoundError,
  HeldForApprovalError,
  InvalidCursorError,
  InvalidTransitionError,
  LeaseLostError,
  NotAwaitingApprovalError,
  StoreUnavailableError,
} from '../../src/errors.js';
import {
  interruptedApprovalError,
  interruptedApprovalNote,
  notCarriedOutNote,
  ownerOf,
} from '../../src/buffer/transitions.js';

export interface BufferHarness {
  buffer: EventBuffer;
  /** Closes and opens the same store again, when the adapter is durable. */
  reopen?: () => Promise<EventBuffer>;
  cleanup: () => Promise<void>;
}

export type BufferFactory = (options: BufferOptions) => Promise<BufferHarness>;

export function incoming(n: number | string, type = 'charge.dispute.created'): IncomingEvent {
  const id = typeof n === 'number' ? `evt_contract_${String(n).padStart(6, '0')}` : n;
  return {
    id,
    type,
    created: 1_786_000_000,
    livemode: false,
    objectId: `obj_${id}`,
    payload: JSON.stringify({ id, object: 'event', type, data: { object: { id: `obj_${id}` } } }),
  };
}

export function runBufferContract(name: string, factory: BufferFactory): void {
  describe(`buffer contract: ${name}`, () => {
    let clock = 1_790_000_000_000;
    const now = () => clock;
    let h: BufferHarness;
    let buffer: EventBuffer;

    const open = async (options: BufferOptions = {}) => {
      h = await factory({ now, maxAttempts: 3, ...options });
      buffer = h.buffer;
    };

    beforeEach(async () => {
      clock = 1_790_000_000_000;
      await open();
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('queues a new event and answers duplicate for the same id', async () => {
      expect(await buffer.append(incoming(1))).toEqual({ status: 'queued', id: incoming(1).id });
      expect(await buffer.append(incoming(1))).toEqual({ status: 'duplicate', id: incoming(1).id });
      const stored = await buffer.get(incoming(1).id);
      expect(stored).toMatchObject({
        id: incoming(1).id,
        type: 'charge.dispute.created',
        status: 'pending',
        attempts: 0,
        payload: incoming(1).payload,
        receivedAt: clock,
        livemode: false,
        objectId: `obj_${incoming(1).id}`,
      });
      expect(await buffer.get('evt_unknown')).toBeNull();
    });

    it('queues exactly one of 50 concurrent appends of one event', async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, () => buffer.append(incoming(7))),
      );
      expect(results.filter((r) => r.status === 'queued')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'duplicate')).toHaveLength(49);
      expect((await buffer.stats()).counts.pending).toBe(1);
    });

    describe('one object, one order', () => {
      /** An event about object `obj`, created at `created` (Unix seconds). */
      const about = (
        id: string,
        obj: string,
        created: number,
        type = 'customer.subscription.updated',
      ) => ({
        ...incoming(id, type),
        created,
        objectId: obj,
      });
      const claimIds = async (limit = 10, types?: string[]) =>
        (await buffer.claim({ owner: 'w', leaseMs: 600_000, limit, types }))
          .map((e) => e.id)
          .sort();

      it('holds a newer event back while an older one about its object is active', async () => {
        // Delivered in reverse: the deletion first, then the update created before it.
        await buffer.append(about('evt_b_deleted', 'sub_1', 200, 'customer.subscription.deleted'));
        await buffer.append(about('evt_a_updated', 'sub_1', 100));
        await buffer.append(about('evt_other', 'sub_2', 300));
        expect(await claimIds()).toEqual(['evt_a_updated', 'evt_other']);
        // Claimed: still held back.
        expect(await claimIds()).toEqual([]);
        const [a] = await buffer
          .list({ statuses: ['claimed'], limit: 10 })
          .then((p) => p.events.filter((e) => e.id === 'evt_a_updated'));
        await buffer.ack('evt_a_updated', { token: a!.leaseOwner! });
        expect(await claimIds()).toEqual(['evt_b_deleted']);
      });

      it('holds back behind an event awaiting approval and a pending one not yet due, not a dead one', async () => {
        await buffer.append(about('evt_old', 'sub_1', 100));
        await buffer.append(about('evt_new', 'sub_1', 200));
        const [old] = await buffer.claim({ owner: 'w', leaseMs: 60_000, limit: 1 });
        expect(old!.id).toBe('evt_old');
        await buffer.hold('evt_old', old!.leaseOwner!, 'needs a person');
        expect(await claimIds()).toEqual([]);
        await buffer.ack('evt_old', { by: 'person' });
        expect(await claimIds()).toEqual(['evt_new']);

        await buffer.append(about('evt_x1', 'sub_9', 100));
        await buffer.append(about('evt_x2', 'sub_9', 200));
        const [x1] = await buffer.claim({ owner: 'w', leaseMs: 60_000, limit: 1 });
        // Nacked for later: pending, not due, still first in the object's order.
        await buffer.nack('evt_x1', { token: x1!.leaseOwner!, reason: 'later', retryInMs: 60_000 });
        expect(await claimIds()).toEqual([]);
        clock += 61_000;
        const [again] = await buffer.claim({ owner: 'w', leaseMs: 60_000, limit: 1 });
        expect(again!.id).toBe('evt_x1');
        // Dead: no longer holds anything back.
        await buffer.nack('evt_x1', { token: again!.leaseOwner!, reason: 'no' });
        const [third] = await buffer.claim({ owner: 'w', leaseMs: 60_000, limit: 1 });
        await buffer.nack('evt_x1', { token: third!.leaseOwner!, reason: 'no' });
        expect((await buffer.get('evt_x1'))!.status).toBe('dead');
        expect(await claimIds()).toEqual(['evt_x2']);
      });

      it('breaks a tie of created by the event id, and looks past held-back events', async () => {
        await buffer.append(about('evt_2', 'sub_1', 100));
        await buffer.append(about('evt_1', 'sub_1', 100));
        for (let i = 0; i < 40; i++) await buffer.append(about(`evt_held_${i}`, 'sub_1', 200 + i));
        await buffer.append(about('evt_free', 'sub_3', 500, 'invoice.payment_failed'));
        expect(await claimIds(1)).toEqual(['evt_1']);
        // Everything else about sub_1 waits; the free event further on is found.
        expect(await claimIds(5)).toEqual(['evt_free']);
        expect(await claimIds(5, ['customer.subscription.updated'])).toEqual([]);
      });
    });

    it('lists in arrival order with a type filter and cursor paging', async () => {
      for (let i = 1; i <= 25; i++) {
        await buffer.append(
          incoming(i, i % 5 === 0 ? 'charge.refunded' : 'charge.dispute.created'),
        );
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await buffer.list({ statuses: ['pending'], limit: 10, cursor });
        seen.push(...page.events.map((e) => e.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => incoming(i + 1).id));

      const refunds = await buffer.list({ types: ['charge.refunded'], limit: 3 });
      expect(refunds.events.map((e) => e.id)).toEqual([5, 10, 15].map((i) => incoming(i).id));
      const rest = await buffer.list({
        types: ['charge.refunded'],
        limit: 3,
        cursor: refunds.nextCursor,
      });
      expect(rest.events.map((e) => e.id)).toEqual([20, 25].map((i) => incoming(i).id));
      expect(rest.nextCursor).toBeNull();
    });

    it('lists several types of any status in arrival order, near and far from the cursor', async () => {
      // 300 disputes, then a refund and an invoice failure: a page of the rare types lies past
      // what a look at the next few events finds (the SQLite store then reads its indexes), a
      // page of disputes and refunds within it.
      for (let i = 1; i <= 300; i++) await buffer.append(incoming(i, 'charge.dispute.created'));
      await buffer.append(incoming(301, 'charge.refunded'));
      await buffer.append(incoming(302, 'invoice.payment_failed'));
      const rare = await buffer.list({
        types: ['charge.refunded', 'invoice.payment_failed'],
        limit: 5,
      });
      expect(rare.events.map((e) => e.id)).toEqual([301, 302].map((i) => incoming(i).id));
      const near = await buffer.list({
        types: ['charge.dispute.created', 'charge.refunded'],
        limit: 3,
      });
      expect(near.events.map((e) => e.id)).toEqual([1, 2, 3].map((i) => incoming(i).id));
      const tail = await buffer.list({
        types: ['charge.dispute.created', 'charge.refunded', 'invoice.payment_failed'],
        limit: 5,
        cursor: near.nextCursor,
      });
      expect(tail.events.map((e) => e.id)).toEqual([4, 5, 6, 7, 8].map((i) => incoming(i).id));
    });

    it('rejects a cursor it did not issue', async () => {
      await expect(buffer.list({ limit: 5, cursor: 'garbage' })).rejects.toBeInstanceOf(
        InvalidCursorError,
      );
      await expect(buffer.list({ limit: 5, cursor: 'c1.!!!' })).rejects.toBeInstanceOf(
        InvalidCursorError,
      );
    });

    it('filters the list by status', async () => {
      for (let i = 1; i <= 3; i++) await buffer.append(incoming(i));
      await buffer.ack(incoming(2).id);
      const pending = await buffer.list({ statuses: ['pending'], limit: 10 });
      expect(pending.events.map((e) => e.id)).toEqual([incoming(1).id, incoming(3).id]);
      const acked = await buffer.list({ statuses: ['acked'], limit: 10 });
      expect(acked.events.map((e) => e.id)).toEqual([incoming(2).id]);
      const all = await buffer.list({ limit: 10 });
      expect(all.events).toHaveLength(3);
    });

    it('reports counts, pending by type and the oldest pending event', async () => {
      expect(await buffer.stats()).toEqual({
        counts: { pending: 0, claimed: 0, acked: 0, dead: 0, awaiting_approval: 0 },
        pendingByType: {},
        oldestPendingReceivedAt: null,
      });
      const first = clock;
      await buffer.append(incoming(1, 'charge.refunded'));
      clock += 1000;
      await buffer.append(incoming(2));
      await buffer.append(incoming(3));
      await buffer.ack(incoming(3).id);
      const stats = await buffer.stats();
      expect(stats.counts).toMatchObject({ pending: 2, acked: 1 });
      expect(stats.pendingByType).toEqual({ 'charge.refunded': 1, 'charge.dispute.created': 1 });
      expect(stats.oldestPendingReceivedAt).toBe(first);
    });

    it('claims oldest first with a lease and never hands one event to two owners', async () => {
      for (let i = 1; i <= 3; i++) await buffer.append(incoming(i));
      const a = await buffer.claim({ owner: 'a', leaseMs: 30_000 });
      expect(a.map((e) => e.id)).toEqual([incoming(1).id]);
      expect(a[0]).toMatchObject({ status: 'claimed', leaseExpiresAt: clock + 30_000 });
      expect(ownerOf(a[0]!.leaseOwner)).toBe('a');
      const b = await buffer.claim({ owner: 'b', leaseMs: 30_000, limit: 5 });
      expect(b.map((e) => e.id)).toEqual([incoming(2).id, incoming(3).id]);
      expect(await buffer.claim({ owner: 'c', leaseMs: 30_000 })).toEqual([]);
      expect((await buffer.stats()).counts).toMatchObject({ pending: 0, claimed: 3 });
    });

    it('claims only the requested types, however many older events of other types wait', async () => {
      for (let i = 1; i <= 60; i++) await buffer.append(incoming(i));
      await buffer.append(incoming(61, 'charge.refunded'));
      const got = await buffer.claim({ owner: 'a', leaseMs: 1000, types: ['charge.refunded'] });
      expect(got.map((e) => e.id)).toEqual([incoming(61).id]);
    });

    it('claims by types in arrival order, whether the types cover every pending type or only some', async () => {
      await buffer.append(incoming(1, 'invoice.payment_failed'));
      await buffer.append(incoming(2, 'charge.refunded'));
      await buffer.append(incoming(3, 'invoice.payment_failed'));
      await buffer.append(incoming(4, 'charge.dispute.created'));
      // Every pending type, and some with nothing pending: the oldest first, across types.
      const all = ['charge.dispute.created', 'charge.refunded', 'invoice.payment_failed', 'x.y'];
      const first = await buffer.claim({ owner: 'a', leaseMs: 1000, limit: 2, types: all });
      expect(first.map((e) => e.id)).toEqual([incoming(1).id, incoming(2).id]);
      // Some of the pending types: never one of another type, even an older one.
      await buffer.append(incoming(5, 'charge.refunded'));
      const some = await buffer.claim({
        owner: 'a',
        leaseMs: 1000,
        limit: 5,
        types: ['charge.refunded', 'charge.dispute.created', 'x.y'],
      });
      expect(some.map((e) => e.id)).toEqual([incoming(4).id, incoming(5).id]);
      // Only types with nothing pending, or nothing at all.
      expect(await buffer.claim({ owner: 'a', leaseMs: 1000, types: ['x.y'] })).toEqual([]);
      expect(await buffer.claim({ owner: 'a', leaseMs: 1000, types: [] })).toEqual([]);
      const rest = await buffer.claim({ owner: 'a', leaseMs: 1000, types: all });
      expect(rest.map((e) => e.id)).toEqual([incoming(3).id]);
    });

    it('returns an expired lease to pending, counting the attempt, and lets another owner claim it', async () => {
      await buffer.append(incoming(1));
      await buffer.claim({ owner: 'a', leaseMs: 10_000 });
      clock += 10_001;
      const [first] = await buffer.list({ limit: 1 }).then((p) => p.events);
      const again = await buffer.claim({ owner: 'b', leaseMs: 10_000 });
      expect(again).toHaveLength(1);
      expect(again[0]).toMatchObject({ attempts: 1 });
      expect(ownerOf(again[0]!.leaseOwner)).toBe('b');
      expect(first?.status).toBe('claimed');
      await expect(buffer.renew(incoming(1).id, first!.leaseOwner!, 10_000)).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      const kinds = (await buffer.history(incoming(1).id)).map((h) => h.kind);
      expect(kinds).toEqual(['received', 'claimed', 'lease_expired', 'claimed']);
    });

    it('recovers expired leases on request and kills an event whose leases keep expiring', async () => {
      await buffer.append(incoming(1));
      for (let attempt = 1; attempt <= 3; attempt++) {
        expect(await buffer.claim({ owner: 'crashy', leaseMs: 1000 })).toHaveLength(1);
        clock += 1001;
        expect(await buffer.recoverExpiredLeases()).toBe(1);
      }
      expect(await buffer.get(incoming(1).id)).toMatchObject({
        status: 'dead',
        attempts: 3,
        lastError: 'lease expired',
      });
    });

    it('renews a lease only for the token of its claim', async () => {
      await buffer.append(incoming(1));
      const [a] = await buffer.claim({ owner: 'a', leaseMs: 1000 });
      clock += 900;
      await expect(buffer.renew(incoming(1).id, 'a', 1000)).rejects.toBeInstanceOf(LeaseLostError);
      expect(await buffer.renew(incoming(1).id, a!.leaseOwner!, 1000)).toMatchObject({
        leaseExpiresAt: clock + 1000,
      });
      clock += 900;
      expect(await buffer.recoverExpiredLeases()).toBe(0);
      expect((await buffer.get(incoming(1).id))?.status).toBe('claimed');
    });

    it('releases a claim without counting an attempt', async () => {
      await buffer.append(incoming(1));
      const [a] = await buffer.claim({ owner: 'a', leaseMs: 1000 });
      await expect(buffer.release(incoming(1).id, 'b~x')).rejects.toBeInstanceOf(LeaseLostError);
      expect((await buffer.get(incoming(1).id))?.status).toBe('claimed');
      await buffer.release(incoming(1).id, a!.leaseOwner!);
      expect(await buffer.get(incoming(1).id)).toMatchObject({
        status: 'pending',
        attempts: 0,
        leaseOwner: null,
      });
    });

    it('acks idempotently and refuses an unknown id', async () => {
      await buffer.append(incoming(1));
      const [a] = await buffer.claim({ owner: 'a', leaseMs: 1000 });
      expect(
        await buffer.ack(incoming(1).id, { token: a!.leaseOwner!, note: 'handled' }),
      ).toMatchObject({
        status: 'acked',
        leaseOwner: null,
      });
      expect(await buffer.ack(incoming(1).id)).toMatchObject({ status: 'acked' });
      await expect(buffer.ack('evt_nope')).rejects.toBeInstanceOf(EventNotFoundError);
      const history = await buffer.history(incoming(1).id);
      expect(history.map((h) => h.kind)).toEqual(['received', 'claimed', 'acked']);
      expect(history[2]).toMatchObject({ note: 'handled' });
      expect(await buffer.claim({ owner: 'b', leaseMs: 1000 })).toEqual([]);
    });

    it('nacks back to pending with a retry time, then dead past the attempt limit', async () => {
      await buffer.append(incoming(1));
      const [a] = await buffer.claim({ owner: 'a', leaseMs: 1000 });
      const n1 = await buffer.nack(incoming(1).id, {
        token: a!.leaseOwner!,
        reason: 'handler timed out',
        retryInMs: 60_000,
      });
      expect(n1).toMatchObject({
        status: 'pending',
        attempts: 1,
        retryAt: clock + 60_000,
        lastError: 'handler timed out',
      });
      expect(await buffer.claim({ owner: 'a', leaseMs: 1000 })).toEqual([]);
      clock += 60_000;
      const [again] = await buffer.claim({ owner: 'a', leaseMs: 1000 });
      await buffer.nack(incoming(1).id, { token: again!.leaseOwner!, reason: 'again' });
      const dead = await buffer.nack(incoming(1).id, { reason: 'for good' });
      expect(dead).toMatchObject({
        status: 'dead',
        attempts: 3,
        lastError: 'for good',
        retryAt: null,
      });
      expect((await buffer.stats()).counts).toMatchObject({ pending: 0, dead: 1 });
      await expect(buffer.nack(incoming(1).id, { reason: 'x' })).rejects.toBeInstanceOf(
        InvalidTransitionError,
      );
      await expect(buffer.nack('evt_nope', { reason: 'x' })).rejects.toBeInstanceOf(
        EventNotFoundError,
      );
    });

    it('holds a claimed event for approval across leases, and resumes it once', async () => {
      await buffer.append(incoming(1));
      const [a] = await buffer.claim({ owner: 'a', leaseMs: 1000 });
      await expect(buffer.hold(incoming(1).id, 'a')).rejects.toBeInstanceOf(LeaseLostError);
      const held = await buffer.hold(incoming(1).id, a!.leaseOwner!, 'amount over 50000');
      expect(held).toMatchObject({ status: 'awaiting_approval', leaseOwner: null });
      clock += 10_000;
      expect(await buffer.recoverExpiredLeases()).toBe(0);
      expect(await buffer.claim({ owner: 'c', leaseMs: 1000 })).toEqual([]);
      expect((await buffer.stats()).counts).toMatchObject({ awaiting_approval: 1, pending: 0 });
      const resumed = await buffer.approve(incoming(1).id, 'ann', 5000);
      expect(resumed).toMatchObject({ status: 'claimed' });
      expect(ownerOf(resumed.leaseOwner)).toBe('approver:ann');
      await expect(buffer.approve(incoming(1).id, 'bob', 5000)).rejects.toBeInstanceOf(
        NotAwaitingApprovalError,
      );
      await buffer.ack(incoming(1).id, {
        token: resumed.leaseOwner!,
        note: 'approved and dispatched',
      });
      expect((await buffer.history(incoming(1).id)).map((h) => h.kind)).toEqual([
        'received',
        'claimed',
        'held',
        'resumed',
        'acked',
      ]);
      expect((await buffer.history(incoming(1).id))[3]).toMatchObject({ by: 'ann' });
      await expect(buffer.hold('evt_nope', 'a')).rejects.toBeInstanceOf(EventNotFoundError);
    });

    it("returns an approver's expired claim to pending with its attempts unchanged, never dead", async () => {
      const id = incoming(1).id;
      const call = { name: 'handle_dispute', input: { action: 'accept' } };
      await buffer.append(incoming(1));
      // Two failed attempts of the limit of 3: an ordinary expiry now would kill it.
      await buffer.nack(id, { reason: 'first' });
      await buffer.nack(id, { reason: 'second' });
      const [w] = await buffer.claim({ owner: 'w', leaseMs: 1000 });
      await buffer.hold(id, w!.leaseOwner!, 'gated', [
        { kind: 'decision', tool_call: call, outcome: 'decided' },
      ]);
      await buffer.approve(id, 'mcp:alice', 5000);
      const seen: string[] = [];
      const stop = buffer.watch((c) => seen.push(`${c.kind}:${c.id ?? ''}`));
      clock += 5001;
      expect(await buffer.recoverExpiredLeases()).toBe(1);
      stop();
      expect(await buffer.get(id)).toMatchObject({
        status: 'pending',
        attempts: 2,
        retryAt: null,
        leaseOwner: null,
        leaseExpiresAt: null,
        lastError: interruptedApprovalError('mcp:alice'),
        updatedAt: clock,
      });
      expect(interruptedApprovalError('mcp:alice')).toBe(
        'approved call interrupted: approved by mcp:alice; it is dispatched again',
      );
      expect((await buffer.history(id)).at(-1)).toEqual({
        at: new Date(clock).toISOString(),
        kind: 'lease_expired',
        note: interruptedApprovalNote('mcp:alice'),
      });
      expect(seen).toEqual([`released:${id}`]);
      // Due now, for the next worker (which dispatches the approved call again).
      const [again] = await buffer.claim({ owner: 'w2', leaseMs: 1000 });
      expect(again).toMatchObject({ id, attempts: 2 });
    });

    it("expires a worker's claim on an interrupted approval as usual, keeping the marker until it dies", async () => {
      const id = incoming(1).id;
      await buffer.append(incoming(1));
      const [w] = await buffer.claim({ owner: 'w', leaseMs: 1000 });
      await buffer.hold(id, w!.leaseOwner!, 'gated', [
        { kind: 'decision', tool_call: { name: 'handle_dispute', input: {} }, outcome: 'decided' },
      ]);
      await buffer.approve(id, 'ann', 1000);
      clock += 1001;
      // The approver's claim: no attempt. Then a worker dispatching it again dies twice: counted,
      // the marker kept (the approved call is still the one to dispatch); dead at the limit.
      for (const attempts of [0, 1, 2]) {
        expect(await buffer.claim({ owner: 'w', leaseMs: 1000 })).toHaveLength(1);
        expect((await buffer.get(id))?.attempts).toBe(attempts);
        clock += 1001;
        expect(await buffer.recoverExpiredLeases()).toBe(1);
      }
      expect(await buffer.get(id)).toMatchObject({
        status: 'dead',
        attempts: 3,
        lastError: 'lease expired',
      });
      const kinds = (await buffer.history(id)).map((h) => h.kind);
      expect(kinds.slice(-7)).toEqual([
        'lease_expired',
        'claimed',
        'lease_expired',
        'claimed',
        'lease_expired',
        'claimed',
        'dead',
      ]);
      expect((await buffer.history(id)).at(-3)).toMatchObject({ kind: 'lease_expired' });
    });

    it("refuses a person's nack of a held call, pointing at reject, and changes nothing", async () => {
      const id = incoming(1).id;
      await buffer.append(incoming(1));
      const [w] = await buffer.claim({ owner: 'w', leaseMs: 1000 });
      await buffer.hold(id, w!.leaseOwner!, 'gated', [
        { kind: 'decision', tool_call: { name: 'handle_dispute', input: {} }, outcome: 'decided' },
      ]);
      const before = await buffer.get(id);
      const historyBefore = await buffer.history(id);
      const nack = buffer.nack(id, { by: 'mcp:ann', reason: 'not now' });
      await expect(nack).rejects.toBeInstanceOf(HeldForApprovalError);
      await expect(nack).rejects.toBeInstanceOf(BeingHandledError);
      await expect(nack).rejects.toMatchObject({
        code: 'held_for_approval',
        message: `event ${id} cannot be nacked: its decided call awaits approval; to turn it down use reject_action (MCP), \`events reject ${id} --reason …\` (CLI) or the console's Reject — a nack would discard the decision and have the model decide again`,
      });
      expect(await buffer.get(id)).toEqual(before);
      expect(await buffer.history(id)).toEqual(historyBefore);
      expect(before).toMatchObject({ status: 'awaiting_approval', attempts: 0 });
    });

    it("records a held decision as not carried out when a person acks it, in the ack's commit", async () => {
      const id = incoming(1).id;
      await buffer.append(incoming(1));
      await buffer.append(incoming(2));
      const [w] = await buffer.claim({ owner: 'w', leaseMs: 1000 });
      await buffer.hold(id, w!.leaseOwner!, 'gated', [
        { kind: 'decision', tool_call: { name: 'handle_dispute', input: {} }, outcome: 'decided' },
      ]);
      const seen: string[] = [];
      const stop = buffer.watch((c) => seen.push(`${c.kind}:${c.id ?? ''}`));
      expect(await buffer.ack(id, { by: 'cli:bob', note: 'handled by phone' })).toMatchObject({
        status: 'acked',
      });
      stop();
      expect(seen).toEqual([`acked:${id}`]);
      const at = new Date(clock).toISOString();
      expect((await buffer.history(id)).slice(-2)).toEqual([
        {
          at,
          kind: 'decision',
          outcome: 'not_carried_out',
          by: 'cli:bob',
          note: 'acked by cli:bob without approving: nothing was dispatched',
        },
        { at, kind: 'acked', by: 'cli:bob', note: 'handled by phone' },
      ]);
      expect(notCarriedOutNote('cli:bob')).toBe(
        'acked by cli:bob without approving: nothing was dispatched',
      );
      // Acking it again changes nothing; acking a pending event records no decision.
      await buffer.ack(id, { by: 'cli:bob' });
      expect((await buffer.history(id)).filter((h) => h.kind === 'decision')).toHaveLength(2);
      await buffer.ack(incoming(2).id, { by: 'cli:bob' });
      expect((await buffer.history(incoming(2).id)).map((h) => h.kind)).toEqual([
        'received',
        'acked',
      ]);
    });

    it('replays a finished event back to pending with its attempts reset', async () => {
      await buffer.append(incoming(1));
      await buffer.nack(incoming(1).id, { reason: 'x' });
      await buffer.ack(incoming(1).id);
      const replayed = await buffer.replay(incoming(1).id, { by: 'operator', note: 'again' });
      expect(replayed).toMatchObject({ status: 'pending', attempts: 0, lastError: null });
      expect((await buffer.history(incoming(1).id)).map((h) => h.kind)).toEqual([
        'received',
        'nacked',
        'acked',
        'replayed',
      ]);
      expect((await buffer.history(incoming(1).id))[3]).toMatchObject({
        by: 'operator',
        note: 'again',
      });
      await expect(buffer.replay('evt_nope')).rejects.toBeInstanceOf(EventNotFoundError);
    });

    it('refuses every change a stale token asks for, and changes nothing', async () => {
      await buffer.append(incoming(1));
      const [first] = await buffer.claim({ owner: 'w1', leaseMs: 1000 });
      clock += 1001;
      const [second] = await buffer.claim({ owner: 'w2', leaseMs: 5000 });
      expect(second?.id).toBe(incoming(1).id);
      const stale = first!.leaseOwner!;
      const before = await buffer.get(incoming(1).id);
      const historyBefore = await buffer.history(incoming(1).id);
      const refusals = await Promise.allSettled([
        buffer.renew(incoming(1).id, stale, 1000),
        buffer.release(incoming(1).id, stale),
        buffer.ack(incoming(1).id, { token: stale, note: 'late' }),
        buffer.nack(incoming(1).id, { token: stale, reason: 'late' }),
        buffer.hold(incoming(1).id, stale, 'late'),
      ]);
      for (const r of refusals) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(LeaseLostError);
        expect((r as PromiseRejectedResult).reason.code).toBe('lease_lost');
      }
      expect(await buffer.get(incoming(1).id)).toEqual(before);
      expect(await buffer.history(incoming(1).id)).toEqual(historyBefore);
      // The holder still can.
      expect(await buffer.ack(incoming(1).id, { token: second!.leaseOwner! })).toMatchObject({
        status: 'acked',
      });
    });

    it("lets a person's ack win over a claim, and fences the worker out", async () => {
      await buffer.append(incoming(1));
      const [w] = await buffer.claim({ owner: 'worker', leaseMs: 60_000 });
      const acked = await buffer.ack(incoming(1).id, { by: 'mcp:ann', note: 'handled by hand' });
      expect(acked).toMatchObject({ status: 'acked', leaseOwner: null });
      const last = (await buffer.history(incoming(1).id)).at(-1);
      expect(last).toMatchObject({ kind: 'acked', by: 'mcp:ann', note: 'handled by hand' });
      const token = w!.leaseOwner!;
      await expect(buffer.renew(incoming(1).id, token, 1000)).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      await expect(buffer.ack(incoming(1).id, { token })).rejects.toBeInstanceOf(LeaseLostError);
      await expect(buffer.nack(incoming(1).id, { token, reason: 'x' })).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      expect((await buffer.history(incoming(1).id)).filter((h) => h.kind === 'acked')).toHaveLength(
        1,
      );
    });

    it('refuses to replay or nack (as a person) an event being handled, with the same words', async () => {
      await buffer.append(incoming(1));
      await buffer.append(incoming(2));
      const [w] = await buffer.claim({ owner: 'worker', leaseMs: 60_000 });
      const replay = buffer.replay(incoming(1).id, { by: 'cli:x' });
      await expect(replay).rejects.toBeInstanceOf(BeingHandledError);
      await expect(replay).rejects.toThrow(/being handled now.*ack it/);
      await expect(buffer.nack(incoming(1).id, { by: 'mcp', reason: 'x' })).rejects.toBeInstanceOf(
        BeingHandledError,
      );
      await buffer.hold(incoming(1).id, w!.leaseOwner!, 'gated');
      await expect(buffer.replay(incoming(1).id)).rejects.toThrow(/waits for approval.*ack it/);
      expect(await buffer.get(incoming(1).id)).toMatchObject({
        status: 'awaiting_approval',
        attempts: 0,
      });
    });

    it('lets exactly one of a racing approve and reject win', async () => {
      for (let i = 1; i <= 10; i++) await buffer.append(incoming(i));
      const claimed = await buffer.claim({ owner: 'w', leaseMs: 60_000, limit: 10 });
      for (const e of claimed) await buffer.hold(e.id, e.leaseOwner!, 'gated');
      for (let i = 1; i <= 10; i++) {
        const id = incoming(i).id;
        const race = await Promise.allSettled([
          buffer.approve(id, 'ann', 5000),
          buffer.reject(id, 'bob', 'no'),
          buffer.approve(id, 'cid', 5000),
          buffer.reject(id, 'dee', 'no'),
        ]);
        const won = race.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of race) {
          if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(NotAwaitingApprovalError);
        }
        const kinds = (await buffer.history(id)).map((h) => h.kind);
        expect(
          kinds.filter((k) => k === 'resumed').length + kinds.filter((k) => k === 'acked').length,
        ).toBe(1);
      }
      await expect(buffer.reject(incoming(1).id, 'x', 'late')).rejects.toBeInstanceOf(
        NotAwaitingApprovalError,
      );
    });

    it('keeps the policy with the store', async () => {
      expect(await buffer.policy()).toEqual({ maxAttempts: 3, retryBaseMs: 30_000 });
      expect(await buffer.setPolicy({ maxAttempts: 2 })).toEqual({
        maxAttempts: 2,
        retryBaseMs: 30_000,
      });
      await buffer.append(incoming(1));
      await buffer.nack(incoming(1).id, { reason: 'a' });
      expect(await buffer.nack(incoming(1).id, { reason: 'b' })).toMatchObject({ status: 'dead' });
    });

    it('records history entries in the same commit as ack, nack and hold', async () => {
      await buffer.append(incoming(1));
      await buffer.append(incoming(2));
      await buffer.append(incoming(3));
      const call = { name: 'handle_dispute', input: { action: 'accept' } };
      await buffer.ack(incoming(1).id, {
        note: 'done',
        record: [
          {
            kind: 'decision',
            model: 'm',
            tool_call: call,
            usage: { input_tokens: 5, output_tokens: 2 },
            latency_ms: 7,
          },
          { kind: 'dispatch', tool_call: call, outcome: 'dispatched' },
        ],
      });
      expect((await buffer.history(incoming(1).id)).map((h) => h.kind)).toEqual([
        'received',
        'decision',
        'dispatch',
        'acked',
      ]);
      expect((await buffer.history(incoming(1).id))[1]).toMatchObject({
        usage: { input_tokens: 5, output_tokens: 2 },
        latency_ms: 7,
      });
      await buffer.nack(incoming(2).id, {
        reason: 'x',
        record: [{ kind: 'dispatch', outcome: 'failed', note: 'x' }],
      });
      expect((await buffer.history(incoming(2).id)).map((h) => h.kind)).toEqual([
        'received',
        'dispatch',
        'nacked',
      ]);
      const [c3] = await buffer.claim({ owner: 'a', leaseMs: 1000, limit: 5 });
      await buffer.hold(incoming(3).id, c3!.leaseOwner!, 'gated', [
        { kind: 'decision', tool_call: call, outcome: 'decided' },
      ]);
      expect((await buffer.history(incoming(3).id)).map((h) => h.kind)).toEqual([
        'received',
        'claimed',
        'decision',
        'held',
      ]);
    });

    it('keeps decisions in the history with their fields', async () => {
      await buffer.append(incoming(1));
      await buffer.addHistory(incoming(1).id, {
        kind: 'decision',
        model: 'claude-test',
        tool_call: { name: 'handle_dispute', input: { action: 'accept' } },
        outcome: 'recorded',
      });
      const history = await buffer.history(incoming(1).id);
      expect(history[1]).toMatchObject({
        kind: 'decision',
        model: 'claude-test',
        tool_call: { name: 'handle_dispute', input: { action: 'accept' } },
        outcome: 'recorded',
      });
      expect(typeof history[1]?.at).toBe('string');
      await expect(buffer.addHistory('evt_nope', { kind: 'note' })).rejects.toBeInstanceOf(
        EventNotFoundError,
      );
    });

    it('prunes finished events past the window and keeps pending ones', async () => {
      await buffer.append(incoming(1));
      await buffer.append(incoming(2));
      await buffer.append(incoming(3));
      await buffer.ack(incoming(1).id);
      await buffer.nack(incoming(2).id, { reason: 'a' });
      const cutoff = clock + 1;
      clock += 10;
      expect(await buffer.prune(cutoff)).toBe(1);
      expect(await buffer.get(incoming(1).id)).toBeNull();
      expect(await buffer.get(incoming(2).id)).not.toBeNull();
      expect(await buffer.get(incoming(3).id)).not.toBeNull();
      expect((await buffer.stats()).counts).toMatchObject({ pending: 2, acked: 0 });
    });

    it('keeps the newest created of the events queued, whatever their arrival order', async () => {
      expect(await buffer.newestCreated()).toBeNull();
      await buffer.append({ ...incoming(1), created: 1_786_000_100 });
      // Older, arriving later (a backfill walks newest first): the newest stays.
      await buffer.append({ ...incoming(2), created: 1_786_000_050 });
      expect(await buffer.newestCreated()).toBe(1_786_000_100);
      // A duplicate queues nothing, whatever it says.
      await buffer.append({ ...incoming(2), created: 1_786_999_999 });
      expect(await buffer.newestCreated()).toBe(1_786_000_100);
      await buffer.append({ ...incoming(3), created: 1_786_000_200 });
      expect(await buffer.newestCreated()).toBe(1_786_000_200);
      // Pruning the newest event does not lower it: it was seen.
      await buffer.ack(incoming(3).id);
      clock += 10;
      expect(await buffer.prune(clock)).toBe(1);
      expect(await buffer.newestCreated()).toBe(1_786_000_200);
    });

    it('records how each finished event ended, in the commit that ends it, and lists by it', async () => {
      const ids = Array.from({ length: 11 }, (_, i) => incoming(i + 1).id);
      for (let i = 1; i <= 11; i++)
        await buffer.append(incoming(i, i % 2 ? 'charge.refunded' : 'charge.dispute.created'));
      const claimAll = async () => {
        const got = await buffer.claim({ owner: 'w', leaseMs: 10_000, limit: 20 });
        return new Map(got.map((e) => [e.id, e.leaseOwner!]));
      };
      let tokens = await claimAll();
      expect((await buffer.get(ids[0]!))!.outcome).toBeNull();
      const held = async (n: number) => {
        await buffer.hold(ids[n]!, tokens.get(ids[n]!)!, 'gated', [
          {
            kind: 'decision',
            tool_call: { name: 'handle_dispute', input: {} },
            outcome: 'decided',
          },
        ]);
      };
      // The agent's call went to the handler: `dispatched`, also when the worker does not say so.
      await buffer.ack(ids[0]!, { token: tokens.get(ids[0]!)!, outcome: 'dispatched' });
      await buffer.ack(ids[1]!, { token: tokens.get(ids[1]!)! });
      // Approved: approved, then acked by the approver's claim.
      await held(2);
      const approving = await buffer.approve(ids[2]!, 'ann', 10_000);
      expect(approving.outcome).toBeNull();
      await buffer.ack(ids[2]!, { token: approving.leaseOwner!, by: 'ann', outcome: 'approved' });
      // Rejected by a person; expired by the sweep.
      await held(3);
      expect(await buffer.reject(ids[3]!, 'bob', 'too much')).toMatchObject({
        status: 'acked',
        outcome: 'rejected',
      });
      await held(4);
      expect(
        await buffer.reject(ids[4]!, 'expiry', 'no answer in 24 h', { outcome: 'expired' }),
      ).toMatchObject({ status: 'acked', outcome: 'expired' });
      expect((await buffer.history(ids[4]!)).slice(-2)).toMatchObject([
        { kind: 'decision', outcome: 'expired', by: 'expiry', note: 'no answer in 24 h' },
        { kind: 'acked', by: 'expiry', note: 'expired: no answer in 24 h' },
      ]);
      // A person's ack by hand, of a claimed event and of a held call: `handled`.
      expect(await buffer.ack(ids[5]!, { by: 'cli:bob' })).toMatchObject({ outcome: 'handled' });
      await held(6);
      expect(await buffer.ack(ids[6]!, { by: 'cli:bob' })).toMatchObject({ outcome: 'handled' });
      // Outcomes other paths give (a person's choice, a superseded object, the agent's own).
      await buffer.ack(ids[7]!, { token: tokens.get(ids[7]!)!, by: 'ann', outcome: 'decided' });
      await buffer.ack(ids[8]!, { by: 'cli:bob', outcome: 'superseded' });
      await buffer.ack(ids[9]!, { token: tokens.get(ids[9]!)!, outcome: 'no_action' });
      // Dead: no outcome.
      for (let attempt = 0; attempt < 3; attempt++) {
        if (attempt > 0) tokens = await claimAll();
        await buffer.nack(ids[10]!, { token: tokens.get(ids[10]!)!, reason: 'boom' });
      }
      const expected = [
        'dispatched',
        'dispatched',
        'approved',
        'rejected',
        'expired',
        'handled',
        'handled',
        'decided',
        'superseded',
        'no_action',
        null,
      ];
      const got = async () => Promise.all(ids.map(async (id) => (await buffer.get(id))!.outcome));
      expect(await got()).toEqual(expected);
      expect((await buffer.get(ids[10]!))!.status).toBe('dead');
      // An ack of an acked event changes nothing, its outcome included.
      await buffer.ack(ids[3]!, { by: 'cli:bob', outcome: 'handled' });
      expect((await buffer.get(ids[3]!))!.outcome).toBe('rejected');
      const listed = async (query: Omit<Parameters<EventBuffer['list']>[0], 'limit'>) => {
        const out: string[] = [];
        let cursor: string | null = null;
        do {
          const page = await buffer.list({ ...query, limit: 2, cursor });
          out.push(...page.events.map((e) => `${ids.indexOf(e.id)}:${e.outcome}`));
          cursor = page.nextCursor;
        } while (cursor);
        return out;
      };
      expect(await listed({ outcomes: ['approved', 'rejected'] })).toEqual([
        '2:approved',
        '3:rejected',
      ]);
      expect(await listed({ outcomes: ['handled', 'dispatched'] })).toEqual([
        '0:dispatched',
        '1:dispatched',
        '5:handled',
        '6:handled',
      ]);
      expect(
        await listed({ outcomes: ['handled', 'dispatched'], types: ['charge.refunded'] }),
      ).toEqual(['0:dispatched', '6:handled']);
      expect(await listed({ outcomes: ['expired'], statuses: ['dead'] })).toEqual([]);
      expect(await listed({ outcomes: [] })).toEqual([]);
      // Durable with the state: the same answers after a reopen.
      if (h.reopen) {
        buffer = await h.reopen();
        expect(await got()).toEqual(expected);
        expect(await listed({ outcomes: ['expired'] })).toEqual(['4:expired']);
      }
      // A replay clears it, and the list by outcome no longer has it.
      expect(await buffer.replay(ids[3]!, { by: 'cli:bob' })).toMatchObject({
        status: 'pending',
        outcome: null,
      });
      expect(await listed({ outcomes: ['rejected'] })).toEqual([]);
      // Pruned with its event.
      clock += 10_000;
      await buffer.prune(clock);
      expect(await listed({ outcomes: [...EVENT_OUTCOMES] })).toEqual([]);
    });

    it('lists, filters, pages and counts exactly like the memory buffer after a random run of operations', async () => {
      // The memory buffer is the oracle: the same operations, then every list page compared.
      const oracle = new MemoryBuffer({ now, maxAttempts: 3 });
      const tokens = new Map<EventBuffer, Map<string, string>>([
        [buffer, new Map()],
        [oracle, new Map()],
      ]);
      // Tokens carry a random nonce: compare who holds a claim, not the nonce.
      const same = (e: StoredEvent | null) =>
        e && { ...e, leaseOwner: e.leaseOwner && ownerOf(e.leaseOwner) };
      const sameHistory = (h: HistoryEntry[]) =>
        h.map((x) => (x.kind === 'claimed' ? { ...x, note: ownerOf(x.note ?? null) } : x));
      const types = ['charge.dispute.created', 'charge.refunded', 'invoice.payment_failed'];
      let seed = 7;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        // The high bits: the low bits of this generator repeat with a short period (the lowest
        // alternates), which kept whole sequences of operations from ever happening.
        return Math.floor((seed / 2 ** 31) * n);
      };
      // Worker and approval commands mostly aim at events just claimed or held, so they act on
      // live claims and held calls (an approver's claim expiring, a held call acked by a person)
      // instead of being refused.
      const claimedIds: string[] = [];
      const heldIds: string[] = [];
      const recent = (ids: string[]) => ids[ids.length - 1 - rand(Math.min(3, ids.length))]!;
      for (let i = 1; i <= 180; i++) {
        // Mostly one type, so both sides of the list merge (by status, by type) get used.
        const type = types[rand(10) < 8 ? 0 : 1 + rand(2)]!;
        for (const b of [buffer, oracle]) await b.append(incoming(i, type));
        clock += rand(3) * 100;
        const op = rand(14);
        const id =
          [0, 1, 10, 11, 13].includes(op) && heldIds.length > 0 && rand(4) > 0
            ? recent(heldIds)
            : op >= 5 && op <= 9 && claimedIds.length > 0 && rand(4) > 0
              ? recent(claimedIds)
              : incoming(1 + rand(i)).id;
        const retry = rand(2) * 1000;
        const outcomes: string[] = [];
        for (const b of [buffer, oracle]) {
          // Each store's own token for the event (tokens differ; their use must not).
          const token = tokens.get(b)!.get(id) ?? 'nobody~0';
          try {
            if (op === 0) await b.ack(id, { by: 'person' });
            else if (op === 1) await b.nack(id, { by: 'person', reason: 'r', retryInMs: retry });
            else if (op === 2 || op === 4) {
              const got =
                op === 2
                  ? await b.claim({ owner: 'o', leaseMs: 500, limit: 2 })
                  : await b.claim({ owner: 'p', leaseMs: 800, types: [type] });
              for (const e of got) tokens.get(b)!.set(e.id, e.leaseOwner!);
              if (b === oracle) claimedIds.push(...got.map((e) => e.id));
            } else if (op === 3) await b.replay(id);
            else if (op === 5) {
              // Outcomes by step, not by `rand`: the run's sequence of operations stays the same.
              const outcome = (['dispatched', 'approved', 'no_action'] as const)[i % 3]!;
              await b.ack(id, { token, note: 'w', ...(i % 4 === 0 ? {} : { outcome }) });
            } else if (op === 6) await b.nack(id, { token, reason: 'w', retryInMs: retry });
            else if (op === 7) {
              await b.hold(id, token, 'gate');
              if (b === oracle) heldIds.push(id);
            } else if (op === 8) await b.renew(id, token, 900);
            else if (op === 9) await b.release(id, token);
            else if (op === 10 || op === 13) {
              // A short lease: some approvers' claims expire before anyone acts on them.
              const e = await b.approve(id, 'ann', 300);
              tokens.get(b)!.set(id, e.leaseOwner!);
              if (b === oracle) claimedIds.push(id);
            } else if (op === 11) {
              await b.reject(id, 'bob', 'no', i % 2 === 0 ? { outcome: 'expired' } : {});
            } else if (op === 12) await b.recoverExpiredLeases();
            outcomes.push('ok');
          } catch (error) {
            outcomes.push((error as { code?: string }).code ?? String(error));
          }
        }
        // Same answer from both, refusals included.
        expect(outcomes[0], `op ${op} on ${id}`).toBe(outcomes[1]);
      }
      expect(await buffer.stats()).toEqual(await oracle.stats());
      const filters: { statuses?: EventStatus[]; types?: string[]; outcomes?: EventOutcome[] }[] = [
        {},
        { statuses: ['pending'] },
        { statuses: ['dead'] },
        { statuses: ['acked', 'claimed'] },
        { types: ['charge.refunded'] },
        { statuses: ['pending'], types: ['charge.refunded'] },
        { statuses: ['dead'], types: ['charge.dispute.created'] },
        { statuses: [...EVENT_STATUSES], types: [types[0]!, types[2]!] },
        { outcomes: ['handled'] },
        { outcomes: ['dispatched', 'approved', 'rejected'] },
        { outcomes: [...EVENT_OUTCOMES] },
        { outcomes: ['handled', 'expired'], types: ['charge.dispute.created'] },
        { outcomes: ['handled'], statuses: ['acked', 'pending'], types: [types[1]!, types[2]!] },
        { outcomes: ['no_action'], statuses: ['pending'] },
        { outcomes: [] },
      ];
      for (const filter of filters) {
        for (const limit of [1, 7, 50, 500]) {
          const pages = async (b: EventBuffer) => {
            const ids: string[] = [];
            let cursor: string | null = null;
            do {
              const page = await b.list({ ...filter, limit, cursor });
              expect(page.events.length).toBeLessThanOrEqual(limit);
              ids.push(...page.events.map((e) => `${e.id}:${e.status}:${e.attempts}:${e.outcome}`));
              cursor = page.nextCursor;
            } while (cursor);
            return ids;
          };
          expect(await pages(buffer), JSON.stringify({ filter, limit })).toEqual(
            await pages(oracle),
          );
        }
      }
      for (let i = 1; i <= 180; i++) {
        const id = incoming(i).id;
        expect(same(await buffer.get(id))).toEqual(same(await oracle.get(id)));
        expect(sameHistory(await buffer.history(id))).toEqual(
          sameHistory(await oracle.history(id)),
        );
      }
      // The run went through the rules restated in Lua (redis/scripts.ts `recover`): an
      // approver's claim expired, and a person acked a held call.
      const notes: (string | undefined)[] = [];
      for (let i = 1; i <= 180; i++) {
        for (const h of await oracle.history(incoming(i).id)) notes.push(h.note);
      }
      expect(notes.some((n) => n?.includes('the approved call was interrupted'))).toBe(true);
      expect(notes.some((n) => n?.includes('without approving'))).toBe(true);
      // And ended events in several ways, so the outcome filters above compared real pages.
      const ended = await oracle.list({ outcomes: [...EVENT_OUTCOMES], limit: 500 });
      expect(new Set(ended.events.map((e) => e.outcome)).size).toBeGreaterThanOrEqual(4);
    });

    it('refuses new events at the pending limit but still answers duplicates', async () => {
      await h.cleanup();
      await open({ maxPending: 2 });
      await buffer.append(incoming(1));
      await buffer.append(incoming(2));
      await expect(buffer.append(incoming(3))).rejects.toBeInstanceOf(BufferFullError);
      expect((await buffer.append(incoming(2))).status).toBe('duplicate');
      await buffer.ack(incoming(1).id);
      expect((await buffer.append(incoming(3))).status).toBe('queued');
      expect(await buffer.get(incoming(3).id)).not.toBeNull();
    });

    it('reports unhealthy and refuses work once closed', async () => {
      expect((await buffer.health()).ok).toBe(true);
      await buffer.close();
      expect((await buffer.health()).ok).toBe(false);
      await expect(buffer.append(incoming(1))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(buffer.stats()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(buffer.list({ limit: 5, types: ['a', 'b', 'c'] })).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
    });

    it('announces each committed change to watchers until they unsubscribe', async () => {
      const seen: string[] = [];
      const stop = buffer.watch((c) => seen.push(`${c.kind}:${c.id ?? ''}`));
      await buffer.append(incoming(1));
      await buffer.append(incoming(1));
      await buffer.append(incoming(2));
      await buffer.claim({ owner: 'a', leaseMs: 1000 });
      await buffer.ack(incoming(1).id);
      await buffer.nack(incoming(2).id, { reason: 'x' });
      await buffer.replay(incoming(1).id);
      await buffer.addHistory(incoming(1).id, { kind: 'note', note: 'no state change' });
      stop();
      await buffer.ack(incoming(2).id);
      expect(seen).toEqual([
        `queued:${incoming(1).id}`,
        `queued:${incoming(2).id}`,
        `claimed:${incoming(1).id}`,
        `acked:${incoming(1).id}`,
        `nacked:${incoming(2).id}`,
        `replayed:${incoming(1).id}`,
      ]);
    });

    it('keeps everything across a reopen when durable', async (ctx) => {
      if (!h.reopen) ctx.skip();
      await buffer.append(incoming(1));
      await buffer.append(incoming(2));
      await buffer.ack(incoming(2).id);
      buffer = await h.reopen!();
      expect((await buffer.append(incoming(1))).status).toBe('duplicate');
      expect(await buffer.get(incoming(2).id)).toMatchObject({ status: 'acked' });
      expect((await buffer.stats()).counts).toMatchObject({ pending: 1, acked: 1 });
      expect(await buffer.newestCreated()).toBe(incoming(2).created);
    });

    happeningsContract(
      () => ({ buffer, h, setBuffer: (b) => (buffer = b) }),
      { now, advance: (ms) => (clock += ms) },
      incoming,
    );
  });
}

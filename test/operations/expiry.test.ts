/**
 * Approvals expire (issue #20.6): the deadline (plain, or a dispute's evidence deadline less the
 * margin), the default applied through the guarded transitions, and — on Redis, two store handles
 * on one prefix sweeping at once, as two instances do — applied exactly once per held call, with
 * one notice each; a restart (a new handle) re-sweeps and finds nothing left to do.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBuffer, HistoryInput, IncomingEvent } from '../../src/buffer/buffer.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { openRedisBuffer } from '../../src/buffer/redis/store.js';
import type { ToolCall } from '../../src/catalog/catalog.js';
import type { DispatchRequest, Sink } from '../../src/dispatch/dispatch.js';
import { createLogger } from '../../src/logger.js';
import {
  approvalDeadline,
  expirySettings,
  sweepExpired,
  warningAt,
  type AppliedExpiry,
  type ExpirySettings,
} from '../../src/operations/expiry.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';

const { run: redisRun } = await redisGate();
const silent = createLogger({ level: 'silent' });
const START = Date.parse('2026-12-05T10:00:00Z');
const HOUR = 3_600_000;
const CALL: ToolCall = { name: 'handle_dispute', input: { action: 'accept', amount: 75_000 } };

function dispute(id: string, dueBy: number | null): IncomingEvent {
  const object: Record<string, unknown> = { id: `dp_${id}`, object: 'dispute', amount: 75_000 };
  if (dueBy !== null) object.evidence_details = { due_by: dueBy };
  return {
    id,
    type: 'charge.dispute.created',
    created: Math.floor(START / 1000),
    livemode: false,
    objectId: `dp_${id}`,
    payload: JSON.stringify({ id, object: 'event', data: { object } }),
  };
}

async function hold(buffer: EventBuffer, event: IncomingEvent, call: ToolCall | null = CALL) {
  await buffer.append(event);
  const [claim] = await buffer.claim({ owner: 'worker', leaseMs: 60_000 });
  const decided: HistoryInput[] = call ? [{ kind: 'decision', tool_call: call }] : [];
  await buffer.hold(event.id, claim!.leaseOwner!, 'handle_dispute needs approval', decided);
}

function recordingSink() {
  const got: DispatchRequest[] = [];
  const sink: Sink = {
    kind: 'module',
    async dispatch(request) {
      got.push(request);
      return { outcome: 'dispatched' };
    },
  };
  return { sink, got };
}

const settings = (over: Partial<ExpirySettings> = {}): ExpirySettings => ({
  ...expirySettings({ expires_after: 24 * HOUR, dispute_margin: 24 * HOUR }),
  ...over,
});

describe('approvalDeadline', () => {
  const s = settings();
  it('is expires_after after the hold for an event with no evidence deadline', () => {
    expect(approvalDeadline(dispute('e1', null), START, s)).toEqual({
      at: START + 24 * HOUR,
      why: 'expires_after',
    });
    expect(approvalDeadline({ payload: 'not json' }, START, s).why).toBe('expires_after');
  });

  it("is the dispute's evidence_due_by less the margin when that comes first", () => {
    const dueBy = (START + 30 * HOUR) / 1000;
    expect(approvalDeadline(dispute('e1', dueBy), START, s)).toEqual({
      at: START + 6 * HOUR,
      why: 'evidence_due_by',
    });
    // A far deadline: the waiting time wins.
    expect(approvalDeadline(dispute('e1', (START + 30 * 24 * HOUR) / 1000), START, s).why).toBe(
      'expires_after',
    );
  });

  it('warns a tenth of the window before, or an hour, whichever is sooner', () => {
    expect(warningAt({ at: START + 24 * HOUR, why: 'expires_after' }, START)).toBe(
      START + 23 * HOUR,
    );
    expect(warningAt({ at: START + 2 * HOUR, why: 'expires_after' }, START)).toBe(
      START + 2 * HOUR - 12 * 60_000,
    );
  });

  it('defaults to 24h, a 24h margin and reject', () => {
    expect(expirySettings(undefined)).toEqual({
      expiresAfterMs: 24 * HOUR,
      disputeMarginMs: 24 * HOUR,
      onExpiry: 'reject',
    });
  });
});

describe('the expiry sweep on the memory store', () => {
  it('leaves a call inside its window, warns once near the end, rejects it past the deadline', async () => {
    const clock = { now: START };
    const buffer = new MemoryBuffer({ now: () => clock.now });
    await hold(buffer, dispute('evt_exp_1', null));
    const { sink, got } = recordingSink();
    const warned: string[] = [];
    const expired: AppliedExpiry[] = [];
    const sweep = () =>
      sweepExpired({
        buffer,
        sink,
        settings: settings(),
        logger: silent,
        now: () => clock.now,
        onExpired: (a) => expired.push(a),
        onExpiringSoon: (s) => warned.push(s.event.id),
      });
    expect(await sweep()).toBe(0);
    expect(warned).toEqual([]);
    clock.now += 23.5 * HOUR;
    await sweep();
    await sweep();
    expect(warned).toEqual(['evt_exp_1']);
    clock.now += HOUR;
    expect(await sweep()).toBe(1);
    const event = await buffer.get('evt_exp_1');
    expect(event?.status).toBe('acked');
    expect(event?.outcome).toBe('expired');
    const history = await buffer.history('evt_exp_1');
    expect(history.find((h) => h.kind === 'decision' && h.by === 'expiry')).toMatchObject({
      outcome: 'expired',
      note: 'the approval was not given within 24h; rejected by default',
    });
    expect(history.at(-1)).toMatchObject({
      kind: 'acked',
      note: 'expired: the approval was not given within 24h; rejected by default',
    });
    expect(expired).toHaveLength(1);
    expect(got).toEqual([]);
    expect(await sweep()).toBe(0);
  });

  it('with on_expiry approve dispatches the decided call as approved by expiry', async () => {
    const clock = { now: START };
    const buffer = new MemoryBuffer({ now: () => clock.now });
    await hold(buffer, dispute('evt_exp_2', (START + 10 * HOUR) / 1000));
    await hold(buffer, dispute('evt_exp_3', null), null);
    const { sink, got } = recordingSink();
    clock.now += 25 * HOUR;
    const s = settings({ onExpiry: 'approve' });
    expect(
      await sweepExpired({ buffer, sink, settings: s, logger: silent, now: () => clock.now }),
    ).toBe(2);
    expect(got.map((r) => r.event_id)).toEqual(['evt_exp_2']);
    const approved = await buffer.history('evt_exp_2');
    expect(approved.some((h) => h.kind === 'resumed' && h.by === 'expiry')).toBe(true);
    expect(approved.at(-1)?.note).toMatch(
      /^expired: the approval was not given before the dispute's evidence deadline less 24h; approved by default/,
    );
    // Nothing to dispatch when a person was asked to look: rejected, saying why.
    const asked = await buffer.history('evt_exp_3');
    expect(asked.find((h) => h.kind === 'decision')?.note).toMatch(/no call to dispatch/);
  });
});

describe.runIf(redisRun)('the expiry sweep across two instances on Redis', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function pair(clock: { now: number }) {
    const prefix = uniquePrefix('expiry');
    const a = await openRedisBuffer({ url: REDIS_URL, prefix, now: () => clock.now });
    const b = await openRedisBuffer({ url: REDIS_URL, prefix, now: () => clock.now });
    cleanups.push(async () => {
      await a.close();
      await b.close();
      await deleteKeys(prefix);
    });
    return { a, b, prefix };
  }

  for (const onExpiry of ['reject', 'approve'] as const) {
    it(`applies ${onExpiry} once per held call, whichever instance sees it; one notice each`, async () => {
      const clock = { now: START };
      const { a, b, prefix } = await pair(clock);
      const ids = Array.from({ length: 12 }, (_, i) => `evt_exp_r${i}`);
      for (const id of ids) await hold(a, dispute(id, null));
      const { sink, got } = recordingSink();
      const expired: string[] = [];
      const warned: string[] = [];
      const s = settings({ expiresAfterMs: 2_000, onExpiry });
      const sweep = (buffer: EventBuffer) =>
        sweepExpired({
          buffer,
          sink,
          settings: s,
          logger: silent,
          now: () => clock.now,
          onExpired: (applied) => expired.push(applied.id),
          onExpiringSoon: (soon) => warned.push(soon.event.id),
        });
      clock.now += 1_900;
      await Promise.all([sweep(a), sweep(b), sweep(a), sweep(b)]);
      expect(warned.sort()).toEqual([...ids].sort());
      clock.now += 200;
      const counts = await Promise.all([sweep(a), sweep(b), sweep(b), sweep(a)]);
      expect(counts.reduce((x, y) => x + y, 0)).toBe(ids.length);
      expect(expired.sort()).toEqual([...ids].sort());
      for (const id of ids) {
        const history = await b.history(id);
        // The reject's decision entry, or the note after the default approval's dispatch.
        const expiredEntries = history.filter(
          (h) =>
            (h.kind === 'decision' && h.by === 'expiry') ||
            (h.kind === 'note' && h.note?.startsWith('expired:')),
        );
        expect(expiredEntries, id).toHaveLength(1);
        expect(await a.get(id)).toMatchObject({ status: 'acked', outcome: 'expired' });
      }
      expect(got.length).toBe(onExpiry === 'approve' ? ids.length : 0);
      // A restart: a new instance sweeps and finds nothing left to apply.
      const c = await openRedisBuffer({ url: REDIS_URL, prefix, now: () => clock.now });
      cleanups.push(() => c.close());
      expect(await sweep(c)).toBe(0);
    });
  }
});

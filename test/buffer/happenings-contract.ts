/**
 * The happenings log's contract (src/buffer/happenings.ts), run inside runBufferContract on
 * every adapter: a hold, a death and a pause each log one happening, in order, in the commit of
 * the change, with positions that survive a reopen and are pruned with the events.
 */
import { expect, it } from 'vitest';
import { DEDUP_WINDOW_MS, NOT_PAUSED, type EventBuffer } from '../../src/buffer/buffer.js';
import type { BufferHarness } from './contract.js';

export function happeningsContract(
  get: () => { buffer: EventBuffer; h: BufferHarness; setBuffer: (b: EventBuffer) => void },
  clock: { now: () => number; advance: (ms: number) => void },
  event: (n: number) => { id: string; type: string } & Parameters<EventBuffer['append']>[0],
): void {
  it('logs a hold, a death and a pause as one happening each, in order, durable', async () => {
    let { buffer } = get();
    const { h, setBuffer } = get();
    const head0 = await buffer.happeningsHead();
    expect(await buffer.happenings(head0, 10)).toEqual([]);
    await buffer.append(event(1));
    await buffer.append(event(2));
    const [held] = await buffer.claim({ owner: 'w', leaseMs: 60_000, types: [event(1).type] });
    await buffer.hold(held!.id, held!.leaseOwner!, 'amount over the approval threshold');
    // Not happenings: a claim, a nack that retries, an ack.
    const [other] = await buffer.claim({ owner: 'w', leaseMs: 60_000 });
    expect(other!.id).toBe(event(2).id);
    await buffer.nack(other!.id, { token: other!.leaseOwner!, reason: 'first try failed' });
    await buffer.nack(other!.id, { by: 'cli:someone', reason: 'again' });
    await buffer.nack(other!.id, { by: 'cli:someone', reason: 'handler said 500' });
    expect((await buffer.get(other!.id))!.status).toBe('dead');
    const pause = {
      ...NOT_PAUSED,
      paused: true,
      reason: 'manual',
      by: 'mcp:ops',
      note: 'looking into refunds',
      since: clock.now(),
    };
    await buffer.setAgentPause(pause);
    // The same pause again (even by another loop, later), and a lift, are not happenings.
    await buffer.setAgentPause(pause);
    await buffer.setAgentPause({ ...pause, by: 'agent:other', since: clock.now() + 1 });
    await buffer.setAgentPause(NOT_PAUSED);

    const log = await buffer.happenings(head0, 10);
    expect(log.map((x) => [x.kind, x.eventId])).toEqual([
      ['held', event(1).id],
      ['dead', event(2).id],
      ['paused', null],
    ]);
    expect(log.map((x) => x.seq)).toEqual([head0 + 1, head0 + 2, head0 + 3]);
    expect(log[2]!.pause).toMatchObject({
      paused: true,
      reason: 'manual',
      note: 'looking into refunds',
    });
    expect(log.every((x) => x.at === clock.now())).toBe(true);
    expect(await buffer.happeningsHead()).toBe(head0 + 3);
    // Resuming after a position gives exactly what follows it.
    expect((await buffer.happenings(head0 + 1, 10)).map((x) => x.kind)).toEqual(['dead', 'paused']);
    expect((await buffer.happenings(head0, 1)).map((x) => x.kind)).toEqual(['held']);

    if (h.reopen) {
      buffer = await h.reopen();
      setBuffer(buffer);
      expect((await buffer.happenings(head0, 10)).map((x) => x.seq)).toEqual(log.map((x) => x.seq));
      expect(await buffer.happeningsHead()).toBe(head0 + 3);
    }

    // Pruned with the events after the window; the head stays, numbers are not reused.
    clock.advance(DEDUP_WINDOW_MS + 1);
    await buffer.prune(clock.now() - DEDUP_WINDOW_MS);
    expect(await buffer.happenings(head0, 10)).toEqual([]);
    expect(await buffer.happeningsHead()).toBe(head0 + 3);
    await buffer.setAgentPause({ ...pause, note: 'again', since: clock.now() });
    expect((await buffer.happenings(head0, 10)).map((x) => x.seq)).toEqual([head0 + 4]);
  });

  it('logs one happening when a lease runs out for the last time (dead by expiry)', async () => {
    const { buffer } = get();
    const head = await buffer.happeningsHead();
    await buffer.append(event(3));
    for (let round = 0; round < 6; round++) {
      const [claimed] = await buffer.claim({ owner: 'w', leaseMs: 1_000 });
      if (!claimed) break;
      clock.advance(10 * 60_000);
      await buffer.recoverExpiredLeases();
      if ((await buffer.get(event(3).id))!.status === 'dead') break;
      clock.advance(10 * 60_000);
    }
    expect((await buffer.get(event(3).id))!.status).toBe('dead');
    const log = await buffer.happenings(head, 10);
    expect(log.map((x) => [x.kind, x.eventId])).toEqual([['dead', event(3).id]]);
    expect(log[0]!.at).toBe(clock.now());
  });
}

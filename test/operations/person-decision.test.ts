/**
 * A person's decision (issue #20.3) is as durable as an approval: the person's call is recorded
 * as the decided call before it is approved, so when the process dies while the handler has it,
 * the agent loop dispatches exactly that call again (approvedCall) — not a new model decision.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { APPROVED_CALL_INTERRUPTED } from '../../src/buffer/transitions.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import type { Sink } from '../../src/dispatch/dispatch.js';
import { approvedCall } from '../../src/operations/approvals.js';
import { decideByPerson, markHandled } from '../../src/operations/person-decision.js';
import { incoming } from '../buffer/contract.js';

const ID = incoming(1).id;

/** A store with one event the model handed to a person (held, no decided call). */
async function askedAPerson(clock: { t: number }) {
  const buffer = new MemoryBuffer({ now: () => clock.t, maxAttempts: 3 });
  await buffer.append(incoming(1));
  const [claim] = await buffer.claim({ owner: 'worker', leaseMs: 60_000 });
  await buffer.hold(ID, claim!.leaseOwner!, 'a person must look: odd', [
    { kind: 'decision', outcome: 'ask_a_person', note: 'odd' },
  ]);
  return buffer;
}

describe('decideByPerson', () => {
  it("leaves the person's call for the agent loop to dispatch again when the process dies mid-dispatch", async () => {
    const clock = { t: 1_790_000_000_000 };
    const buffer = await askedAPerson(clock);
    // The handler never answers before the "crash": the test stops waiting for it.
    let started!: () => void;
    const dispatching = new Promise<void>((resolve) => (started = resolve));
    const hanging: Sink = {
      kind: 'http',
      dispatch: () => {
        started();
        return new Promise(() => {});
      },
    };
    void decideByPerson(
      buffer,
      hanging,
      createCatalog(),
      ID,
      { by: 'console:alice', action: 'accept', fields: { rationale: 'too small to fight' } },
      { leaseMs: 120_000 },
    );
    await dispatching;
    // The process is gone: its renewals stop and the claim expires.
    clock.t += 10 * 120_000;
    expect(await buffer.recoverExpiredLeases()).toBe(1);
    const pending = (await buffer.get(ID))!;
    expect(pending.lastError?.startsWith(APPROVED_CALL_INTERRUPTED)).toBe(true);
    const again = await approvedCall(buffer, pending);
    expect(again?.by).toBe('console:alice');
    expect(again?.call).toMatchObject({
      name: 'handle_dispute',
      input: { action: 'accept', rationale: 'too small to fight', stripe_id: `obj_${ID}` },
    });
  });

  it('refuses an event that no longer waits, changing nothing', async () => {
    const clock = { t: 1_790_000_000_000 };
    const buffer = await askedAPerson(clock);
    await markHandled(buffer, ID, { by: 'cli:bob', note: 'called the customer' });
    const before = (await buffer.history(ID)).length;
    await expect(
      decideByPerson(
        buffer,
        { kind: 'record', dispatch: async () => ({ outcome: 'recorded' }) },
        createCatalog(),
        ID,
        {
          by: 'cli:carol',
          action: 'accept',
          fields: { rationale: 'x' },
        },
      ),
    ).rejects.toThrow(/not awaiting approval/);
    expect(await buffer.history(ID)).toHaveLength(before);
  });
});

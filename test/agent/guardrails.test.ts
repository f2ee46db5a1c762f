import { describe, expect, it } from 'vitest';
import { Guardrails } from '../../src/agent/guardrails.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';

/** The guardrails' bookkeeping with a hand-moved clock (the loop's use is in guardrails.e2e). */
describe('guardrails', () => {
  const start = Date.UTC(2026, 10, 30, 23, 0, 0);

  /** A budget hook's request: reserve a bound, settle with the real usage. */
  async function spend(
    g: Guardrails,
    bound: { input_tokens: number; output_tokens: number },
    actual = bound,
  ): Promise<boolean> {
    const reservation = await g.requestBudget('m')!.reserve(bound);
    if (!reservation) return false;
    await reservation.settle(actual);
    return true;
  }

  it('stops at the daily token or dollar budget and starts again the next UTC day', async () => {
    let now = start;
    const store = new MemoryBuffer({ now: () => now });
    const g = new Guardrails(store.ledger, {
      budget: { daily_tokens: 3000, daily_usd: 1 },
      price: (_model, u) => (u.input_tokens * 3 + u.output_tokens * 15) / 1e6,
      now: () => now,
    });
    const bound = { input_tokens: 5000, output_tokens: 1000 };
    const used = { input_tokens: 1000, output_tokens: 100 };
    expect(await spend(g, bound, used)).toBe(true);
    expect(await spend(g, bound, used)).toBe(true);
    expect(await g.budgetStop()).toBeNull();
    expect(await spend(g, bound, used)).toBe(true);
    const stop = await g.budgetStop();
    expect(stop).toMatchObject({ reason: 'budget', until: Date.UTC(2026, 11, 1) });
    expect(stop?.note).toMatch(/3300 of 3000 tokens/);
    expect(await spend(g, bound, used)).toBe(false);
    now = Date.UTC(2026, 11, 1, 0, 0, 1);
    expect(await g.budgetStop()).toBeNull();
    expect(await spend(g, bound, used)).toBe(true);
  });

  it('grants a request only while settled + reserved spend is below the budget', async () => {
    const store = new MemoryBuffer({ now: () => start });
    const g = new Guardrails(store.ledger, { budget: { daily_tokens: 10_000 }, now: () => start });
    const hook = g.requestBudget('m')!;
    const held = [];
    // Each request holds its bound (4000) until it settles: the third still fits (8000 < 10 000),
    // the fourth does not, though nothing is settled yet.
    for (let i = 0; i < 3; i++)
      held.push(await hook.reserve({ input_tokens: 3000, output_tokens: 1000 }));
    expect(held.every(Boolean)).toBe(true);
    expect(await hook.reserve({ input_tokens: 3000, output_tokens: 1000 })).toBeNull();
    // A stop while reservations fill it, saying so; it lifts once they settle lower.
    expect((await g.budgetStop())?.note).toMatch(
      /0 of 10000 tokens spent .*\(and 12000 tokens reserved by requests in flight or interrupted\)/,
    );
    for (const r of held) await r!.settle({ input_tokens: 900, output_tokens: 100 });
    expect(await g.budgetStop()).toBeNull();
    expect(await hook.reserve({ input_tokens: 3000, output_tokens: 1000 })).not.toBeNull();
  });

  it('stops at the dollar budget when prices are known', async () => {
    const store = new MemoryBuffer({ now: () => start });
    const g = new Guardrails(store.ledger, {
      budget: { daily_usd: 0.01 },
      price: () => 0.004,
      now: () => start,
    });
    const one = { input_tokens: 1, output_tokens: 1 };
    expect(await spend(g, one)).toBe(true);
    expect(await spend(g, one)).toBe(true);
    expect(await g.budgetStop()).toBeNull();
    expect(await spend(g, one)).toBe(true);
    expect((await g.budgetStop())?.note).toMatch(/\$0\.0120 of \$0\.01/);
  });

  it('asks nothing of the store without a budget', () => {
    const g = new Guardrails(new MemoryBuffer().ledger, {});
    expect(g.requestBudget('m')).toBeUndefined();
  });

  it('trips after the threshold, lets one probe through after the pause, and doubles on failure', () => {
    let now = start;
    const g = new Guardrails(new MemoryBuffer().ledger, {
      breaker: { threshold: 3 },
      now: () => now,
    });
    for (let i = 0; i < 2; i++) expect(g.recordFailure()).toBe(false);
    expect(g.breakerGate()).toBe('go');
    expect(g.recordFailure()).toBe(true);
    expect(g.failuresAreOutage()).toBe(true);
    expect(g.breakerGate()).toBe('wait');
    expect(g.breakerStop()?.until).toBe(start + 60_000);
    // An attempt already in flight failing after the trip does not move the pause.
    expect(g.recordFailure()).toBe(false);
    expect(g.breakerStop()?.until).toBe(start + 60_000);
    now += 60_000;
    expect(g.breakerGate()).toBe('probe');
    expect(g.breakerGate()).toBe('wait'); // one probe at a time
    expect(g.recordFailure()).toBe(true);
    expect(g.breakerStop()?.until).toBe(now + 120_000);
    now += 120_000;
    expect(g.breakerGate()).toBe('probe');
    g.recordSuccess();
    expect(g.breakerGate()).toBe('go');
    expect(g.failuresAreOutage()).toBe(false);
  });

  it('caps the pause at the maximum', () => {
    let now = start;
    const g = new Guardrails(new MemoryBuffer().ledger, {
      breaker: { threshold: 1, maxPauseMs: 150_000 },
      now: () => now,
    });
    g.recordFailure();
    for (let i = 0; i < 5; i++) {
      now = g.breakerStop()!.until;
      expect(g.breakerGate()).toBe('probe');
      g.recordFailure();
    }
    expect(g.breakerStop()!.until - now).toBe(150_000);
  });

  it('caps dispatches per tool per rolling hour, counting from the dispatch', async () => {
    let now = start;
    const store = new MemoryBuffer({ now: () => now });
    const g = new Guardrails(store.ledger, {
      limits: { handle_dispute: { per_hour: 2 } },
      now: () => now,
    });
    expect(g.cappedTools()).toEqual([]);
    expect(await g.reserveTool('handle_dispute', 'e1', 60_000)).toEqual({ granted: true });
    await g.confirmTool('handle_dispute', 'e1');
    now += 10_000;
    expect(await g.reserveTool('handle_dispute', 'e2', 60_000)).toEqual({ granted: true });
    await g.confirmTool('handle_dispute', 'e2');
    // A tool without a limit is never refused and never counted.
    expect(await g.reserveTool('log_refund', 'e3', 60_000)).toEqual({ granted: true });
    expect(await g.reserveTool('handle_dispute', 'e4', 60_000)).toEqual({
      granted: false,
      retryInMs: 3_600_000 - 10_000,
    });
    expect(g.cappedTools()).toEqual(['handle_dispute']);
    now = start + 3_600_001;
    expect(g.cappedTools()).toEqual([]);
    expect(await g.reserveTool('handle_dispute', 'e4', 60_000)).toEqual({ granted: true });
    // Released unused: the slot is free again.
    await g.releaseTool('handle_dispute', 'e4');
    expect(await store.ledger.slotsUsed('handle_dispute')).toBe(1);
  });

  it('reads a limit only from the config, never from what every object inherits', () => {
    const g = new Guardrails(new MemoryBuffer().ledger, { limits: {} });
    expect(g.limitOf('toString')).toBeNull();
  });
});

import { describe, expect, it } from 'vitest';
import { Guardrails } from '../../src/agent/guardrails.js';

/** The guardrails' bookkeeping with a hand-moved clock (the loop's use is in guardrails.e2e). */
describe('guardrails', () => {
  const start = Date.UTC(2026, 10, 30, 23, 0, 0);

  it('stops at the daily token or dollar budget and starts again the next UTC day', () => {
    let now = start;
    const g = new Guardrails({
      budget: { daily_tokens: 3000, daily_usd: 1 },
      price: (_model, u) => (u.input_tokens * 3 + u.output_tokens * 15) / 1e6,
      now: () => now,
    });
    g.recordUsage('m', { input_tokens: 1000, output_tokens: 100 });
    g.recordUsage('m', { input_tokens: 1000, output_tokens: 100 });
    expect(g.budgetStop()).toBeNull();
    g.recordUsage('m', { input_tokens: 1000, output_tokens: 100 });
    const stop = g.budgetStop();
    expect(stop).toMatchObject({ reason: 'budget', until: Date.UTC(2026, 11, 1) });
    expect(stop?.note).toMatch(/3300 of 3000 tokens/);
    now = Date.UTC(2026, 11, 1, 0, 0, 1);
    expect(g.budgetStop()).toBeNull();
    expect(g.spent()).toMatchObject({ day: '2026-12-01', tokens: 0 });
  });

  it('stops at the dollar budget when prices are known', () => {
    const g = new Guardrails({ budget: { daily_usd: 0.01 }, price: () => 0.004, now: () => start });
    g.recordUsage('m', { input_tokens: 1, output_tokens: 1 });
    g.recordUsage('m', { input_tokens: 1, output_tokens: 1 });
    expect(g.budgetStop()).toBeNull();
    g.recordUsage('m', { input_tokens: 1, output_tokens: 1 });
    expect(g.budgetStop()?.note).toMatch(/\$0\.0120 of \$0\.01/);
  });

  it('trips after the threshold, lets one probe through after the pause, and doubles on failure', () => {
    let now = start;
    const g = new Guardrails({ breaker: { threshold: 3 }, now: () => now });
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
    const g = new Guardrails({ breaker: { threshold: 1, maxPauseMs: 150_000 }, now: () => now });
    g.recordFailure();
    for (let i = 0; i < 5; i++) {
      now = g.breakerStop()!.until;
      expect(g.breakerGate()).toBe('probe');
      g.recordFailure();
    }
    expect(g.breakerStop()!.until - now).toBe(150_000);
  });

  it('caps dispatches per tool per rolling hour', () => {
    let now = start;
    const g = new Guardrails({ limits: { handle_dispute: { per_hour: 2 } }, now: () => now });
    expect(g.cappedTools()).toEqual([]);
    g.recordDispatch('handle_dispute');
    now += 10_000;
    g.recordDispatch('handle_dispute');
    g.recordDispatch('log_refund');
    expect(g.allowDispatch('handle_dispute')).toBe(false);
    expect(g.allowDispatch('log_refund')).toBe(true);
    expect(g.cappedTools()).toEqual(['handle_dispute']);
    expect(g.waitForTool('handle_dispute')).toBe(3_600_000 - 10_000);
    now = start + 3_600_001;
    expect(g.cappedTools()).toEqual([]);
  });
});

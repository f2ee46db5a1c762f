import { describe, expect, it } from 'vitest';
import type { RequestReservation } from '../../src/agent/decide.js';
import { CostCap } from '../../src/rehearse/cost-cap.js';

/** A dollar a token, so a usage's cost is its token count. */
const DOLLAR_A_TOKEN = { input_per_mtok: 1e6, output_per_mtok: 1e6 };
const usage = (input_tokens: number, output_tokens = 0) => ({ input_tokens, output_tokens });

/** Whether a promise has settled by the time queued callbacks have run. */
async function settledYet(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('CostCap (rehearse --max-cost-usd)', () => {
  it('grants while settled spend plus outstanding reservations is under the cap', async () => {
    const cap = new CostCap(10);
    const budget = cap.budgetFor(DOLLAR_A_TOKEN);
    const a = await budget.reserve(usage(4, 2)); // outstanding 6
    const b = await budget.reserve(usage(3)); // 6 < 10: granted, outstanding 9
    expect(a).not.toBeNull();
    expect(b).not.toBeNull();
    // 9 < 10: granted even though its bound passes the cap (by at most one bound).
    const c = await budget.reserve(usage(5));
    expect(c).not.toBeNull();
    // 14 >= 10 with reservations outstanding: waits, neither granted nor refused.
    const waiting = budget.reserve(usage(1));
    expect(await settledYet(waiting)).toBe(false);
    // Requests cost less than their bounds: a settles at 1, outstanding 8 + settled 1 = 9 < 10.
    await a!.settle(usage(1));
    const d = await waiting;
    expect(d).not.toBeNull();
    expect(cap.spentUsd).toBe(1);
    await b!.settle(usage(3));
    await c!.settle(usage(5));
    await d!.settle(usage(1));
    // Settled 10 >= cap: refused at once, nothing outstanding could bring it back.
    expect(await budget.reserve(usage(1))).toBeNull();
    expect(cap.spentUsd).toBe(10);
  });

  it('refuses the waiting reservations once settled spend reaches the cap', async () => {
    const cap = new CostCap(5);
    const budget = cap.budgetFor(DOLLAR_A_TOKEN);
    const a = (await budget.reserve(usage(8)))!;
    const waiting = [budget.reserve(usage(1)), budget.reserve(usage(1))];
    expect(await settledYet(waiting[0]!)).toBe(false);
    await a.settle(usage(6));
    expect(await Promise.all(waiting)).toEqual([null, null]);
    expect(cap.spentUsd).toBe(6);
  });

  it('an unbilled request gives its reservation back; a second settle changes nothing', async () => {
    const cap = new CostCap(5);
    const budget = cap.budgetFor(DOLLAR_A_TOKEN);
    const a = (await budget.reserve(usage(7)))!;
    const waiting = budget.reserve(usage(2));
    await a.settle(usage(0));
    await a.settle(usage(100));
    expect(await waiting).not.toBeNull();
    expect(cap.spentUsd).toBe(0);
  });

  it('grants in turn: a reservation waiting longer goes first', async () => {
    const cap = new CostCap(10);
    const budget = cap.budgetFor(DOLLAR_A_TOKEN);
    const a = (await budget.reserve(usage(10)))!;
    const first = budget.reserve(usage(6));
    const second = budget.reserve(usage(1));
    // Settled 5, nothing outstanding: first is granted, and with its 6 outstanding (11) second waits.
    await a.settle(usage(5));
    const granted = (await first)!;
    expect(granted).not.toBeNull();
    expect(await settledYet(second)).toBe(false);
    await granted.settle(usage(6));
    expect(await second).toBeNull();
  });

  it('close() refuses what waits and what comes', async () => {
    const cap = new CostCap(5);
    const budget = cap.budgetFor(DOLLAR_A_TOKEN);
    await budget.reserve(usage(6));
    const waiting = budget.reserve(usage(1));
    cap.close();
    expect(await waiting).toBeNull();
    expect(await budget.reserve(usage(1))).toBeNull();
  });

  it('keeps spend within the cap plus one bound under many concurrent requesters at two prices', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      let x = seed;
      const random = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const cap = new CostCap(0.05);
      const prices = [
        cap.budgetFor({ input_per_mtok: 2, output_per_mtok: 10 }),
        cap.budgetFor({ input_per_mtok: 0.1, output_per_mtok: 0.5 }),
      ];
      let maxBound = 0;
      const worker = async (i: number) => {
        const budget = prices[i % 2]!;
        for (;;) {
          const bound = usage(Math.floor(1000 + random() * 9000), 1024);
          maxBound = Math.max(maxBound, (bound.input_tokens * 2 + 1024 * 10) / 1e6);
          const r: RequestReservation | null = await budget.reserve(bound);
          if (!r) return;
          await new Promise((resolve) => setTimeout(resolve, random() * 3));
          // Cheap at first, then up to the whole bound.
          const share = random();
          await r.settle(usage(Math.floor(bound.input_tokens * share), Math.floor(1024 * share)));
        }
      };
      await Promise.all(Array.from({ length: 64 }, (_, i) => worker(i)));
      expect(cap.spentUsd).toBeGreaterThanOrEqual(0.05);
      expect(cap.spentUsd).toBeLessThanOrEqual(0.05 + maxBound);
    }
  });
});

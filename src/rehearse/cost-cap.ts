import type { RequestBudget, RequestReservation, RequestUsage } from '../agent/decide.js';
import { costOf, type ModelPrice } from '../agent/pricing.js';

interface Waiting {
  cost: number;
  resolve(granted: boolean): void;
}

/**
 * `rehearse --max-cost-usd` as a hard cap, shared by every decision of a run (both policies' with
 * `--compare`). Every Messages API request reserves the cost of its upper bound (`decide`'s
 * `requestBound`, at its policy's price) before it is sent, and settles with what it really cost.
 * A reservation is granted only while the settled spend plus the outstanding reservations is under
 * the cap. Since no request costs more than its bound, the spend passes the cap by less than the
 * real cost of the last request granted (the others outstanding then were within the cap at their
 * bounds), so by at most one request's bound, whatever the concurrency.
 *
 * A reservation that does not fit while others are outstanding waits for them to settle instead
 * of being refused: requests cost far less than their bounds, so refusing then would end the run
 * with most of the money unspent. Once the settled spend alone has reached the cap nothing can
 * fit again, and every reservation, waiting or new, is refused.
 */
export class CostCap {
  #settled = 0;
  #outstanding = 0;
  #reservations = 0;
  #closed = false;
  readonly #waiting: Waiting[] = [];

  constructor(readonly capUsd: number) {}

  /** USD settled so far: what the requests made cost (those still in flight not included). */
  get spentUsd(): number {
    return this.#settled;
  }

  /** The budget of one policy's decisions: its requests priced at its model's price. */
  budgetFor(price: ModelPrice): RequestBudget {
    return { reserve: (bound) => this.#reserve(bound, price) };
  }

  /** Refuses every reservation from now on, waiting ones included (the run was interrupted). */
  close(): void {
    this.#closed = true;
    this.#drain();
  }

  async #reserve(bound: RequestUsage, price: ModelPrice): Promise<RequestReservation | null> {
    const cost = costOf(bound, price);
    const granted = await new Promise<boolean>((resolve) => {
      // In turn: a reservation never overtakes one that is already waiting.
      this.#waiting.push({ cost, resolve });
      this.#drain();
    });
    if (!granted) return null;
    let settled = false;
    return {
      settle: async (actual) => {
        if (settled) return;
        settled = true;
        this.#reservations -= 1;
        // Back to exactly 0 with nothing outstanding, so float leftovers cannot hold a request.
        this.#outstanding = this.#reservations === 0 ? 0 : this.#outstanding - cost;
        this.#settled += costOf(actual, price);
        this.#drain();
      },
    };
  }

  #drain(): void {
    while (this.#waiting.length > 0) {
      if (this.#closed || this.#settled >= this.capUsd) {
        for (const w of this.#waiting.splice(0)) w.resolve(false);
        return;
      }
      // Settled spend is under the cap, so a reservation that does not fit now is waiting for
      // outstanding ones (there must be some) to settle.
      if (this.#settled + this.#outstanding >= this.capUsd) return;
      const next = this.#waiting.shift()!;
      this.#outstanding += next.cost;
      this.#reservations += 1;
      next.resolve(true);
    }
  }
}

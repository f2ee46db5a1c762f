/**
 * What stops a live agent loop when something goes wrong (config `budget`, `limits`; the breaker):
 * plain bookkeeping with an injectable clock, so its rules are tested without waiting. The loop
 * asks it before claiming and before dispatching, and tells it what each decision cost and how
 * each attempt ended.
 */

import crypto from 'node:crypto';
import { utcDay, type AgentLedger, type SlotGrant } from '../buffer/ledger.js';

export interface BudgetSettings {
  /** Spend per UTC day, in US dollars, at the model's list prices (`pricing` overrides). */
  daily_usd?: number;
  /** Input + output tokens per UTC day. */
  daily_tokens?: number;
}

export interface BreakerSettings {
  /** Consecutive dispatch failures or model errors that trip it. */
  threshold: number;
  /** First pause; doubles each time a probe fails, up to `maxPauseMs`. */
  minPauseMs: number;
  maxPauseMs: number;
}

export const DEFAULT_BREAKER: BreakerSettings = {
  threshold: 5,
  minPauseMs: 60_000,
  maxPauseMs: 30 * 60_000,
};

export interface GuardrailSettings {
  budget?: BudgetSettings;
  /** Dispatches per tool per rolling hour. */
  limits?: Record<string, { per_hour: number }>;
  breaker?: Partial<BreakerSettings>;
  /** US dollars for a request's usage, or null when the model's price is unknown. */
  price?: (model: string, usage: RequestUsage) => number | null;
  now?: () => number;
}

/** Usage of one Messages API request, or an upper bound of it (decide.ts's RequestUsage). */
export interface RequestUsage {
  input_tokens: number;
  output_tokens: number;
}

/** A reservation of one request's bound, settled with its real usage (decide.ts). */
export interface RequestReservation {
  settle(actual: RequestUsage): Promise<void>;
}

export interface Stop {
  reason: 'budget' | 'breaker';
  /** In words, for logs, get_queue_status and the console. */
  note: string;
  /** When it lifts by itself (ms). */
  until: number;
}

function nextUtcDay(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

/**
 * The budget and the per-tool limits are counted in the store's ledger (buffer/ledger.ts), shared
 * by every loop on the store and kept across restarts; the breaker is this process's own (it
 * watches this process's handler calls).
 */
export class Guardrails {
  private readonly now: () => number;
  private readonly breaker: BreakerSettings;
  private consecutiveFailures = 0;
  /** While open: when the next probe may go. */
  private openUntil = 0;
  private pauseMs: number;
  /** A probe is in flight: other workers wait for its outcome. */
  private probing = false;
  /** Tools this process found at their cap, and until when (so their events are not claimed). */
  private readonly cappedUntil = new Map<string, number>();

  constructor(
    private readonly ledger: AgentLedger,
    private readonly settings: GuardrailSettings = {},
  ) {
    this.now = settings.now ?? Date.now;
    this.breaker = { ...DEFAULT_BREAKER, ...settings.breaker };
    this.pauseMs = this.breaker.minPauseMs;
  }

  get hasBudget(): boolean {
    const b = this.settings.budget;
    return b?.daily_tokens !== undefined || b?.daily_usd !== undefined;
  }

  /** Dollars for a usage at `model`'s price; 0 when the price is unknown (tokens still count). */
  private usd(model: string, usage: RequestUsage): number {
    return this.settings.price?.(model, usage) ?? 0;
  }

  /**
   * The hook decide() asks before every Messages API request (undefined without a budget): it
   * reserves the request's upper bound in the store, granted only while the day's settled and
   * reserved spend is below the budget, and settles it with the real usage. So the day's spend
   * never passes the budget by more than one request's bound, whatever the concurrency, the
   * number of processes or restarts (a reservation whose process died keeps counting its bound).
   */
  requestBudget(
    model: string,
  ): { reserve(bound: RequestUsage): Promise<RequestReservation | null> } | undefined {
    if (!this.hasBudget) return undefined;
    const budget = this.settings.budget!;
    return {
      reserve: async (bound) => {
        const day = utcDay(this.now());
        const key = crypto.randomUUID();
        const grant = await this.ledger.reserveSpend({
          day,
          key,
          tokens: bound.input_tokens + bound.output_tokens,
          usd: this.usd(model, bound),
          maxTokens: budget.daily_tokens ?? null,
          maxUsd: budget.daily_usd ?? null,
        });
        if (!grant.granted) return null;
        return {
          settle: (actual) =>
            this.ledger.settleSpend(day, key, {
              tokens: actual.input_tokens + actual.output_tokens,
              usd: this.usd(model, actual),
            }),
        };
      },
    };
  }

  /**
   * The budget's stop, or null while the day's spend (settled, plus what requests hold reserved)
   * is below it. Reservations count: a request could not be granted now, and one whose process
   * died (`kill -9` mid-request) is never settled, so it counts at its bound for the rest of the
   * day. A stop that only reservations make lifts as soon as they settle lower.
   */
  async budgetStop(): Promise<Stop | null> {
    if (!this.hasBudget) return null;
    const budget = this.settings.budget!;
    const now = this.now();
    const spent = await this.ledger.spend(utcDay(now));
    const until = nextUtcDay(now);
    const held = (amount: string) =>
      ` (and ${amount} reserved by requests in flight or interrupted)`;
    const tokens = budget.daily_tokens;
    if (tokens !== undefined && spent.tokens + spent.reservedTokens >= tokens) {
      return {
        reason: 'budget',
        note:
          `daily token budget reached: ${spent.tokens} of ${tokens} tokens spent on ${spent.day} (UTC)` +
          (spent.reservedTokens > 0 ? held(`${spent.reservedTokens} tokens`) : ''),
        until,
      };
    }
    const usd = budget.daily_usd;
    if (usd !== undefined && spent.usd + spent.reservedUsd >= usd) {
      return {
        reason: 'budget',
        note:
          `daily budget reached: $${spent.usd.toFixed(4)} of $${usd.toFixed(2)} spent on ${spent.day} (UTC)` +
          (spent.reservedUsd > 0 ? held(`$${spent.reservedUsd.toFixed(4)}`) : ''),
        until,
      };
    }
    return null;
  }

  /**
   * Whether a worker may claim now as far as the breaker goes: `go`, `probe` (the breaker is
   * half-open: this worker's event decides whether it closes), or `wait` (open, or a probe is out).
   */
  breakerGate(): 'go' | 'probe' | 'wait' {
    if (this.consecutiveFailures < this.breaker.threshold) return 'go';
    if (this.probing || this.now() < this.openUntil) return 'wait';
    this.probing = true;
    return 'probe';
  }

  /** The breaker's stop while it is open, or null. */
  breakerStop(): Stop | null {
    if (this.consecutiveFailures < this.breaker.threshold) return null;
    return {
      reason: 'breaker',
      note: `${this.consecutiveFailures} consecutive dispatch failures or model errors: paused, next try at ${new Date(this.openUntil).toISOString()}`,
      until: this.openUntil,
    };
  }

  /**
   * While the breaker is open or probing, a failure is the outage's, not the event's: the loop
   * gives the event back without counting an attempt, so an outage never kills events.
   */
  failuresAreOutage(): boolean {
    return this.consecutiveFailures >= this.breaker.threshold;
  }

  /** An attempt that reached its end (dispatched, or no action, or held). */
  recordSuccess(): void {
    this.consecutiveFailures = 0;
    this.probing = false;
    this.pauseMs = this.breaker.minPauseMs;
    this.openUntil = 0;
  }

  /** A dispatch failure or model error. Returns true when this one tripped (or re-opened) it. */
  recordFailure(): boolean {
    const wasProbing = this.probing;
    this.probing = false;
    this.consecutiveFailures += 1;
    if (this.consecutiveFailures < this.breaker.threshold) return false;
    if (wasProbing) this.pauseMs = Math.min(this.pauseMs * 2, this.breaker.maxPauseMs);
    else if (this.consecutiveFailures > this.breaker.threshold && this.openUntil > 0) {
      // Failures of attempts that were already in flight when it tripped: it stays as it is.
      return false;
    }
    this.openUntil = this.now() + this.pauseMs;
    return true;
  }

  /** A probe that ended neither way (released on shutdown, claim lost): let another go. */
  abandonProbe(): void {
    this.probing = false;
  }

  /** The per-hour limit of `tool`, or null. */
  limitOf(tool: string): number | null {
    const limits = this.settings.limits;
    if (!limits || !Object.hasOwn(limits, tool)) return null;
    return limits[tool]!.per_hour;
  }

  /**
   * Tools this process last found at their cap: their events are not claimed until the window
   * should have room (a hint that saves claims; the reservation is the guarantee).
   */
  cappedTools(): string[] {
    const now = this.now();
    const capped: string[] = [];
    for (const [tool, until] of this.cappedUntil) {
      if (until > now) capped.push(tool);
      else this.cappedUntil.delete(tool);
    }
    return capped;
  }

  /**
   * Reserves one of `tool`'s per-hour slots for the event before it is decided (no decision is
   * spent on what could not be dispatched). Granted without a limit. The slot counts until
   * `holdMs` from now until it is confirmed (the call goes to the handler) or released.
   */
  async reserveTool(tool: string, eventId: string, holdMs: number): Promise<SlotGrant> {
    const limit = this.limitOf(tool);
    if (limit === null) return { granted: true };
    const grant = await this.ledger.reserveSlot(tool, eventId, limit, holdMs);
    if (!grant.granted) this.cappedUntil.set(tool, this.now() + grant.retryInMs);
    return grant;
  }

  /** The reserved slot is used now: the call goes to the handler (it counts from this moment). */
  async confirmTool(tool: string, eventId: string): Promise<void> {
    if (this.limitOf(tool) === null) return;
    await this.ledger.confirmSlot(tool, eventId);
  }

  /** Nothing was dispatched: the slot is free for another event. */
  async releaseTool(tool: string, eventId: string): Promise<void> {
    if (this.limitOf(tool) === null) return;
    this.cappedUntil.delete(tool);
    await this.ledger.releaseSlot(tool, eventId);
  }
}

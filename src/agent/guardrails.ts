/**
 * What stops a live agent loop when something goes wrong (config `budget`, `limits`; the breaker):
 * plain bookkeeping with an injectable clock, so its rules are tested without waiting. The loop
 * asks it before claiming and before dispatching, and tells it what each decision cost and how
 * each attempt ended.
 */

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
  /** US dollars for a decision's usage, or null when the model's price is unknown. */
  price?: (model: string, usage: { input_tokens: number; output_tokens: number }) => number | null;
  now?: () => number;
}

export interface Stop {
  reason: 'budget' | 'breaker';
  /** In words, for logs, get_queue_status and the console. */
  note: string;
  /** When it lifts by itself (ms). */
  until: number;
}

const HOUR = 3_600_000;

function nextUtcDay(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

export class Guardrails {
  private readonly now: () => number;
  private readonly breaker: BreakerSettings;
  private day = '';
  private spentTokens = 0;
  private spentUsd = 0;
  private unpriced = false;
  private consecutiveFailures = 0;
  /** While open: when the next probe may go. */
  private openUntil = 0;
  private pauseMs: number;
  /** A probe is in flight: other workers wait for its outcome. */
  private probing = false;
  private readonly dispatched = new Map<string, number[]>();

  constructor(private readonly settings: GuardrailSettings = {}) {
    this.now = settings.now ?? Date.now;
    this.breaker = { ...DEFAULT_BREAKER, ...settings.breaker };
    this.pauseMs = this.breaker.minPauseMs;
  }

  /** Counts a decision's tokens (and their price) against today's budget. */
  recordUsage(model: string, usage: { input_tokens: number; output_tokens: number }): void {
    this.rollDay();
    this.spentTokens += usage.input_tokens + usage.output_tokens;
    const usd = this.settings.price?.(model, usage) ?? null;
    if (usd === null) this.unpriced = true;
    else this.spentUsd += usd;
  }

  spent(): { day: string; tokens: number; usd: number; unpriced: boolean } {
    this.rollDay();
    return { day: this.day, tokens: this.spentTokens, usd: this.spentUsd, unpriced: this.unpriced };
  }

  /** The budget's stop, or null while today's spend is within it. */
  budgetStop(): Stop | null {
    const budget = this.settings.budget;
    if (!budget) return null;
    this.rollDay();
    const until = nextUtcDay(this.now());
    if (budget.daily_tokens !== undefined && this.spentTokens >= budget.daily_tokens) {
      return {
        reason: 'budget',
        note: `daily token budget spent: ${this.spentTokens} of ${budget.daily_tokens} tokens on ${this.day} (UTC)`,
        until,
      };
    }
    if (budget.daily_usd !== undefined && this.spentUsd >= budget.daily_usd) {
      return {
        reason: 'budget',
        note: `daily budget spent: $${this.spentUsd.toFixed(4)} of $${budget.daily_usd} on ${this.day} (UTC)`,
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

  /** Tools at their per-hour cap now: their events are not claimed until the window frees. */
  cappedTools(): string[] {
    const limits = this.settings.limits ?? {};
    return Object.keys(limits).filter((tool) => !this.allowDispatch(tool));
  }

  allowDispatch(tool: string): boolean {
    const limit = this.settings.limits?.[tool];
    if (!limit) return true;
    return this.recent(tool).length < limit.per_hour;
  }

  /** How long until `tool` may dispatch again (0 when it may now). */
  waitForTool(tool: string): number {
    const limit = this.settings.limits?.[tool];
    if (!limit) return 0;
    const recent = this.recent(tool);
    if (recent.length < limit.per_hour) return 0;
    return Math.max(0, recent[recent.length - limit.per_hour]! + HOUR - this.now());
  }

  recordDispatch(tool: string): void {
    if (!this.settings.limits?.[tool]) return;
    this.recent(tool).push(this.now());
  }

  private recent(tool: string): number[] {
    const cutoff = this.now() - HOUR;
    const times = (this.dispatched.get(tool) ?? []).filter((t) => t > cutoff);
    this.dispatched.set(tool, times);
    return times;
  }

  private rollDay(): void {
    const today = utcDay(this.now());
    if (today === this.day) return;
    this.day = today;
    this.spentTokens = 0;
    this.spentUsd = 0;
    this.unpriced = false;
  }
}

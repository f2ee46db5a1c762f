/**
 * The agent's guardrails, counted in the store (`EventBuffer.ledger`): the day's model spend, the
 * per-tool dispatch slots of the rolling hour, and which agent loops run on the store. Counting
 * here, not in a process, is what makes a budget or a per-hour limit a guarantee: every worker,
 * every process and every instance on the store asks the same ledger, each check-and-count is one
 * atomic step of the store (a transaction on SQLite's writer thread, a Lua script on Redis), and a
 * restart — even after `kill -9` — finds what was spent and reserved before it.
 *
 * Both ledgers reserve before acting and settle after: a reservation is granted only while what is
 * already counted is below the limit, so the overshoot is bounded by one reservation, whatever the
 * concurrency. A reservation whose holder died is never settled and keeps counting (its day, its
 * hour): a crash can only make the guardrail stricter, never looser. docs/AGENT.md states the
 * bounds.
 */

/** One model request's spend (or an upper bound of it). */
export interface Spend {
  tokens: number;
  usd: number;
}

/** A day's spend in the ledger: settled (what requests really used) and still reserved. */
export interface SpendTotals {
  day: string;
  /** Settled: the real usage of finished requests. */
  tokens: number;
  usd: number;
  /** Held by requests not settled yet (in flight, or whose process died). */
  reservedTokens: number;
  reservedUsd: number;
}

export interface SpendRequest extends Spend {
  /** The UTC day (`YYYY-MM-DD`) the spend counts against. */
  day: string;
  /** Unique per reservation; the key to settle it with. */
  key: string;
  /** Granted only while settled + reserved is below each limit given (null: no limit). */
  maxTokens: number | null;
  maxUsd: number | null;
}

export type SpendGrant = { granted: boolean; totals: SpendTotals };

export type SlotGrant = { granted: true } | { granted: false; retryInMs: number };

/** One agent loop on the store, as it last reported itself. */
export interface AgentInstance {
  /** The loop's owner name (`host:pid:nonce`). */
  id: string;
  host: string;
  pid: number;
  /** `running`, or `paused` with its own reason (the breaker is per process). */
  state: 'running' | 'paused';
  reason: string | null;
  note: string | null;
  /** When it started, when the state began, when a pause lifts by itself (ms). */
  started: number;
  since: number;
  until: number | null;
  /** Its last heartbeat (ms): a loop that stopped reporting is shown as gone. */
  seen: number;
}

export interface AgentLedger {
  /**
   * Reserves `tokens` and `usd` of `day` if settled + reserved is below every limit; atomic
   * across processes. Returns the totals as they stood before the reservation.
   */
  reserveSpend(request: SpendRequest): Promise<SpendGrant>;
  /** Replaces reservation `key` of `day` by what the request really used (once). */
  settleSpend(day: string, key: string, actual: Spend): Promise<void>;
  spend(day: string): Promise<SpendTotals>;
  /**
   * Takes one of `perHour` slots of `tool` in the rolling hour for `key` (an event id), counted
   * as used until `holdMs` from now unless confirmed or released. A key that holds a slot of the
   * tool already keeps it. Refused with the wait until a slot frees.
   */
  reserveSlot(tool: string, key: string, perHour: number, holdMs: number): Promise<SlotGrant>;
  /** The slot is used now (the call goes to the handler): it counts for the hour from now. */
  confirmSlot(tool: string, key: string): Promise<void>;
  /** Gives back a slot that was not used (no dispatch followed). A confirmed slot stays. */
  releaseSlot(tool: string, key: string): Promise<void>;
  /** Slots of `tool` counted in the rolling hour now. */
  slotsUsed(tool: string): Promise<number>;
  /** Records this loop's state (and heartbeat). */
  reportInstance(instance: AgentInstance): Promise<void>;
  /** Removes a loop that stopped. */
  removeInstance(id: string): Promise<void>;
  /** The loops that reported within `freshMs` (older records are dropped). */
  instances(freshMs: number): Promise<AgentInstance[]>;
  /**
   * True for exactly one caller per `key` among every process on the store until `ttlMs` has
   * passed (then the key is forgotten and may be taken again): the "only one instance does this"
   * step for work every instance would otherwise repeat, such as a notification several
   * instances' timers come to at once (operations/notify). Atomic, like every ledger check.
   */
  once(key: string, ttlMs: number): Promise<boolean>;
}

export const HOUR_MS = 3_600_000;

/** How often a loop reports itself (its heartbeat); one not heard from for three is gone. */
export const INSTANCE_HEARTBEAT_MS = 5_000;
export const INSTANCE_FRESH_MS = 3 * INSTANCE_HEARTBEAT_MS;

/** How long spend of a past day is kept (for status and tests); older days are dropped. */
export const SPEND_DAYS_KEPT = 7;

/** The UTC day of `ms`, as the ledger keys it. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The day `SPEND_DAYS_KEPT` days before `day`: anything older is dropped. */
export function oldestDayKept(day: string): string {
  const t = Date.parse(`${day}T00:00:00Z`) - SPEND_DAYS_KEPT * 86_400_000;
  return utcDay(t);
}

/** The grant rule every store restates: below each limit given, counting what is reserved. */
export function spendAllowed(
  totals: SpendTotals,
  maxTokens: number | null,
  maxUsd: number | null,
): boolean {
  if (maxTokens !== null && totals.tokens + totals.reservedTokens >= maxTokens) return false;
  if (maxUsd !== null && totals.usd + totals.reservedUsd >= maxUsd) return false;
  return true;
}

/**
 * The slot rule: with `times` the tool's slots of the hour (each until when it counts, ascending,
 * the expired ones dropped), a new one fits while fewer than `perHour` count; else it waits until
 * enough of the oldest have left the hour.
 */
export function slotWait(times: readonly number[], perHour: number, now: number): number {
  if (times.length < perHour) return 0;
  const freeing = times[times.length - perHour]!;
  return Math.max(1, freeing + HOUR_MS - now);
}

export function emptySpend(day: string): SpendTotals {
  return { day, tokens: 0, usd: 0, reservedTokens: 0, reservedUsd: 0 };
}

/** The ledger of the memory store: one process, so a map is atomic. */
export class MemoryLedger implements AgentLedger {
  private readonly days = new Map<string, SpendTotals>();
  private readonly reserved = new Map<string, Spend & { day: string }>();
  /** tool → key → {at (counts until at + hour), confirmed} */
  private readonly slots = new Map<string, Map<string, { at: number; confirmed: boolean }>>();
  private readonly agents = new Map<string, AgentInstance>();
  /** once(): key → until (ms). Expired keys are dropped as others are taken. */
  private readonly onceKeys = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async reserveSpend(request: SpendRequest): Promise<SpendGrant> {
    const totals = { ...(this.days.get(request.day) ?? emptySpend(request.day)) };
    if (!spendAllowed(totals, request.maxTokens, request.maxUsd)) {
      return { granted: false, totals };
    }
    this.days.set(request.day, {
      ...totals,
      reservedTokens: totals.reservedTokens + request.tokens,
      reservedUsd: totals.reservedUsd + request.usd,
    });
    this.reserved.set(`${request.day}\n${request.key}`, {
      day: request.day,
      tokens: request.tokens,
      usd: request.usd,
    });
    return { granted: true, totals };
  }

  async settleSpend(day: string, key: string, actual: Spend): Promise<void> {
    const id = `${day}\n${key}`;
    const held = this.reserved.get(id);
    const totals = this.days.get(day) ?? emptySpend(day);
    this.reserved.delete(id);
    this.days.set(day, {
      ...totals,
      tokens: totals.tokens + actual.tokens,
      usd: totals.usd + actual.usd,
      reservedTokens: totals.reservedTokens - (held?.tokens ?? 0),
      reservedUsd: totals.reservedUsd - (held?.usd ?? 0),
    });
  }

  async spend(day: string): Promise<SpendTotals> {
    return { ...(this.days.get(day) ?? emptySpend(day)) };
  }

  private slotsOf(tool: string): Map<string, { at: number; confirmed: boolean }> {
    let slots = this.slots.get(tool);
    if (!slots) this.slots.set(tool, (slots = new Map()));
    const cutoff = this.now() - HOUR_MS;
    for (const [key, slot] of slots) if (slot.at <= cutoff) slots.delete(key);
    return slots;
  }

  async reserveSlot(
    tool: string,
    key: string,
    perHour: number,
    holdMs: number,
  ): Promise<SlotGrant> {
    const slots = this.slotsOf(tool);
    if (slots.has(key)) return { granted: true };
    const now = this.now();
    const times = [...slots.values()].map((s) => s.at).sort((a, b) => a - b);
    const wait = slotWait(times, perHour, now);
    if (wait > 0) return { granted: false, retryInMs: wait };
    slots.set(key, { at: now + holdMs, confirmed: false });
    return { granted: true };
  }

  async confirmSlot(tool: string, key: string): Promise<void> {
    this.slotsOf(tool).set(key, { at: this.now(), confirmed: true });
  }

  async releaseSlot(tool: string, key: string): Promise<void> {
    const slots = this.slotsOf(tool);
    if (slots.get(key)?.confirmed === false) slots.delete(key);
  }

  async slotsUsed(tool: string): Promise<number> {
    return this.slotsOf(tool).size;
  }

  async reportInstance(instance: AgentInstance): Promise<void> {
    this.agents.set(instance.id, { ...instance });
  }

  async removeInstance(id: string): Promise<void> {
    this.agents.delete(id);
  }

  async instances(freshMs: number): Promise<AgentInstance[]> {
    const cutoff = this.now() - freshMs;
    return [...this.agents.values()].filter((a) => a.seen >= cutoff).map((a) => ({ ...a }));
  }

  async once(key: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    for (const [k, until] of this.onceKeys) if (until <= now) this.onceKeys.delete(k);
    if (this.onceKeys.has(key)) return false;
    this.onceKeys.set(key, now + ttlMs);
    return true;
  }
}

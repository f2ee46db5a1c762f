import os from 'node:os';
import { NOT_PAUSED, type AgentPause, type EventBuffer } from '../buffer/buffer.js';
import { INSTANCE_HEARTBEAT_MS, type AgentInstance } from '../buffer/ledger.js';
import type { Logger } from '../logger.js';
import type { Guardrails, Stop } from './guardrails.js';

/** How often a running loop re-reads the stored pause (and the day's spend) when nothing changes. */
export const PAUSE_CHECK_MS = 1_000;

const PAUSE_REASONS = ['manual', 'budget', 'breaker'] as const;

export interface PauseKeeperOptions {
  buffer: EventBuffer;
  guard: Guardrails;
  logger: Logger;
  /** The loop's owner name (`host:pid:nonce`): its id in the store's list of loops. */
  owner: string;
  /** `stripe_events_agent_paused{reason}`: 1 for the reason this process's loop waits now. */
  gauge?: { set(labels: { reason: string }, value: number): void };
  /**
   * Called when this loop's own circuit breaker opens (the notifier tells people). Store-wide
   * pauses (manual, budget) are not announced here: every process sees those in the store.
   */
  onBreakerOpen?: (stop: { note: string | null; until: number | null }) => void;
}

/**
 * Whether the loop may claim, and what everyone is told about it. Two kinds of pause:
 *
 * - **store-wide**, kept in the store (`agentPause()`): a person's (`manual`), and the daily
 *   budget's (`budget`: the spend is counted store-wide, so when it is spent it is spent for every
 *   loop). Every loop on the store honours them, and every process reports them.
 * - **per process**: the circuit breaker watches this process's handler calls and model errors,
 *   so it pauses this loop only. It is reported in this process's `/metrics` and logs, and in the
 *   loop's own record in the store (`ledger.instances()`), which get_queue_status and the console
 *   list with the host, pid, since when and why.
 */
export class PauseKeeper {
  /** The stored pause as last read, and when. */
  private pause: AgentPause = { ...NOT_PAUSED };
  private pauseReadAt = 0;
  private pauseRead: Promise<void> | null = null;
  /** The budget's stop as last read from the ledger (with the pause). */
  private budget: Stop | null = null;
  /** This loop's breaker stop while it is open. */
  private breaker: Stop | null = null;
  /** What this process last said (logs, gauge, its record): said again only when it changes. */
  private shown = '';
  private readonly started = Date.now();
  private since = Date.now();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly o: PauseKeeperOptions) {}

  /** The store-wide pause as last read. */
  stored(): AgentPause {
    return { ...this.pause };
  }

  /** Read the stored pause (and the spend) again before the next claim. */
  invalidate(): void {
    this.pauseReadAt = 0;
  }

  /**
   * At start: a budget pause is lifted when this loop's budget has room (a restart with a larger
   * budget, or the day changed); a breaker pause stored by an older version is lifted (the
   * breaker is per process now). Then report this loop and keep reporting it.
   */
  async start(): Promise<void> {
    this.show();
    this.heartbeat = setInterval(() => void this.report(), INSTANCE_HEARTBEAT_MS);
    this.heartbeat.unref();
    try {
      const pause = await this.o.buffer.agentPause();
      this.pause = pause;
      this.pauseReadAt = Date.now();
      const lift =
        pause.paused &&
        (pause.reason === 'breaker' ||
          (pause.reason === 'budget' && (await this.o.guard.budgetStop()) === null));
      if (lift) await this.store(null);
    } catch {
      // The store is down: claims fail and say so; the pause is read again on the next gate.
    }
    this.show();
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.o.buffer.ledger.removeInstance(this.o.owner).catch(() => {});
  }

  /**
   * Whether a worker may claim: `wait` while paused (store-wide, or this loop's breaker), `probe`
   * when the breaker lets one event through to test whether the outage is over, `go` otherwise.
   */
  async gate(): Promise<'go' | 'probe' | 'wait'> {
    await this.refresh();
    const now = Date.now();
    const p = this.pause;
    // The budget is counted store-wide: its pause is every loop's, set by whichever loop finds
    // the day's spend at the budget, and lifted by whichever finds room again (reservations that
    // settled lower, the next UTC day, a restart with a larger budget).
    if (this.budget && !(p.paused && p.reason === 'budget' && p.note === this.budget.note)) {
      if (!p.paused || p.reason === 'budget') await this.store(this.budget);
    } else if (!this.budget && p.paused && p.reason === 'budget') {
      const expired = p.until !== null && p.until <= now;
      if (expired || this.o.guard.hasBudget) await this.store(null);
    }
    if (this.pause.paused) {
      this.show();
      return 'wait';
    }
    const breaker = this.o.guard.breakerGate();
    this.breaker = breaker === 'wait' ? this.o.guard.breakerStop() : null;
    this.show();
    return breaker === 'wait' ? 'wait' : breaker;
  }

  /** The breaker just tripped: said now, not at the next gate. */
  tripped(log: Logger): void {
    const stop = this.o.guard.breakerStop();
    log.warn('circuit breaker open: pausing the loop', { note: stop?.note ?? null });
    this.breaker = stop;
    this.show();
  }

  private refresh(): Promise<void> {
    if (Date.now() - this.pauseReadAt < PAUSE_CHECK_MS) return Promise.resolve();
    this.pauseRead ??= Promise.all([this.o.buffer.agentPause(), this.o.guard.budgetStop()])
      .then(
        ([pause, budget]) => {
          this.pause = pause;
          this.budget = budget;
          this.pauseReadAt = Date.now();
        },
        () => {
          // The store is down: claims fail and say so; keep the last pause read.
        },
      )
      .finally(() => (this.pauseRead = null));
    return this.pauseRead;
  }

  /** Stores the budget's pause for every loop, or lifts the store-wide pause (null). */
  private async store(stop: Stop | null): Promise<void> {
    const pause: AgentPause = stop
      ? {
          paused: true,
          reason: stop.reason,
          by: `agent:${this.o.owner}`,
          note: stop.note,
          since: Date.now(),
          until: stop.until,
        }
      : { ...NOT_PAUSED };
    try {
      await this.o.buffer.setAgentPause(pause);
    } catch (error) {
      this.o.logger.warn('could not store the agent pause', { error });
    }
    this.pause = pause;
    this.pauseReadAt = Date.now();
  }

  /** What this loop is doing now: the store-wide pause first, else its own breaker. */
  private effective(): { reason: string | null; note: string | null; until: number | null } {
    const p = this.pause;
    if (p.paused) return { reason: p.reason ?? 'manual', note: p.note, until: p.until };
    if (this.breaker) return this.breaker;
    return { reason: null, note: null, until: null };
  }

  /** Logs, the gauge and this loop's record, when what they say changed. */
  private show(): void {
    const now = this.effective();
    const key = `${now.reason ?? ''}|${now.note ?? ''}`;
    for (const reason of PAUSE_REASONS)
      this.o.gauge?.set({ reason }, now.reason === reason ? 1 : 0);
    if (key === this.shown) return;
    const was = this.shown;
    this.shown = key;
    this.since = Date.now();
    if (now.reason !== null) {
      this.o.logger.warn('agent loop paused', {
        reason: now.reason,
        note: now.note,
        by: this.pause.paused ? this.pause.by : `agent:${this.o.owner}`,
        until: now.until === null ? null : new Date(now.until).toISOString(),
      });
      if (now.reason === 'breaker' && !this.pause.paused) {
        this.o.onBreakerOpen?.({ note: now.note, until: now.until });
      }
    } else if (was !== '' && was !== '|') this.o.logger.info('agent loop resumed');
    void this.report();
  }

  /** This loop's record in the store: which process, since when, and why it waits if it does. */
  private async report(): Promise<void> {
    const now = this.effective();
    const instance: AgentInstance = {
      id: this.o.owner,
      host: os.hostname(),
      pid: process.pid,
      state: now.reason === null ? 'running' : 'paused',
      reason: now.reason,
      note: now.note,
      started: this.started,
      since: this.since,
      until: now.until,
      seen: Date.now(),
    };
    await this.o.buffer.ledger.reportInstance(instance).catch(() => {});
  }
}

import os from 'node:os';
import Anthropic from '@anthropic-ai/sdk';
import type { EventBuffer, StoredEvent } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Enrich } from '../catalog/enrich.js';
import { NOT_RECHECKED, type Recheck } from '../operations/fresh.js';
import type { RedactKind } from '../catalog/untrusted.js';
import type { ApprovalSettings } from './approval-rule.js';
import type { Logger } from '../logger.js';
import type { Sink } from '../dispatch/dispatch.js';
import { LeaseLostError } from '../errors.js';
import { DEFAULT_POLICY } from '../buffer/transitions.js';
import type { AgentPause } from '../buffer/buffer.js';
import { Guardrails } from './guardrails.js';
import { PauseKeeper, PAUSE_CHECK_MS, type PauseKeeperOptions } from './pause.js';
import { EventWork, type Claim } from './event-work.js';
import type { AgentMetrics } from './metrics.js';

export interface AgentLoopOptions {
  buffer: EventBuffer;
  catalog: Catalog;
  client: Anthropic;
  sink: Sink;
  logger: Logger;
  metrics?: AgentMetrics;
  model: string;
  concurrency: number;
  maxTurns: number;
  maxTokens: number;
  dryRun?: boolean;
  approval?: ApprovalSettings;
  redact?: readonly RedactKind[];
  /** Adds facts the event lacks (Stripe API lookups, `--enrich`); its result is what is dispatched. */
  enrich?: Enrich;
  /**
   * Re-reads the event's object from Stripe before deciding and before dispatching
   * (operations/fresh.ts); absent or disabled without STRIPE_SECRET_KEY: decisions use the
   * event's snapshot alone.
   */
  recheck?: Recheck;
  /** How long a claim lasts; renewed every third of it while the event is worked on. */
  leaseMs?: number;
  /**
   * First retry delay after a failed attempt; doubles per attempt, capped at an hour. Default: the
   * store's policy (QueuePolicy.retryBaseMs), which every process on the store follows.
   */
  retryBaseMs?: number;
  /** How often idle workers look for due events when no change wakes them. */
  pollMs?: number;
  owner?: string;
  /** Budget, per-tool limits and the circuit breaker (config `budget`, `limits`). */
  guardrails?: Guardrails;
  /** `stripe_events_agent_paused{reason}`: 1 for the reason the loop is paused now. */
  pausedGauge?: { set(labels: { reason: string }, value: number): void };
  /** Called when this loop's circuit breaker opens (src/agent/pause.ts). */
  onBreakerOpen?: PauseKeeperOptions['onBreakerOpen'];
}

/** The options with their defaults filled in, as the loop and its per-event work read them. */
export type AgentLoopSettings = Required<
  Omit<
    AgentLoopOptions,
    | 'metrics'
    | 'approval'
    | 'redact'
    | 'enrich'
    | 'recheck'
    | 'retryBaseMs'
    | 'guardrails'
    | 'pausedGauge'
    | 'onBreakerOpen'
  >
> &
  Pick<
    AgentLoopOptions,
    | 'metrics'
    | 'approval'
    | 'redact'
    | 'enrich'
    | 'recheck'
    | 'retryBaseMs'
    | 'pausedGauge'
    | 'onBreakerOpen'
  >;

/**
 * The autonomous consumer: claim an event with a lease, ask Claude for a decision, dispatch the
 * decided call with the catalog's facts, and acknowledge only what is done. Anything that stops
 * halfway leaves the event claimed until its lease expires, and then it is pending again.
 */
export class AgentLoop {
  private readonly o: AgentLoopSettings;
  private readonly work_: EventWork;
  private readonly guard: Guardrails;
  private readonly pauses: PauseKeeper;
  /** After a request the budget refused while only reservations filled it: wait before claiming. */
  private budgetBusyUntil = 0;
  private stopping = false;
  private workers: Promise<void>[] = [];
  private readonly inFlight = new Map<string, AbortController>();
  /** Events whose worker has moved on while their outcome is still being written. */
  private readonly settling = new Set<Promise<void>>();
  private wake: (() => void)[] = [];
  private unwatch: (() => void) | undefined;
  /** Set while the model API is failing: workers wait until then before claiming again. */
  private pausedUntil = 0;
  private apiFailures = 0;
  /** The store's retry base, read when the loop starts (see retryBaseMs). */
  private retryBaseMs = DEFAULT_POLICY.retryBaseMs;

  constructor(options: AgentLoopOptions) {
    this.o = {
      dryRun: false,
      leaseMs: 120_000,
      pollMs: 1_000,
      owner: `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`,
      ...options,
    };
    this.guard = options.guardrails ?? new Guardrails(options.buffer.ledger);
    this.pauses = new PauseKeeper({
      buffer: options.buffer,
      guard: this.guard,
      logger: options.logger,
      owner: this.o.owner,
      gauge: options.pausedGauge,
      onBreakerOpen: options.onBreakerOpen,
    });
    this.work_ = new EventWork({
      o: this.o,
      guard: this.guard,
      pauses: this.pauses,
      retryBaseMs: () => this.retryBaseMs,
      modelApiUp: () => (this.apiFailures = 0),
      modelApiDown: () => {
        this.apiFailures += 1;
        const pause = Math.min(5 * 60_000, 2_000 * 2 ** Math.min(this.apiFailures, 8));
        this.pausedUntil = Date.now() + pause * (0.75 + Math.random() * 0.5);
        return pause;
      },
      budgetBusy: () => {
        this.pauses.invalidate();
        this.budgetBusyUntil = Date.now() + PAUSE_CHECK_MS;
      },
    });
  }

  /** The store-wide pause as this loop last read it. */
  paused(): AgentPause {
    return this.pauses.stored();
  }

  start(): void {
    if (this.o.retryBaseMs !== undefined) this.retryBaseMs = this.o.retryBaseMs;
    else {
      this.o.buffer.policy().then(
        (policy) => (this.retryBaseMs = policy.retryBaseMs),
        () => {},
      );
    }
    this.unwatch = this.o.buffer.watch((change) => {
      // A pause set or lifted from any door: read it again before the next claim.
      if (change.kind === 'agent' || change.kind === 'external') this.pauses.invalidate();
      if (change.kind !== 'claimed' && change.kind !== 'acked') this.wakeAll();
    });
    void this.pauses.start();
    for (let i = 0; i < this.o.concurrency; i++)
      this.workers.push(this.work(`${this.o.owner}#${i}`));
    this.o.logger.info('agent loop started', {
      model: this.o.model,
      concurrency: this.o.concurrency,
      dispatch: this.o.sink.kind,
      dryRun: this.o.dryRun,
      factsRechecked: this.o.recheck?.enabled ?? false,
    });
    // Said once at start-up, where an operator looks: without a key, every decision and approval
    // acts on the event's snapshot, however old.
    if (!this.o.recheck?.enabled) this.o.logger.warn(NOT_RECHECKED);
  }

  /** Stops claiming, cancels in-flight decisions and gives their events back. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unwatch?.();
    for (const controller of this.inFlight.values()) controller.abort();
    this.wakeAll();
    await Promise.allSettled(this.workers);
    await Promise.allSettled([...this.settling]);
    await this.pauses.stop();
    this.o.logger.info('agent loop stopped');
  }

  private wakeAll(): void {
    const waiting = this.wake;
    this.wake = [];
    for (const fn of waiting) fn();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake.push(done);
    });
  }

  private async work(owner: string): Promise<void> {
    while (!this.stopping) {
      const pause = Math.max(this.pausedUntil, this.budgetBusyUntil) - Date.now();
      if (pause > 0) {
        await this.sleep(pause);
        continue;
      }
      const gate = await this.pauses.gate();
      if (gate === 'wait') {
        await this.sleep(PAUSE_CHECK_MS);
        continue;
      }
      // Types whose tool reached its per-hour limit wait in the queue: no decision is spent on
      // an event that could not be dispatched.
      const capped = new Set(this.guard.cappedTools());
      const types = this.o.catalog
        .types()
        .filter((type) => !capped.has(this.o.catalog.lookup(type)?.tool ?? ''));
      let event: StoredEvent | undefined;
      try {
        [event] =
          types.length === 0
            ? []
            : await this.o.buffer.claim({ owner, leaseMs: this.o.leaseMs, limit: 1, types });
      } catch (error) {
        if (gate === 'probe') this.guard.abandonProbe();
        this.o.logger.warn('agent cannot claim: store unavailable, pausing', { error });
        await this.sleep(Math.max(this.o.pollMs, 1000));
        continue;
      }
      if (!event) {
        if (gate === 'probe') this.guard.abandonProbe();
        await this.sleep(this.o.pollMs);
        continue;
      }
      await this.handle(event, owner);
    }
  }

  /**
   * Works on one event, and resolves once the worker may claim the next: when the model has
   * decided and the handler has the call, or when the event is finished, whichever comes first.
   * The outcome's write (with its fsync) goes on meanwhile, and the next claim rides the same
   * writer turn: a worker does not sit out the disk between two events (bench/agent.mjs). So a
   * loop holds at most twice `concurrency` claims for an instant, and never more than
   * `concurrency` model calls or handler calls at once. stop() waits for these writes.
   */
  private handle(event: StoredEvent, owner: string): Promise<void> {
    let free!: () => void;
    const slot = new Promise<void>((resolve) => (free = resolve));
    const done = this.handleToEnd(event, owner, free)
      .catch((error: unknown) => this.o.logger.error('agent worker failed', { error }))
      .finally(free);
    this.settling.add(done);
    void done.finally(() => this.settling.delete(done));
    return slot;
  }

  private async handleToEnd(event: StoredEvent, owner: string, free: () => void): Promise<void> {
    const { buffer, logger } = this.o;
    // The claim's token: every change this worker makes to the event carries it, and the store
    // refuses it (LeaseLostError) once the claim is lost.
    const claim: Claim = { token: event.leaseOwner ?? owner, lost: false, free };
    const controller = new AbortController();
    this.inFlight.set(event.id, controller);
    const log = logger.child({ event: event.id, type: event.type });
    const renew = setInterval(
      () => {
        buffer.renew(event.id, claim.token, this.o.leaseMs).catch((error: unknown) => {
          if (!(error instanceof LeaseLostError)) return; // the store is down: try again next time
          claim.lost = true;
          controller.abort(error);
        });
      },
      Math.max(1000, Math.floor(this.o.leaseMs / 3)),
    );
    try {
      await this.work_.run(event, claim, controller.signal, log);
    } catch (error) {
      await this.work_.fail(event, claim, error, controller.signal, log);
    } finally {
      clearInterval(renew);
      this.inFlight.delete(event.id);
    }
  }
}

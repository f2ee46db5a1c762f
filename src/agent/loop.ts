import os from 'node:os';
import Anthropic from '@anthropic-ai/sdk';
import type { EventBuffer, HistoryInput, StoredEvent } from '../buffer/buffer.js';
import type { Catalog, ToolCall } from '../catalog/catalog.js';
import type { Enrich } from '../catalog/enrich.js';
import type { RedactKind } from '../catalog/untrusted.js';
import type { ConfigFile } from '../config/file.js';
import type { Logger } from '../logger.js';
import { decide } from './decide.js';
import { DispatchError, dispatchAndAck, type Sink } from '../dispatch/dispatch.js';
import { LeaseLostError } from '../errors.js';
import { DEFAULT_POLICY } from '../buffer/transitions.js';
import { NOT_PAUSED, type AgentPause } from '../buffer/buffer.js';
import { Guardrails, type Stop } from './guardrails.js';
import { approvalReason } from './approval-rule.js';
import type { AgentMetrics } from './metrics.js';
import { userMessage } from './prompt.js';

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
  approval?: NonNullable<ConfigFile['approval']>;
  redact?: readonly RedactKind[];
  /** Adds facts the event lacks (Stripe API lookups, `--enrich`); its result is what is dispatched. */
  enrich?: Enrich;
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
}

/** How often a running loop re-reads the stored pause when no change announces one. */
const PAUSE_CHECK_MS = 1_000;
const PAUSE_REASONS = ['manual', 'budget', 'breaker'] as const;

const HOUR = 3_600_000;

/**
 * The autonomous consumer: claim an event with a lease, ask Claude for a decision, dispatch the
 * decided call with the catalog's facts, and acknowledge only what is done. Anything that stops
 * halfway leaves the event claimed until its lease expires, and then it is pending again.
 */
export class AgentLoop {
  private readonly o: Required<
    Omit<
      AgentLoopOptions,
      'metrics' | 'approval' | 'redact' | 'enrich' | 'retryBaseMs' | 'guardrails' | 'pausedGauge'
    >
  > &
    Pick<
      AgentLoopOptions,
      'metrics' | 'approval' | 'redact' | 'enrich' | 'retryBaseMs' | 'pausedGauge'
    >;
  private readonly guard: Guardrails;
  /** The stored pause as last read, and when. */
  private pause: AgentPause = { ...NOT_PAUSED };
  private pauseReadAt = 0;
  private pauseRead: Promise<void> | null = null;
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
    this.guard = options.guardrails ?? new Guardrails();
  }

  /** The pause every process on the store sees (get_queue_status, /metrics, the console). */
  paused(): AgentPause {
    return { ...this.pause };
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
      if (change.kind === 'agent' || change.kind === 'external') this.pauseReadAt = 0;
      if (change.kind !== 'claimed' && change.kind !== 'acked') this.wakeAll();
    });
    this.showPause();
    // A budget or breaker pause left by a process that stopped (a restart, say with a larger
    // budget) is lifted: this loop starts with its own count and a closed breaker.
    this.o.buffer.agentPause().then(
      (pause) => {
        if (pause.paused && pause.reason !== 'manual' && pause.reason !== null) {
          return this.setPause(null);
        }
        this.pause = pause;
        this.pauseReadAt = Date.now();
        this.showPause();
      },
      () => {},
    );
    for (let i = 0; i < this.o.concurrency; i++)
      this.workers.push(this.work(`${this.o.owner}#${i}`));
    this.o.logger.info('agent loop started', {
      model: this.o.model,
      concurrency: this.o.concurrency,
      dispatch: this.o.sink.kind,
      dryRun: this.o.dryRun,
    });
  }

  /** Stops claiming, cancels in-flight decisions and gives their events back. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unwatch?.();
    for (const controller of this.inFlight.values()) controller.abort();
    this.wakeAll();
    await Promise.allSettled(this.workers);
    await Promise.allSettled([...this.settling]);
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
      const pause = this.pausedUntil - Date.now();
      if (pause > 0) {
        await this.sleep(pause);
        continue;
      }
      const gate = await this.gate();
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
   * Whether a worker may claim: `wait` while the loops are paused (by a person, the budget, or
   * the breaker, here or on another instance), `probe` when the breaker lets one event through to
   * test whether the outage is over, `go` otherwise. Keeps the stored pause in step with this
   * loop's own budget and breaker.
   */
  private async gate(): Promise<'go' | 'probe' | 'wait'> {
    await this.refreshPause();
    const budget = this.guard.budgetStop();
    if (budget) {
      await this.ensurePause(budget);
      return 'wait';
    }
    const breaker = this.guard.breakerGate();
    const stored = this.pause;
    if (stored.paused && (stored.reason ?? 'manual') === 'manual') {
      // A person's pause holds every loop on the store until someone resumes.
      if (breaker === 'probe') this.guard.abandonProbe();
      return 'wait';
    }
    // Another loop's budget or breaker pause is its own: budgets count per process, and this
    // loop's breaker trips by itself if the handler fails here too. It stays recorded for people
    // to see until that loop lifts it.
    if (breaker === 'wait') {
      const stop = this.guard.breakerStop();
      if (stop) await this.ensurePause(stop);
      return 'wait';
    }
    // A probe goes while the pause still shows: it lifts once the probe succeeds.
    if (breaker === 'go' && this.pause.paused && this.pause.by === this.pauser) {
      await this.setPause(null);
    }
    return breaker;
  }

  private async ensurePause(stop: Stop): Promise<void> {
    const p = this.pause;
    // A person's pause stays as they set it: it says more than ours, and only they lift it.
    if (p.paused && (p.reason ?? 'manual') === 'manual') return;
    if (p.paused && p.by === this.pauser && p.reason === stop.reason && p.until === stop.until) {
      return;
    }
    await this.setPause(stop);
  }

  /** This loop's name in a pause it sets. */
  private get pauser(): string {
    return `agent:${this.o.owner}`;
  }

  private refreshPause(): Promise<void> {
    if (Date.now() - this.pauseReadAt < PAUSE_CHECK_MS) return Promise.resolve();
    this.pauseRead ??= this.o.buffer
      .agentPause()
      .then(
        (pause) => {
          const was = this.pause;
          this.pause = pause;
          this.pauseReadAt = Date.now();
          if (was.paused !== pause.paused || was.reason !== pause.reason) this.announce(pause);
        },
        () => {
          // The store is down: claims fail and say so; keep the last pause read.
        },
      )
      .finally(() => (this.pauseRead = null));
    return this.pauseRead;
  }

  /** Stores this loop's own pause (budget, breaker), or lifts it (null). */
  private async setPause(stop: Stop | null): Promise<void> {
    const pause: AgentPause = stop
      ? {
          paused: true,
          reason: stop.reason,
          by: this.pauser,
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
    const was = this.pause;
    this.pause = pause;
    this.pauseReadAt = Date.now();
    if (was.paused !== pause.paused || was.reason !== pause.reason) this.announce(pause);
  }

  private announce(pause: AgentPause): void {
    this.showPause();
    if (pause.paused) {
      this.o.logger.warn('agent loop paused', {
        reason: pause.reason,
        note: pause.note,
        by: pause.by,
        until: pause.until === null ? null : new Date(pause.until).toISOString(),
      });
    } else this.o.logger.info('agent loop resumed');
  }

  private showPause(): void {
    for (const reason of PAUSE_REASONS) {
      this.o.pausedGauge?.set(
        { reason },
        this.pause.paused && (this.pause.reason ?? 'manual') === reason ? 1 : 0,
      );
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
      await this.process(event, claim, controller.signal, log);
    } catch (error) {
      await this.fail(event, claim, error, controller.signal, log);
    } finally {
      clearInterval(renew);
      this.inFlight.delete(event.id);
    }
  }

  private async process(
    event: StoredEvent,
    claim: Claim,
    signal: AbortSignal,
    log: Logger,
  ): Promise<void> {
    const { buffer, catalog, metrics } = this.o;
    const token = claim.token;
    const def = catalog.lookup(event.type);
    const facts = catalog.toolCall(event.type, event.payload);
    if (!def || !facts) {
      claim.free();
      await buffer.ack(event.id, { token, note: 'its type is no longer in the catalog' });
      return;
    }
    const factsInput = this.o.enrich ? await this.o.enrich(event.type, facts.input) : facts.input;
    const started = Date.now();
    const shown = { name: def.tool, input: factsInput };
    const result = await decide(def, userMessage(catalog, event, this.o.redact ?? [], shown), {
      client: this.o.client,
      model: this.o.model,
      maxTokens: this.o.maxTokens,
      maxTurns: this.o.maxTurns,
      signal,
    });
    this.apiFailures = 0;
    this.guard.recordUsage(this.o.model, result.usage);
    const latency_ms = Date.now() - started;
    metrics?.calls.inc(result.calls);
    metrics?.tokens.inc({ direction: 'input' }, result.usage.input_tokens);
    metrics?.tokens.inc({ direction: 'output' }, result.usage.output_tokens);
    metrics?.decisionSeconds.observe(latency_ms / 1000);
    const base = { model: this.o.model, usage: result.usage, latency_ms };
    const decision = result.decision;
    // Each outcome is one commit: the decision, what became of it, and the new state together.
    // Each carries the claim's token, so a worker that lost the event records nothing as done.

    if (!decision) {
      metrics?.decisions.inc({ tool: def.tool, action: 'invalid' });
      this.tripped(this.guard.recordFailure(), log);
      claim.free();
      const after = await buffer.nack(event.id, {
        token,
        reason: result.failure ?? 'no decision',
        retryInMs: this.backoff(event),
        record: [{ kind: 'decision', ...base, outcome: 'invalid', note: result.failure }],
      });
      log.warn('no valid decision', { reason: result.failure, status: after.status });
      return;
    }
    if (decision.kind === 'no_action') {
      metrics?.decisions.inc({ tool: def.tool, action: 'no_action' });
      claim.free();
      await buffer.ack(event.id, {
        token,
        note: 'no action needed',
        record: [{ kind: 'decision', ...base, outcome: 'no_action', note: decision.rationale }],
      });
      this.guard.recordSuccess();
      log.info('decided: no action');
      return;
    }
    if (decision.kind === 'ask_a_person') {
      metrics?.decisions.inc({ tool: def.tool, action: 'ask_a_person' });
      claim.free();
      await buffer.hold(event.id, token, `a person must look: ${decision.reason}`, [
        { kind: 'decision', ...base, outcome: 'ask_a_person', note: decision.reason },
      ]);
      this.guard.recordSuccess();
      log.info('decided: ask a person');
      return;
    }
    // The facts are always the catalog's own extraction; only the decision fields are the model's.
    const call: ToolCall = { name: def.tool, input: { ...factsInput, ...decision.decision } };
    const action = String(decision.decision.action);
    metrics?.decisions.inc({ tool: def.tool, action });
    const decided: HistoryInput = {
      kind: 'decision',
      ...base,
      tool_call: call,
      outcome: 'decided',
    };
    log.info('decided', { tool: call.name, action });

    const gate = approvalReason(call, this.o.approval ?? {});
    if (gate) {
      claim.free();
      await buffer.hold(event.id, token, gate, [decided]);
      this.guard.recordSuccess();
      metrics?.dispatches.inc({ outcome: 'awaiting_approval' });
      log.info('waiting for approval', { tool: call.name, reason: gate });
      return;
    }
    if (this.o.dryRun) {
      claim.free();
      await buffer.ack(event.id, {
        token,
        note: 'dry run: decided, not dispatched',
        record: [decided, { kind: 'dispatch', tool_call: call, outcome: 'dry_run' }],
      });
      metrics?.dispatches.inc({ outcome: 'dry_run' });
      this.guard.recordSuccess();
      return;
    }
    if (!this.guard.allowDispatch(call.name)) {
      // Another worker filled the tool's hour while this one decided: back to the queue, no
      // attempt counted, until the window has room.
      const wait = this.guard.waitForTool(call.name);
      claim.free();
      await buffer.release(event.id, token, {
        retryInMs: wait,
        note: `per-hour limit of ${call.name} reached`,
      });
      log.info('per-hour limit reached: released', { tool: call.name, retryInMs: wait });
      return;
    }
    // The check right before the handler is called: a claim lost while the model decided (a
    // person acked the event, or this process stalled past its lease and another worker took
    // over) throws LeaseLostError here, and nothing is dispatched.
    await buffer.assertHeld(event.id, token);
    try {
      await dispatchAndAck(buffer, this.o.sink, event, call, token, {
        signal,
        // The handler has the call: it counts against the tool's hour now, before this worker
        // claims (and may decide) its next event while the ack is written.
        dispatched: () => {
          this.guard.recordDispatch(call.name);
          claim.free();
        },
        note: 'dispatched',
        record: [decided],
      });
    } catch (error) {
      if (!(error instanceof DispatchError) || signal.aborted) throw error;
      metrics?.failures.inc({ reason: 'dispatch' });
      const failed: HistoryInput = {
        kind: 'dispatch',
        tool_call: call,
        outcome: 'failed',
        note: error.message,
      };
      this.tripped(this.guard.recordFailure(), log);
      if (this.guard.failuresAreOutage()) {
        // The breaker is open: the handler is down, not this event. No attempt is counted.
        await buffer.addHistory(event.id, decided);
        await buffer.addHistory(event.id, failed);
        await buffer.release(event.id, token, {
          note: 'dispatch failed while the breaker is open',
        });
        log.warn('dispatch failed (breaker open): released', { error: error.message });
        return;
      }
      const after = await buffer.nack(event.id, {
        token,
        reason: error.message,
        retryInMs: this.backoff(event),
        record: [
          decided,
          { kind: 'dispatch', tool_call: call, outcome: 'failed', note: error.message },
        ],
      });
      log.warn('dispatch failed', {
        error: error.message,
        status: after.status,
        attempts: after.attempts,
      });
      return;
    }
    metrics?.dispatches.inc({ outcome: 'dispatched' });
    this.guard.recordSuccess();
    log.info('dispatched', { tool: call.name, sink: this.o.sink.kind });
  }

  /** Logs a breaker that just tripped; the next gate() stores the pause. */
  private tripped(now: boolean, log: Logger): void {
    if (!now) return;
    const stop = this.guard.breakerStop();
    log.warn('circuit breaker open: pausing the loop', { note: stop?.note ?? null });
    this.pauseReadAt = 0;
  }

  private backoff(event: StoredEvent): number {
    const base = this.retryBaseMs * 2 ** event.attempts;
    return Math.min(HOUR, Math.round(base * (0.75 + Math.random() * 0.5)));
  }

  private async fail(
    event: StoredEvent,
    claim: Claim,
    error: unknown,
    signal: AbortSignal,
    log: Logger,
  ): Promise<void> {
    const { buffer, metrics } = this.o;
    const token = claim.token;
    this.guard.abandonProbe();
    if (claim.lost || error instanceof LeaseLostError) {
      // Someone else has the event now (a person acked it, or another worker took it over after
      // this one stalled): abandon it, record nothing as done, and leave its state alone.
      metrics?.failures.inc({ reason: 'lease_lost' });
      log.warn('claim lost: abandoning the event', {
        reason: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    try {
      if (signal.aborted) {
        // Shutting down: the event goes back to pending for the next worker.
        await buffer.release(event.id, token);
        return;
      }
      if (error instanceof Anthropic.APIError && notTheEventsFault(error)) {
        // Not the event's fault: give it back without counting an attempt, and let the API recover.
        metrics?.failures.inc({ reason: 'model_api' });
        this.tripped(this.guard.recordFailure(), log);
        this.apiFailures += 1;
        const pause = Math.min(5 * 60_000, 2_000 * 2 ** Math.min(this.apiFailures, 8));
        this.pausedUntil = Date.now() + pause * (0.75 + Math.random() * 0.5);
        await buffer.release(event.id, token);
        log.warn('model API unavailable after retries: pausing the loop', {
          status: error.status ?? null,
          pauseMs: pause,
        });
        return;
      }
      metrics?.failures.inc({ reason: 'error' });
      const reason = error instanceof Error ? error.message : String(error);
      this.tripped(this.guard.recordFailure(), log);
      if (this.guard.failuresAreOutage()) {
        await buffer.release(event.id, token, { note: `${reason} (breaker open)` });
        return;
      }
      const after = await buffer.nack(event.id, { token, reason, retryInMs: this.backoff(event) });
      log.error('event failed', { error, status: after.status });
    } catch (inner) {
      if (inner instanceof LeaseLostError) {
        log.warn('claim lost: abandoning the event', { reason: inner.message });
        return;
      }
      // The store failed too: the lease will expire and the event will be pending again.
      log.error('could not record the failure; the lease will expire', { error: inner });
    }
  }
}

/** A worker's hold on one event: its token, and whether the store has said it is lost. */
interface Claim {
  token: string;
  lost: boolean;
  /** Lets the worker claim its next event: only the outcome's write is left to do. */
  free: () => void;
}

/** Errors of the API or its key, not of the event: they must not use up its attempts. */
function notTheEventsFault(error: InstanceType<typeof Anthropic.APIError>): boolean {
  const status = error.status;
  return (
    error instanceof Anthropic.APIConnectionError ||
    status === undefined ||
    status === 401 ||
    status === 403 ||
    status === 408 ||
    status === 409 ||
    status === 429 ||
    status >= 500
  );
}

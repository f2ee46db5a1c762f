import os from 'node:os';
import Anthropic from '@anthropic-ai/sdk';
import type { EventBuffer, HistoryInput, StoredEvent } from '../buffer/buffer.js';
import type { Catalog, ToolCall } from '../catalog/catalog.js';
import type { Enrich } from '../catalog/enrich.js';
import type { RedactKind } from '../catalog/untrusted.js';
import type { ConfigFile } from '../config/file.js';
import type { Logger } from '../logger.js';
import { decide } from './decide.js';
import { DispatchError, dispatchAndAck, type Sink } from './dispatch.js';
import { LeaseLostError } from '../errors.js';
import { DEFAULT_POLICY } from '../buffer/transitions.js';
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
}

const HOUR = 3_600_000;

/**
 * The autonomous consumer: claim an event with a lease, ask Claude for a decision, dispatch the
 * decided call with the catalog's facts, and acknowledge only what is done. Anything that stops
 * halfway leaves the event claimed until its lease expires, and then it is pending again.
 */
export class AgentLoop {
  private readonly o: Required<
    Omit<AgentLoopOptions, 'metrics' | 'approval' | 'redact' | 'enrich' | 'retryBaseMs'>
  > &
    Pick<AgentLoopOptions, 'metrics' | 'approval' | 'redact' | 'enrich' | 'retryBaseMs'>;
  private stopping = false;
  private workers: Promise<void>[] = [];
  private readonly inFlight = new Map<string, AbortController>();
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
      if (change.kind !== 'claimed' && change.kind !== 'acked') this.wakeAll();
    });
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
      let event: StoredEvent | undefined;
      try {
        [event] = await this.o.buffer.claim({
          owner,
          leaseMs: this.o.leaseMs,
          limit: 1,
          types: this.o.catalog.types(),
        });
      } catch (error) {
        this.o.logger.warn('agent cannot claim: store unavailable, pausing', { error });
        await this.sleep(Math.max(this.o.pollMs, 1000));
        continue;
      }
      if (!event) {
        await this.sleep(this.o.pollMs);
        continue;
      }
      await this.handle(event, owner);
    }
  }

  private async handle(event: StoredEvent, owner: string): Promise<void> {
    const { buffer, logger } = this.o;
    // The claim's token: every change this worker makes to the event carries it, and the store
    // refuses it (LeaseLostError) once the claim is lost.
    const claim: Claim = { token: event.leaseOwner ?? owner, lost: false };
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
      await buffer.ack(event.id, {
        token,
        note: 'no action needed',
        record: [{ kind: 'decision', ...base, outcome: 'no_action', note: decision.rationale }],
      });
      log.info('decided: no action');
      return;
    }
    if (decision.kind === 'ask_a_person') {
      metrics?.decisions.inc({ tool: def.tool, action: 'ask_a_person' });
      await buffer.hold(event.id, token, `a person must look: ${decision.reason}`, [
        { kind: 'decision', ...base, outcome: 'ask_a_person', note: decision.reason },
      ]);
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

    const gate = this.approvalReason(call);
    if (gate) {
      await buffer.hold(event.id, token, gate, [decided]);
      metrics?.dispatches.inc({ outcome: 'awaiting_approval' });
      log.info('waiting for approval', { tool: call.name, reason: gate });
      return;
    }
    if (this.o.dryRun) {
      await buffer.ack(event.id, {
        token,
        note: 'dry run: decided, not dispatched',
        record: [decided, { kind: 'dispatch', tool_call: call, outcome: 'dry_run' }],
      });
      metrics?.dispatches.inc({ outcome: 'dry_run' });
      return;
    }
    // The check right before the handler is called: a claim lost while the model decided (a
    // person acked the event, or this process stalled past its lease and another worker took
    // over) throws LeaseLostError here, and nothing is dispatched.
    await buffer.renew(event.id, token, this.o.leaseMs);
    try {
      await dispatchAndAck(buffer, this.o.sink, event, call, token, {
        signal,
        note: 'dispatched',
        record: [decided],
      });
    } catch (error) {
      if (!(error instanceof DispatchError) || signal.aborted) throw error;
      metrics?.failures.inc({ reason: 'dispatch' });
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
    log.info('dispatched', { tool: call.name, sink: this.o.sink.kind });
  }

  /** Why a decided call must wait for a person, or null. */
  private approvalReason(call: ToolCall): string | null {
    const approval = this.o.approval ?? {};
    if (approval.tools?.includes(call.name)) return `approval required for ${call.name}`;
    const amount = call.input.amount;
    if (
      approval.amount_over !== undefined &&
      typeof amount === 'number' &&
      amount > approval.amount_over
    ) {
      return `approval required: amount ${amount} is over ${approval.amount_over}`;
    }
    return null;
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

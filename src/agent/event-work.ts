import Anthropic from '@anthropic-ai/sdk';
import type { HistoryInput, StoredEvent } from '../buffer/buffer.js';
import type { ToolCall, ToolDefinition } from '../catalog/catalog.js';
import { cleanModelText } from '../catalog/model-text.js';
import { DispatchError, dispatchAndAck } from '../dispatch/dispatch.js';
import { LeaseLostError } from '../errors.js';
import type { Logger } from '../logger.js';
import { approvedCall, dispatchApproved, redispatchNote } from '../operations/approvals.js';
import {
  NOT_RECHECKED,
  recordSuperseded,
  type FreshCheck,
  type SupersededAt,
} from '../operations/fresh.js';
import { StripeReadError } from '../stripe/objects.js';
import { approvalReason } from './approval-rule.js';
import { decide, type Decision } from './decide.js';
import type { Guardrails } from './guardrails.js';
import type { AgentLoopSettings } from './loop.js';
import type { PauseKeeper } from './pause.js';
import { userMessage } from './prompt.js';

const HOUR = 3_600_000;

/** What the per-event work needs of the loop that runs it. */
export interface WorkContext {
  o: AgentLoopSettings;
  guard: Guardrails;
  pauses: PauseKeeper;
  /** The store's retry base (QueuePolicy.retryBaseMs), as the loop read it. */
  retryBaseMs(): number;
  /** The model API answered: its back-off resets. */
  modelApiUp(): void;
  /** The model API failed after the SDK's retries: every worker waits; returns how long (ms). */
  modelApiDown(): number;
  /** The budget refused a request while only reservations filled it: wait a moment. */
  budgetBusy(): void;
}

/** What every decision entry records: the model, its usage, how long it took. */
type DecisionBase = {
  model: string;
  usage: { input_tokens: number; output_tokens: number };
  latency_ms: number;
};

/** One attempt at one claimed event, as the steps of EventWork pass it on. */
interface Attempt {
  event: StoredEvent;
  def: ToolDefinition;
  claim: Claim;
  signal: AbortSignal;
  log: Logger;
  /** Set once a per-hour slot is confirmed: it is then not given back. */
  used: { slot: boolean };
}

/** A worker's hold on one event: its token, and whether the store has said it is lost. */
export interface Claim {
  token: string;
  lost: boolean;
  /** Lets the worker claim its next event: only the outcome's write is left to do. */
  free: () => void;
}

/**
 * One claimed event, start to end: the approved-call recovery, the per-hour slot, the decision
 * (with the budget's reservations), the approval gate, the dispatch, and every outcome's commit —
 * each carrying the claim's token, so a worker that lost the event records nothing as done. The
 * loop (loop.ts) owns the workers, the claims and the lease renewals around it.
 */
export class EventWork {
  private readonly o: AgentLoopSettings;
  private readonly guard: Guardrails;
  private readonly pauses: PauseKeeper;

  constructor(private readonly ctx: WorkContext) {
    this.o = ctx.o;
    this.guard = ctx.guard;
    this.pauses = ctx.pauses;
  }

  /**
   * One claimed event: an approved call whose dispatch was interrupted is dispatched again as
   * approved; anything else takes a slot of its tool's per-hour limit (when it has one), then is
   * decided and acted on. A slot no dispatch used is given back.
   */
  async run(event: StoredEvent, claim: Claim, signal: AbortSignal, log: Logger): Promise<void> {
    const { buffer, catalog } = this.o;
    const def = catalog.lookup(event.type);
    const facts = catalog.toolCall(event.type, event.payload);
    if (!def || !facts) {
      claim.free();
      await buffer.ack(event.id, {
        token: claim.token,
        note: 'its type is no longer in the catalog',
        outcome: 'no_action',
      });
      return;
    }
    const approved = await approvedCall(buffer, event);
    if (approved) return this.redispatch(event, claim, approved, signal, log);
    const slot = await this.guard.reserveTool(def.tool, event.id, this.o.leaseMs);
    if (!slot.granted) {
      // The tool's hour is full (store-wide): back to the queue without a decision or an attempt.
      claim.free();
      await buffer.release(event.id, claim.token, {
        retryInMs: slot.retryInMs,
        note: `per-hour limit of ${def.tool} reached`,
      });
      log.info('per-hour limit reached: released', { tool: def.tool, retryInMs: slot.retryInMs });
      return;
    }
    const used = { slot: false };
    try {
      await this.decideAndAct(event, def, facts.input, claim, signal, log, used);
    } finally {
      if (!used.slot) {
        await this.guard.releaseTool(def.tool, event.id).catch((error: unknown) => {
          // The slot keeps counting until its hold ends: stricter, never looser.
          log.warn('could not give back a per-hour slot', { error });
        });
      }
    }
  }

  /** An approved call dispatched again: exactly as approved, no model call, no attempt. */
  private async redispatch(
    event: StoredEvent,
    claim: Claim,
    approved: { call: ToolCall; by: string },
    signal: AbortSignal,
    log: Logger,
  ): Promise<void> {
    await this.o.buffer.assertHeld(event.id, claim.token);
    const def = this.o.catalog.lookup(event.type);
    if (
      def &&
      (await this.superseded(event, def, claim, 'before carrying out the approval', log))
    ) {
      return;
    }
    const result = await dispatchApproved(
      this.o.buffer,
      this.o.sink,
      event,
      approved.call,
      claim.token,
      {
        signal,
        note: redispatchNote(approved.by),
        dispatched: () => claim.free(),
      },
    );
    claim.free();
    this.o.metrics?.dispatches.inc({
      outcome: result.status === 'acked' ? 'dispatched' : 'failed',
    });
    log.info('approved call dispatched again', {
      tool: approved.call.name,
      by: approved.by,
      outcome: result.outcome,
    });
  }

  private async decideAndAct(
    event: StoredEvent,
    def: ToolDefinition,
    facts: Record<string, unknown>,
    claim: Claim,
    signal: AbortSignal,
    log: Logger,
    used: { slot: boolean },
  ): Promise<void> {
    const { catalog, metrics } = this.o;
    // What is true now, before the model spends a token on it: a precondition that no longer
    // holds ends the event here (superseded); one that holds gives the facts as they are now.
    const fresh = await this.freshCheck(event, def);
    if (fresh.kind === 'superseded') {
      await this.recordSuperseded(event, claim, fresh.reason, 'before deciding', [], log);
      return;
    }
    const current = fresh.kind === 'current' ? fresh.facts : facts;
    const factsInput = this.o.enrich ? await this.o.enrich(event.type, current) : current;
    const started = Date.now();
    const shown = { name: def.tool, input: factsInput };
    const freshness =
      fresh.kind === 'current'
        ? { checkedAt: fresh.fetchedAt, changed: fresh.changed }
        : { checkedAt: null, changed: [] };
    const prompt = userMessage(catalog, event, this.o.redact ?? [], shown, freshness);
    const result = await decide(def, prompt, {
      client: this.o.client,
      model: this.o.model,
      maxTokens: this.o.maxTokens,
      maxTurns: this.o.maxTurns,
      signal,
      budget: this.guard.requestBudget(this.o.model),
    });
    this.ctx.modelApiUp();
    const latency_ms = Date.now() - started;
    metrics?.calls.inc(result.calls);
    metrics?.tokens.inc({ direction: 'input' }, result.usage.input_tokens);
    metrics?.tokens.inc({ direction: 'output' }, result.usage.output_tokens);
    const base = { model: this.o.model, usage: result.usage, latency_ms };
    if (result.stopped === 'budget') return this.overBudget(event, claim, base, result, log);
    metrics?.decisionSeconds.observe(latency_ms / 1000);
    // What the model wrote is untrusted text: controls, bidi and invisible characters out, every
    // string bounded, before it is stored, dispatched, or shown to a person or another agent.
    const decision = result.decision && cleanDecision(result.decision);
    await this.act(
      { event, def, claim, signal, log, used },
      {
        decision,
        failure: result.failure,
        detail: result.detail,
        base,
        facts: factsInput,
        seen: [factsEntry(fresh)],
      },
    );
  }

  /** What the decision says to do, done: each outcome one commit, with the claim's token. */
  private async act(
    a: Attempt,
    d: {
      decision: Decision | null;
      failure: string | undefined;
      detail?: string;
      base: DecisionBase;
      facts: Record<string, unknown>;
      /** What the decision was made on (fresh facts or the snapshot), recorded beside it. */
      seen: readonly HistoryInput[];
    },
  ): Promise<void> {
    const { event, def, claim, signal, log, used } = a;
    const { decision, base, facts: factsInput, seen } = d;
    const { buffer, metrics } = this.o;
    const token = claim.token;
    // Each outcome is one commit: the decision, what became of it, and the new state together.
    // Each carries the claim's token, so a worker that lost the event records nothing as done.
    if (!decision) {
      metrics?.decisions.inc({ tool: def.tool, action: 'invalid' });
      this.tripped(this.guard.recordFailure(), log);
      claim.free();
      // The reason (so last_error) is one sentence a person reads; the decision entry keeps the
      // detail: every request's calls and what was wrong with them. Both quote the model.
      const reason = cleanModelText(d.failure ?? 'the model made no decision', 500);
      const detail = cleanModelText(d.detail ?? reason);
      const after = await buffer.nack(event.id, {
        token,
        reason,
        retryInMs: this.backoff(event),
        record: [...seen, { kind: 'decision', ...base, outcome: 'invalid', note: detail }],
      });
      log.warn('no valid decision', { reason, detail, status: after.status });
      return;
    }
    if (decision.kind === 'no_action') {
      metrics?.decisions.inc({ tool: def.tool, action: 'no_action' });
      claim.free();
      await buffer.ack(event.id, {
        token,
        note: 'no action needed',
        outcome: 'no_action',
        record: [
          ...seen,
          { kind: 'decision', ...base, outcome: 'no_action', note: decision.rationale },
        ],
      });
      this.guard.recordSuccess();
      log.info('decided: no action');
      return;
    }
    if (decision.kind === 'ask_a_person') {
      metrics?.decisions.inc({ tool: def.tool, action: 'ask_a_person' });
      claim.free();
      await buffer.hold(event.id, token, `a person must look: ${decision.reason}`, [
        ...seen,
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
      await buffer.hold(event.id, token, gate, [...seen, decided]);
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
        outcome: 'dry_run',
        record: [...seen, decided, { kind: 'dispatch', tool_call: call, outcome: 'dry_run' }],
      });
      metrics?.dispatches.inc({ outcome: 'dry_run' });
      this.guard.recordSuccess();
      return;
    }
    // Right before the handler is called, what is true now again: the object may have changed
    // while the model decided (a dispute closed, an invoice paid). One API read per dispatch.
    const record = [...seen, decided];
    try {
      if (await this.superseded(event, def, claim, 'before dispatching', log, record)) return;
    } catch (error) {
      // Stripe could not say (fail() releases the event without an attempt): the decision the
      // tokens bought stays in the history, though the next claim decides again on fresh facts.
      if (error instanceof StripeReadError) {
        for (const entry of record) await buffer.addHistory(event.id, entry);
      }
      throw error;
    }
    // Right before the handler is called: the claim must still hold (a claim lost while the model
    // decided — a person acked, or this process stalled past its lease and another worker took
    // over — throws LeaseLostError here and nothing is dispatched), and the tool's slot is marked
    // used from now. Both at once: a slot confirmed for a lost claim only counts too much.
    await Promise.all([
      buffer.assertHeld(event.id, token),
      this.guard.confirmTool(call.name, event.id).then(() => (used.slot = true)),
    ]);
    await this.dispatch(event, call, record, claim, signal, log);
  }

  /**
   * A request the daily budget refused: the event goes back to the queue without an attempt. When
   * the settled spend has reached the budget the pause follows at the next gate (store-wide);
   * while only reservations of requests in flight fill it, this loop waits a moment.
   */
  private async overBudget(
    event: StoredEvent,
    claim: Claim,
    base: {
      model: string;
      usage: { input_tokens: number; output_tokens: number };
      latency_ms: number;
    },
    result: { failure?: string },
    log: Logger,
  ): Promise<void> {
    this.ctx.budgetBusy();
    claim.free();
    if (base.usage.input_tokens + base.usage.output_tokens > 0) {
      await this.o.buffer.addHistory(event.id, {
        kind: 'decision',
        ...base,
        outcome: 'budget',
        note: result.failure,
      });
    }
    await this.o.buffer.release(event.id, claim.token, { note: 'the daily budget is reached' });
    log.info('daily budget reached: released', { reason: result.failure });
  }

  private async dispatch(
    event: StoredEvent,
    call: ToolCall,
    decided: readonly HistoryInput[],
    claim: Claim,
    signal: AbortSignal,
    log: Logger,
  ): Promise<void> {
    const { buffer, metrics } = this.o;
    const token = claim.token;
    try {
      await dispatchAndAck(buffer, this.o.sink, event, call, token, {
        signal,
        // The handler has the call: this worker claims (and may decide) its next event while the
        // ack is written.
        dispatched: () => claim.free(),
        note: 'dispatched',
        outcome: 'dispatched',
        record: decided,
      });
    } catch (error) {
      if (!(error instanceof DispatchError) || signal.aborted) throw error;
      metrics?.failures.inc({ reason: 'dispatch' });
      // The handler's words (an HTTP answer, an exception) are untrusted text too.
      const message = cleanModelText(error.message, 1_000);
      const failed: HistoryInput = {
        kind: 'dispatch',
        tool_call: call,
        outcome: 'failed',
        note: message,
      };
      this.tripped(this.guard.recordFailure(), log);
      if (this.guard.failuresAreOutage()) {
        // The breaker is open: the handler is down, not this event. No attempt is counted.
        for (const entry of [...decided, failed]) await buffer.addHistory(event.id, entry);
        await buffer.release(event.id, token, {
          note: 'dispatch failed while the breaker is open',
        });
        log.warn('dispatch failed (breaker open): released', { error: message });
        return;
      }
      const after = await buffer.nack(event.id, {
        token,
        reason: message,
        retryInMs: this.backoff(event),
        record: [...decided, failed],
      });
      log.warn('dispatch failed', {
        error: message,
        status: after.status,
        attempts: after.attempts,
      });
      return;
    }
    metrics?.dispatches.inc({ outcome: 'dispatched' });
    this.guard.recordSuccess();
    log.info('dispatched', { tool: call.name, sink: this.o.sink.kind });
  }

  /** The re-check (fresh.ts); without one configured, nothing is re-checked. */
  private freshCheck(event: StoredEvent, def: ToolDefinition): Promise<FreshCheck> {
    if (!this.o.recheck) return Promise.resolve({ kind: 'unchecked', why: NOT_RECHECKED });
    return this.o.recheck.check(event, def);
  }

  /**
   * Checks the object again; when the precondition no longer holds, records the event superseded
   * (with `record`, e.g. the decision it overrules) and returns true: nothing is dispatched.
   */
  private async superseded(
    event: StoredEvent,
    def: ToolDefinition,
    claim: Claim,
    at: SupersededAt,
    log: Logger,
    record: readonly HistoryInput[] = [],
  ): Promise<boolean> {
    const fresh = await this.freshCheck(event, def);
    if (fresh.kind !== 'superseded') return false;
    await this.recordSuperseded(event, claim, fresh.reason, at, record, log);
    return true;
  }

  private async recordSuperseded(
    event: StoredEvent,
    claim: Claim,
    reason: string,
    at: SupersededAt,
    record: readonly HistoryInput[],
    log: Logger,
  ): Promise<void> {
    claim.free();
    await recordSuperseded(this.o.buffer, event.id, { token: claim.token, reason, at, record });
    this.o.metrics?.dispatches.inc({ outcome: 'superseded' });
    this.guard.recordSuccess();
    log.info('superseded: nothing done', { reason, at });
  }

  /** Logs a breaker that just tripped; the loop waits from its next gate. */
  private tripped(now: boolean, log: Logger): void {
    if (now) this.pauses.tripped(log);
  }

  private backoff(event: StoredEvent): number {
    const base = this.ctx.retryBaseMs() * 2 ** event.attempts;
    return Math.min(HOUR, Math.round(base * (0.75 + Math.random() * 0.5)));
  }

  async fail(
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
      if (error instanceof StripeReadError) {
        // Stripe could not say what is true now (unreachable, rate-limited past the retries, or
        // the key may not read the object): not the event's fault, and not a guess to act on.
        // Back to the queue for later, no attempt counted; the breaker counts it.
        metrics?.failures.inc({ reason: 'stripe_api' });
        this.tripped(this.guard.recordFailure(), log);
        const retryInMs = this.backoff(event);
        await buffer.release(event.id, token, { retryInMs, note: error.message });
        log.warn('could not re-check the facts with Stripe: released for later', {
          reason: error.message,
          retryInMs,
        });
        return;
      }
      if (error instanceof Anthropic.APIError && notTheEventsFault(error)) {
        // Not the event's fault: give it back without counting an attempt, and let the API recover.
        metrics?.failures.inc({ reason: 'model_api' });
        this.tripped(this.guard.recordFailure(), log);
        const pause = this.ctx.modelApiDown();
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

/**
 * The history entry recorded beside a decision: what it was made on. `fresh` — the facts read
 * from Stripe just before (and which had changed since the event); `snapshot` — the event's own
 * facts, not re-checked (no STRIPE_SECRET_KEY, or a tool with no precondition). The console shows it.
 */
function factsEntry(fresh: FreshCheck): HistoryInput {
  if (fresh.kind === 'current') {
    const changed = fresh.changed.length
      ? `changed since the event: ${fresh.changed.join(', ')}`
      : 'unchanged since the event';
    return {
      kind: 'note',
      outcome: 'fresh',
      note: `decided on facts read from Stripe at ${new Date(fresh.fetchedAt).toISOString()} (${changed})`,
    };
  }
  return {
    kind: 'note',
    outcome: 'snapshot',
    note: `decided on the event's snapshot alone: ${fresh.kind === 'unchecked' ? fresh.why : 'not re-checked'}`,
  };
}

/** A decision with every string the model wrote cleaned and bounded (catalog/model-text.ts). */
function cleanDecision(decision: Decision): Decision {
  switch (decision.kind) {
    case 'no_action':
      return { kind: 'no_action', rationale: cleanModelText(decision.rationale) };
    case 'ask_a_person':
      return { kind: 'ask_a_person', reason: cleanModelText(decision.reason) };
    case 'tool':
      return {
        kind: 'tool',
        decision: cleanStrings(decision.decision, 0) as Record<string, unknown>,
      };
  }
}

function cleanStrings(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return cleanModelText(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => cleanStrings(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [cleanModelText(k, 200), cleanStrings(v, depth + 1)]),
  );
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

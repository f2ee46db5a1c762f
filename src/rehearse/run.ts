import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { StoredEvent } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import type { RedactKind } from '../catalog/untrusted.js';
import { approvalReason, type ApprovalSettings } from '../agent/approval-rule.js';
import type { ModelClient } from '../agent/client.js';
import { decide, type RequestBudget } from '../agent/decide.js';
import { costOf, type ModelPrice } from '../agent/pricing.js';
import { userMessage } from '../agent/prompt.js';
import { CostCap } from './cost-cap.js';

/** One configuration under rehearsal: what the live loop would run with it. */
export interface Policy {
  /** Where it came from, for the report (the config file, or "defaults"). */
  label: string;
  catalog: Catalog;
  model: string;
  approval: ApprovalSettings;
  /** null: the model has no known price (cost reported as null). */
  price: ModelPrice | null;
  redact: readonly RedactKind[];
  maxTurns: number;
  maxTokens: number;
}

export type OutcomeKind = 'decided' | 'no_action' | 'ask_a_person' | 'invalid' | 'unmapped';

/** What one policy decided for one event; nothing was dispatched or stored. */
export interface Outcome {
  outcome: OutcomeKind;
  /** The catalog tool the event maps to under this policy; null when it does not map. */
  tool: string | null;
  /** The decided `action`, or the outcome for anything else (`no_action`, `ask_a_person`, …). */
  action: string;
  /** The model's rationale, reason, or why there is no valid decision (bounded). */
  rationale: string | null;
  /** Why the decided call would wait for a person under this policy's `approval`, or null. */
  approval: string | null;
  /** The event's amount (minor units) and currency, from the catalog's facts; null when none. */
  amount: number | null;
  currency: string | null;
  tokens: { input: number; output: number };
  cost_usd: number | null;
  latency_ms: number;
  calls: number;
}

export interface Rehearsed {
  id: string;
  type: string;
  created: number;
  /** One per policy, in the order the policies were given. */
  outcomes: Outcome[];
}

const TEXT_MAX = 500;

function bounded(text: unknown): string | null {
  if (typeof text !== 'string' || text === '') return null;
  return text.length > TEXT_MAX ? `${text.slice(0, TEXT_MAX - 1)}…` : text;
}

/**
 * A decision the budget cut short (a request was refused): the event cannot be reported as
 * rehearsed. Its requests made before the refusal were paid for; their usage is here.
 */
export class BudgetReached extends Error {
  constructor(
    readonly usage: { input_tokens: number; output_tokens: number },
    message: string,
  ) {
    super(message);
    this.name = 'BudgetReached';
  }
}

/**
 * The loop's decision step for one event under one policy, exactly as `AgentLoop.process` runs
 * it (same catalog facts, `userMessage`, `decide`, approval rule), minus everything that acts:
 * no ack, no hold, no dispatch. API errors propagate (after the SDK's retries); a request the
 * `budget` refuses throws `BudgetReached`.
 */
export async function rehearseOne(
  policy: Policy,
  event: StoredEvent,
  client: ModelClient,
  options: { signal?: AbortSignal; budget?: RequestBudget } = {},
): Promise<Outcome> {
  const def = policy.catalog.lookup(event.type);
  const facts = policy.catalog.toolCall(event.type, event.payload);
  const none = { tokens: { input: 0, output: 0 }, cost_usd: 0, latency_ms: 0, calls: 0 };
  if (!def || !facts) {
    return {
      outcome: 'unmapped',
      tool: null,
      action: 'unmapped',
      rationale: null,
      approval: null,
      amount: null,
      currency: null,
      ...none,
    };
  }
  const money = {
    amount:
      typeof facts.input.amount === 'number' && Number.isFinite(facts.input.amount)
        ? facts.input.amount
        : null,
    currency: typeof facts.input.currency === 'string' ? facts.input.currency : null,
  };
  const shown = { name: def.tool, input: facts.input };
  const started = performance.now();
  const result = await decide(def, userMessage(policy.catalog, event, policy.redact, shown), {
    client,
    model: policy.model,
    maxTokens: policy.maxTokens,
    maxTurns: policy.maxTurns,
    signal: options.signal,
    budget: options.budget,
  });
  if (result.stopped === 'budget') {
    throw new BudgetReached(result.usage, result.failure ?? 'budget reached');
  }
  const spent = {
    tokens: { input: result.usage.input_tokens, output: result.usage.output_tokens },
    cost_usd: policy.price ? costOf(result.usage, policy.price) : null,
    latency_ms: Math.round(performance.now() - started),
    calls: result.calls,
  };
  const decision = result.decision;
  const base = { tool: def.tool, approval: null, ...money, ...spent };
  if (!decision) {
    return { ...base, outcome: 'invalid', action: 'invalid', rationale: bounded(result.failure) };
  }
  if (decision.kind === 'no_action') {
    return {
      ...base,
      outcome: 'no_action',
      action: 'no_action',
      rationale: bounded(decision.rationale),
    };
  }
  if (decision.kind === 'ask_a_person') {
    return {
      ...base,
      outcome: 'ask_a_person',
      action: 'ask_a_person',
      rationale: bounded(decision.reason),
    };
  }
  // The same call the loop would build: the catalog's facts, then the model's decision fields.
  const call = { name: def.tool, input: { ...facts.input, ...decision.decision } };
  return {
    ...base,
    outcome: 'decided',
    action: String(decision.decision.action),
    rationale: bounded(decision.decision.rationale),
    approval: approvalReason(call, policy.approval),
  };
}

export type StopReason = 'budget' | 'limit' | 'error' | 'interrupted';

export interface RunOptions {
  policies: readonly Policy[];
  client: ModelClient;
  /** Event ids in the order to rehearse them; `load` reads each from the scratch store. */
  ids: readonly string[];
  load(id: string): Promise<StoredEvent | null>;
  concurrency: number;
  /**
   * A hard cap on the run's spend (USD): every request reserves its bound's cost first (see
   * `CostCap`). Every policy needs a price.
   */
  maxCostUsd?: number;
  /** `spentUsd`: as `RunResult.spentUsd`, so far. */
  onDone?: (event: Rehearsed, progress: { done: number; spentUsd: number }) => void;
  /** Aborted (Ctrl-C): start nothing more, cancel what is in flight, report what finished. */
  signal?: AbortSignal;
}

export interface RunResult {
  events: Rehearsed[];
  stopped: StopReason | null;
  /** The API failure that stopped the run. */
  error?: unknown;
  /**
   * What the run spent (USD). With a cap, every request settled, those of events cut short (by the
   * budget or an interrupt) and not reported included; without one, the reported events' cost;
   * null when a policy has no price.
   */
  spentUsd: number | null;
}

/**
 * Rehearses events `concurrency` at a time, every policy on each event. With `maxCostUsd`, every
 * request of every policy reserves against one `CostCap`; the first refusal stops the run from
 * starting events, and the event it cut short is not reported (its decision is incomplete).
 */
export async function rehearseAll(options: RunOptions): Promise<RunResult> {
  const { policies, client } = options;
  const cap = options.maxCostUsd === undefined ? null : new CostCap(options.maxCostUsd);
  const budgets = policies.map((p) => {
    if (!cap) return undefined;
    if (!p.price) throw new Error(`no price for ${p.model}: a cost cap cannot be enforced`);
    return cap.budgetFor(p.price);
  });
  const priced = policies.every((p) => p.price !== null);
  // By position in `ids`, so the report lists events in the order they were given.
  const slots: (Rehearsed | undefined)[] = [];
  const controller = new AbortController();
  // Every request in flight listens on it (two per decision with --compare): not a leak.
  setMaxListeners(0, controller.signal);
  let stopped: StopReason | null = null;
  let error: unknown;
  // The cost of the reported events; the cap counts every request, reported or not.
  let spent = 0;
  const spentSoFar = () => (cap ? cap.spentUsd : spent);
  let finished = 0;
  let next = 0;
  const running = new Set<Promise<void>>();
  const interrupt = () => {
    stopped = 'interrupted';
    cap?.close();
    controller.abort();
  };
  if (options.signal?.aborted) interrupt();
  options.signal?.addEventListener('abort', interrupt, { once: true });

  const work = async (id: string, position: number) => {
    const event = await options.load(id);
    if (!event) return;
    // Every policy's decision ends before the event does, so none is left making requests after
    // the run has returned; an API error outweighs a refusal.
    const settled = await Promise.allSettled(
      policies.map((p, i) =>
        rehearseOne(p, event, client, { signal: controller.signal, budget: budgets[i] }),
      ),
    );
    const failed = settled.find(
      (r) => r.status === 'rejected' && !(r.reason instanceof BudgetReached),
    );
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (settled.some((r) => r.status === 'rejected')) {
      // The budget refused a request of this event: it was not rehearsed, and nothing more starts.
      stopped ??= 'budget';
      return;
    }
    const outcomes = settled.map((r) => (r as PromiseFulfilledResult<Outcome>).value);
    const rehearsed = { id: event.id, type: event.type, created: event.created, outcomes };
    slots[position] = rehearsed;
    finished += 1;
    spent += outcomes.reduce((sum, o) => sum + (o.cost_usd ?? 0), 0);
    options.onDone?.(rehearsed, { done: finished, spentUsd: spentSoFar() });
  };

  while (next < options.ids.length && stopped === null) {
    if (running.size >= options.concurrency) {
      await Promise.race(running);
      continue;
    }
    const position = next++;
    const task: Promise<void> = work(options.ids[position]!, position)
      .catch((e: unknown) => {
        // Cancelled by an interrupt: not a failure. Otherwise the model API failed after the
        // SDK's retries: stop starting, let the rest finish.
        if (stopped === 'interrupted') return;
        stopped = 'error';
        error ??= e;
      })
      .finally(() => running.delete(task));
    running.add(task);
  }
  await Promise.all(running);
  options.signal?.removeEventListener('abort', interrupt);
  if (error !== undefined && (stopped as StopReason | null) !== 'interrupted') stopped = 'error';
  const events = slots.filter((e): e is Rehearsed => e !== undefined);
  return { events, stopped, error, spentUsd: cap ? cap.spentUsd : priced ? spent : null };
}

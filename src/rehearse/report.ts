import type { ApprovalSettings } from '../agent/approval-rule.js';
import { amountThresholds } from '../config/file.js';
import { formatAmount, formatAmountOrNull } from '../money.js';
import type { ModelPrice } from '../agent/pricing.js';
import type { Outcome, Policy, Rehearsed, StopReason } from './run.js';

/** What one policy did over the rehearsed events: the body of report.json (and of `compare`). */
export interface PolicySummary {
  config: {
    file: string;
    model: string;
    approval: ApprovalSettings;
    pricing: ModelPrice | null;
  };
  /** Events this policy maps that were rehearsed. */
  events: number;
  /** Events it decided a tool action for. */
  decided: number;
  by_tool: Record<string, { events: number; actions: Record<string, number> }>;
  no_action: number;
  ask_a_person: number;
  invalid: number;
  /** Decided calls that would wait for a person under `config.approval`. */
  approvals: number;
  tokens: { input: number; output: number };
  /** null when the model has no price (see `cost_note`). */
  cost_usd: number | null;
  cost_note?: string;
  latency_ms: { p50: number | null; p95: number | null };
  /** A few decisions per tool, with their rationale. */
  samples: Record<string, Sample[]>;
}

export interface Sample {
  event_id: string;
  type: string;
  action: string;
  rationale: string | null;
  approval: string | null;
}

export interface DecisionRow {
  event_id: string;
  type: string;
  created: string;
  /** The event's amount as Stripe sent it (minor units) and its currency; null when none. */
  amount: number | null;
  currency: string | null;
  /** The same amount as people read it (`$4,120.00`, `¥50,000`); null when none. */
  amount_display: string | null;
  tool: string | null;
  outcome: Outcome['outcome'];
  action: string;
  rationale: string | null;
  approval: string | null;
  tokens: { input: number; output: number };
  cost_usd: number | null;
  latency_ms: number;
  /** The compare config's outcome for the same event. */
  compare?: Omit<DecisionRow, EventColumns | 'compare'>;
}

/** A row's columns that describe the event itself, the same under either config. */
type EventColumns = 'event_id' | 'type' | 'created' | 'amount' | 'currency' | 'amount_display';

export interface Difference {
  event_id: string;
  type: string;
  primary: { tool: string | null; action: string; approval: boolean };
  compare: { tool: string | null; action: string; approval: boolean };
}

export interface CompareSection extends PolicySummary {
  /** Events where the decided action (or outcome) differs between the two configs. */
  differ: number;
  same: number;
  differences: Difference[];
  /** compare's cost less the primary's; null when either has no price. */
  cost_difference_usd: number | null;
}

export interface Report extends PolicySummary {
  version: 1;
  generated_at: string;
  source: Record<string, unknown>;
  stopped: StopReason | null;
  decisions: DecisionRow[];
  compare?: CompareSection;
}

const SAMPLES_PER_TOOL = 3;

/**
 * A config's amount thresholds in words, each in its currency: `over $500.00 (usd), ¥75,000
 * (jpy); other currencies wait` — or null when amounts gate nothing.
 */
export function thresholdsText(approval: ApprovalSettings): string | null {
  if (approval.amount_over === undefined) return null;
  // In the config's own order.
  const each = Object.entries(amountThresholds(approval.amount_over)).map(
    ([code, minor]) => `${formatAmount(minor, code)} (${code})`,
  );
  return each.length
    ? `over ${each.join(', ')}; any other currency waits`
    : 'every amount waits (no currency has a threshold)';
}

/** The nearest-rank percentile of sorted values; null when there are none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Rounded to a millionth of a dollar, so the JSON shows no float noise. */
export function usd(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

export function summarize(
  policy: Policy,
  events: readonly Rehearsed[],
  index: number,
): PolicySummary {
  const summary: PolicySummary = {
    config: {
      file: policy.label,
      model: policy.model,
      approval: policy.approval,
      pricing: policy.price,
    },
    events: 0,
    decided: 0,
    by_tool: {},
    no_action: 0,
    ask_a_person: 0,
    invalid: 0,
    approvals: 0,
    tokens: { input: 0, output: 0 },
    cost_usd: policy.price ? 0 : null,
    latency_ms: { p50: null, p95: null },
    samples: {},
  };
  if (!policy.price) {
    summary.cost_note = `no price is known for the model ${policy.model}: add it to the config file's "pricing" ({"${policy.model}": {"input_per_mtok": …, "output_per_mtok": …}}) for a cost`;
  }
  const latencies: number[] = [];
  for (const event of events) {
    const o = event.outcomes[index]!;
    if (o.outcome === 'unmapped' || o.tool === null) continue;
    summary.events += 1;
    const tool = (summary.by_tool[o.tool] ??= { events: 0, actions: {} });
    tool.events += 1;
    tool.actions[o.action] = (tool.actions[o.action] ?? 0) + 1;
    if (o.outcome === 'decided') summary.decided += 1;
    else summary[o.outcome] += 1;
    if (o.approval) summary.approvals += 1;
    summary.tokens.input += o.tokens.input;
    summary.tokens.output += o.tokens.output;
    if (summary.cost_usd !== null) summary.cost_usd += o.cost_usd ?? 0;
    latencies.push(o.latency_ms);
    const samples = (summary.samples[o.tool] ??= []);
    // Prefer a sample of an action not shown yet, so the samples show the mix.
    if (samples.length < SAMPLES_PER_TOOL && !samples.some((s) => s.action === o.action)) {
      samples.push({
        event_id: event.id,
        type: event.type,
        action: o.action,
        rationale: o.rationale,
        approval: o.approval,
      });
    }
  }
  for (const event of events) {
    // Fill up to the sample count with repeats of an action when a tool has few kinds.
    const o = event.outcomes[index]!;
    if (o.tool === null) continue;
    const samples = summary.samples[o.tool]!;
    if (samples.length >= SAMPLES_PER_TOOL || samples.some((s) => s.event_id === event.id))
      continue;
    samples.push({
      event_id: event.id,
      type: event.type,
      action: o.action,
      rationale: o.rationale,
      approval: o.approval,
    });
  }
  latencies.sort((a, b) => a - b);
  summary.latency_ms = { p50: percentile(latencies, 50), p95: percentile(latencies, 95) };
  if (summary.cost_usd !== null) summary.cost_usd = usd(summary.cost_usd);
  return summary;
}

function row(o: Outcome): Omit<DecisionRow, EventColumns | 'compare'> {
  return {
    tool: o.tool,
    outcome: o.outcome,
    action: o.action,
    rationale: o.rationale,
    approval: o.approval,
    tokens: o.tokens,
    cost_usd: o.cost_usd === null ? null : usd(o.cost_usd),
    latency_ms: o.latency_ms,
  };
}

export function buildReport(options: {
  policies: readonly Policy[];
  events: readonly Rehearsed[];
  stopped: StopReason | null;
  source: Record<string, unknown>;
  now?: Date;
}): Report {
  const { policies, events } = options;
  const primary = summarize(policies[0]!, events, 0);
  const decisions: DecisionRow[] = events
    .filter((e) => policies.some((_, i) => e.outcomes[i]!.outcome !== 'unmapped'))
    .map((e) => {
      // The facts of whichever config maps the event (amount and currency are common facts).
      const mapped = e.outcomes.find((o) => o.outcome !== 'unmapped') ?? e.outcomes[0]!;
      const decision: DecisionRow = {
        event_id: e.id,
        type: e.type,
        created: new Date(e.created * 1000).toISOString(),
        amount: mapped.amount,
        currency: mapped.currency,
        amount_display: formatAmountOrNull(mapped.amount, mapped.currency),
        ...row(e.outcomes[0]!),
      };
      if (policies.length > 1) decision.compare = row(e.outcomes[1]!);
      return decision;
    });
  const report: Report = {
    version: 1,
    generated_at: (options.now ?? new Date()).toISOString(),
    source: options.source,
    ...primary,
    stopped: options.stopped,
    decisions,
  };
  if (policies.length > 1) {
    const other = summarize(policies[1]!, events, 1);
    const differences: Difference[] = [];
    let same = 0;
    for (const e of events) {
      const a = e.outcomes[0]!;
      const b = e.outcomes[1]!;
      if (a.outcome === 'unmapped' && b.outcome === 'unmapped') continue;
      if (a.tool === b.tool && a.action === b.action) {
        same += 1;
        continue;
      }
      differences.push({
        event_id: e.id,
        type: e.type,
        primary: { tool: a.tool, action: a.action, approval: a.approval !== null },
        compare: { tool: b.tool, action: b.action, approval: b.approval !== null },
      });
    }
    report.compare = {
      ...other,
      differ: differences.length,
      same,
      differences,
      cost_difference_usd:
        other.cost_usd === null || primary.cost_usd === null
          ? null
          : usd(other.cost_usd - primary.cost_usd),
    };
  }
  return report;
}

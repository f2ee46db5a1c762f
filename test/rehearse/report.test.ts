import { describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/catalog/catalog.js';
import { renderHtml } from '../../src/rehearse/html.js';
import { escapeHtml as esc } from '../../src/html.js';
import { buildReport, percentile } from '../../src/rehearse/report.js';
import type { Outcome, Policy, Rehearsed } from '../../src/rehearse/run.js';

const policy = (model: string, price: Policy['price']): Policy => ({
  label: `${model}.json`,
  catalog: createCatalog(),
  model,
  approval: { tools: ['handle_dispute'] },
  price,
  redact: [],
  maxTurns: 4,
  maxTokens: 1024,
});

function outcome(partial: Partial<Outcome>): Outcome {
  return {
    outcome: 'decided',
    tool: 'handle_dispute',
    action: 'accept',
    rationale: 'ok',
    approval: null,
    amount: null,
    currency: null,
    tokens: { input: 100, output: 10 },
    cost_usd: 0.0003,
    latency_ms: 100,
    calls: 1,
    ...partial,
  };
}

describe('the rehearsal report', () => {
  it('takes nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5], 95)).toBe(5);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 95)).toBe(95);
  });

  it('counts per tool and outcome, and lists where two configs differ', () => {
    const events: Rehearsed[] = [
      {
        id: 'evt_1',
        type: 'charge.dispute.created',
        created: 1_796_000_000,
        outcomes: [
          outcome({ approval: 'approval required for handle_dispute' }),
          outcome({ action: 'escalate_to_human', cost_usd: 0.0001, latency_ms: 300 }),
        ],
      },
      {
        id: 'evt_2',
        type: 'customer.subscription.deleted',
        created: 1_796_000_100,
        outcomes: [
          outcome({ tool: 'churn_outreach', outcome: 'no_action', action: 'no_action' }),
          outcome({ tool: 'churn_outreach', outcome: 'no_action', action: 'no_action' }),
        ],
      },
    ];
    const report = buildReport({
      policies: [
        policy('claude-sonnet-5-5', { input_per_mtok: 2, output_per_mtok: 10 }),
        policy('claude-unknown', null),
      ],
      events,
      stopped: null,
      source: { kind: 'store' },
    });
    expect(report).toMatchObject({
      events: 2,
      decided: 1,
      no_action: 1,
      ask_a_person: 0,
      invalid: 0,
      approvals: 1,
      tokens: { input: 200, output: 20 },
      cost_usd: 0.0006,
      latency_ms: { p50: 100, p95: 100 },
      by_tool: {
        handle_dispute: { events: 1, actions: { accept: 1 } },
        churn_outreach: { events: 1, actions: { no_action: 1 } },
      },
    });
    expect(report.compare).toMatchObject({
      differ: 1,
      same: 1,
      cost_usd: null,
      cost_difference_usd: null,
    });
    expect(report.compare!.cost_note).toMatch(/claude-unknown/);
    expect(report.compare!.differences).toEqual([
      {
        event_id: 'evt_1',
        type: 'charge.dispute.created',
        primary: { tool: 'handle_dispute', action: 'accept', approval: true },
        compare: { tool: 'handle_dispute', action: 'escalate_to_human', approval: false },
      },
    ]);
    const html = renderHtml(report);
    expect(html).toContain('Cost: not available');
    expect(html).not.toMatch(/<script|https?:\/\//i);
  });

  it('shows each amount in its currency, keeps the integer in the JSON, and states the thresholds', () => {
    const gated: Policy = {
      ...policy('claude-sonnet-5-5', { input_per_mtok: 2, output_per_mtok: 10 }),
      approval: { amount_over: { usd: 50_000, jpy: 75_000 } },
    };
    const report = buildReport({
      policies: [gated],
      events: [
        {
          id: 'evt_usd',
          type: 'charge.dispute.created',
          created: 1_796_000_000,
          outcomes: [
            outcome({
              amount: 412_000,
              currency: 'usd',
              approval: '$4,120.00 is over the $500.00 threshold for usd',
            }),
          ],
        },
        {
          id: 'evt_jpy',
          type: 'charge.dispute.created',
          created: 1_796_000_100,
          outcomes: [outcome({ amount: 50_000, currency: 'jpy' })],
        },
      ],
      stopped: null,
      source: { kind: 'store' },
    });
    expect(report.decisions.map((d) => [d.amount, d.currency, d.amount_display])).toEqual([
      [412_000, 'usd', '$4,120.00'],
      [50_000, 'jpy', '¥50,000'],
    ]);
    expect(report.approvals).toBe(1);
    const html = renderHtml(report);
    expect(html).toContain('<td class="amount">$4,120.00</td>');
    expect(html).toContain('<td class="amount">¥50,000</td>');
    expect(html).toContain('$4,120.00 is over the $500.00 threshold for usd');
    expect(html).toContain('over $500.00 (usd), ¥75,000 (jpy); any other currency waits');
  });

  it('escapes markup and quotes', () => {
    expect(esc(`<img src=x onerror="a('b')">&`)).toBe(
      '&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/catalog/catalog.js';
import { DEFAULT_DEFINITIONS } from '../../src/catalog/definitions.js';
import { exportCatalog } from '../../src/catalog/formats.js';
import { checkPrecondition, preconditionSchema } from '../../src/catalog/precondition.js';
import { parseConfigFile } from '../../src/config/file.js';
import { ConfigError } from '../../src/errors.js';

const NOW = Date.parse('2026-12-05T12:00:00Z');
const later = NOW / 1000 + 86_400;
const earlier = NOW / 1000 - 60;

function pre(tool: string) {
  const def = DEFAULT_DEFINITIONS.find((d) => d.tool === tool);
  if (!def?.precondition) throw new Error(`no precondition for ${tool}`);
  return def.precondition;
}

describe('preconditions', () => {
  it('every built-in tool states one', () => {
    for (const def of DEFAULT_DEFINITIONS) {
      expect(def.precondition, def.tool).toBeDefined();
      expect(preconditionSchema.safeParse(def.precondition).success, def.tool).toBe(true);
    }
  });

  it('a dispute awaiting a response before its deadline holds; won or past due does not', () => {
    const dispute = {
      object: 'dispute',
      status: 'needs_response',
      evidence_details: { due_by: later },
    };
    expect(checkPrecondition(pre('handle_dispute'), dispute, NOW)).toBeNull();
    expect(checkPrecondition(pre('handle_dispute'), { ...dispute, status: 'won' }, NOW)).toBe(
      'the dispute is now won (status: won)',
    );
    expect(
      checkPrecondition(
        pre('handle_dispute'),
        { ...dispute, evidence_details: { due_by: earlier } },
        NOW,
      ),
    ).toBe("the dispute's evidence_details.due_by passed at 2026-12-05T11:59:00Z");
  });

  it('an invoice paid since says when, from its status transitions', () => {
    const invoice = { object: 'invoice', status: 'open', amount_remaining: 500 };
    expect(checkPrecondition(pre('retry_failed_payment'), invoice, NOW)).toBeNull();
    const paid = {
      ...invoice,
      status: 'paid',
      amount_remaining: 0,
      status_transitions: { paid_at: Date.parse('2026-12-05T14:02:00Z') / 1000 },
    };
    expect(checkPrecondition(pre('retry_failed_payment'), paid, NOW)).toBe(
      "the invoice is now paid since 2026-12-05T14:02:00Z (status: paid); the invoice's amount_remaining is now 0 (the action needs above 0)",
    );
  });

  it('covers subscriptions, payment intents and early-fraud warnings', () => {
    expect(
      checkPrecondition(pre('churn_outreach'), { object: 'subscription', status: 'active' }, NOW),
    ).toBe('the subscription is now active (status: active)');
    expect(
      checkPrecondition(
        pre('handle_failed_payment'),
        { object: 'payment_intent', status: 'succeeded' },
        NOW,
      ),
    ).toBe('the payment intent is now succeeded (status: succeeded)');
    expect(
      checkPrecondition(
        pre('review_fraud_warning'),
        { object: 'radar.early_fraud_warning', actionable: false },
        NOW,
      ),
    ).toBe("the early fraud warning's actionable is now false (the action needs one of true)");
    expect(
      checkPrecondition(
        pre('review_fraud_warning'),
        { object: 'radar.early_fraud_warning', actionable: true },
        NOW,
      ),
    ).toBeNull();
  });

  it('a missing field fails a comparison rather than passing it', () => {
    expect(
      checkPrecondition([{ field: 'amount_remaining', gt: 0 }], { object: 'invoice' }, NOW),
    ).toBe("the invoice's amount_remaining is now not set (the action needs above 0)");
  });
});

describe('preconditions in --config', () => {
  const config = (precondition: unknown) =>
    JSON.stringify({ events: { 'invoice.finalized': { tool: 'remind', precondition } } });

  it("a user's own tool states one; the catalog carries and exports it", () => {
    const file = parseConfigFile(config([{ field: 'status', in: ['open'] }]), 'c.json');
    const catalog = createCatalog(file.events ?? {});
    expect(catalog.lookup('invoice.finalized')?.precondition).toEqual([
      { field: 'status', in: ['open'] },
    ]);
    const entry = exportCatalog(catalog, 'json') as { tool: string; precondition: unknown }[];
    expect(entry.find((e) => e.tool === 'remind')?.precondition).toEqual([
      { field: 'status', in: ['open'] },
    ]);
  });

  it('a typo is an error naming the path', () => {
    expect(() => parseConfigFile(config([{ feild: 'status', in: ['open'] }]), 'c.json')).toThrow(
      ConfigError,
    );
    expect(() => parseConfigFile(config([{ feild: 'status', in: ['open'] }]), 'c.json')).toThrow(
      /precondition\[0\]: Unrecognized key: "feild"/,
    );
    expect(() =>
      parseConfigFile(config([{ field: 'status', in: ['open'], gt: 1 }]), 'c.json'),
    ).toThrow(/precondition\[0\].*exactly one of/);
    expect(() => parseConfigFile(config([{ field: 'Status!', in: ['open'] }]), 'c.json')).toThrow(
      /field path/,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/catalog/catalog.js';
import { checkDecision, decisionFields } from '../../src/catalog/decision-fields.js';

const catalog = createCatalog();
const dispute = catalog.lookup('charge.dispute.created')!;

describe('decisionFields', () => {
  it("lists the tool's decision schema as fields: the action as a choice, then its text fields", () => {
    const fields = decisionFields(dispute);
    expect(fields.map((f) => f.name)).toEqual(['action', 'rationale', 'evidence_summary']);
    expect(fields[0]).toMatchObject({
      kind: 'choice',
      options: ['accept', 'submit_evidence', 'escalate_to_human'],
      required: true,
    });
    expect(fields[1]).toMatchObject({ kind: 'text', required: true, long: true });
    expect(fields[2]).toMatchObject({ kind: 'text', required: false });
    expect(fields[2]!.description).toMatch(/submit_evidence/);
  });

  it('takes the fields of a tool that messages the customer', () => {
    const generic = createCatalog({ 'product.created': {} }).lookup('product.created')!;
    expect(decisionFields(generic).map((f) => f.name)).toContain('customer_message');
  });
});

describe('checkDecision', () => {
  it("accepts what the model's decision schema accepts; empty text is a field left out", () => {
    expect(
      checkDecision(dispute, { action: 'accept', rationale: ' lost cause ', evidence_summary: '' }),
    ).toEqual({ ok: true, decision: { action: 'accept', rationale: 'lost cause' } });
  });

  it('names every field that breaks the rules', () => {
    const check = checkDecision(dispute, { action: 'nuke', rationale: '', refund: '5' });
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.issues).toEqual([
      { field: 'refund', message: expect.stringMatching(/takes no field "refund"/) },
      { field: 'action', message: 'choose one of accept, submit_evidence, escalate_to_human' },
      { field: 'rationale', message: 'rationale is required' },
    ]);
  });

  it('does not take an inherited name as a field', () => {
    const check = checkDecision(dispute, { action: 'accept', rationale: 'x', toString: 'y' });
    expect(check.ok).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  failureDetail,
  failureSentence,
  MAX_DETAIL,
  type ToolProblem,
  type Turn,
} from '../../src/agent/failure-text.js';
import { createCatalog } from '../../src/catalog/catalog.js';

const catalog = createCatalog();
const dispute = catalog.lookup('charge.dispute.created')!;

/** The problem decide() records for an input its tool's schema refused. */
function invalid(schema: z.ZodType, input: unknown, tool = 'handle_dispute'): ToolProblem {
  const result = schema.safeParse(input);
  if (result.success) throw new Error('expected the input to fail');
  return { kind: 'invalid', tool, input, issues: result.error.issues };
}

const turn = (...problems: ToolProblem[]): Turn => ({ problems, stopReason: 'tool_use' });
const times = (n: number, t: Turn): Turn[] => Array.from({ length: n }, () => t);

describe('the sentence for last_error', () => {
  it('names the action the model chose and the ones it may choose', () => {
    const t = turn(invalid(dispute.decision, { action: 'nuke_it_from_orbit', rationale: 'x' }));
    expect(failureSentence(times(4, t))).toBe(
      'the model chose action "nuke_it_from_orbit"; allowed: accept, submit_evidence, escalate_to_human (4 tries)',
    );
  });

  it('names a field the model left out', () => {
    const t = turn(invalid(dispute.decision, { action: 'accept' }));
    expect(failureSentence([t])).toBe('the model left out "rationale" (1 try)');
  });

  it('names a field of the wrong type, and what the model sent instead', () => {
    const schema = z.object({ amount_cents: z.number(), note: z.string() });
    const t = turn(invalid(schema, { amount_cents: '4120.00', note: 'x' }, 'a_tool'));
    expect(failureSentence(times(2, t))).toBe(
      '"amount_cents" must be a number, the model sent a string (2 tries)',
    );
    const nulled = turn(invalid(dispute.decision, { action: 'accept', rationale: null }));
    expect(failureSentence([nulled])).toBe(
      '"rationale" must be a string, the model sent null (1 try)',
    );
  });

  it('says when the model answered without choosing an action', () => {
    const t: Turn = { problems: [], stopReason: 'end_turn', text: 'I think we should wait.' };
    expect(failureSentence(times(4, t))).toBe(
      'the model answered without choosing an action (4 tries)',
    );
    expect(failureSentence([{ problems: [], stopReason: 'max_tokens' }])).toBe(
      'the model ran out of tokens (max_tokens) before choosing an action (1 try)',
    );
  });

  it('puts several problems of the last reply in one line, and counts what it leaves out', () => {
    const mixed = turn(invalid(dispute.decision, { action: 'wire_funds' }));
    expect(failureSentence(times(3, mixed))).toBe(
      'the model chose action "wire_funds"; allowed: accept, submit_evidence, escalate_to_human; the model left out "rationale" (3 tries)',
    );
    const schema = z.object({ a: z.string(), b: z.string(), c: z.string(), d: z.string() });
    expect(failureSentence([turn(invalid(schema, {}, 't'))])).toBe(
      'the model left out "a"; the model left out "b"; the model left out "c"; and 1 more problem (1 try)',
    );
  });

  it('speaks of the last reply only: an earlier mistake the model corrected is not repeated', () => {
    const first = turn(invalid(dispute.decision, { action: 'wire_funds', rationale: 'x' }));
    const last: Turn = { problems: [], stopReason: 'end_turn' };
    expect(failureSentence([first, last])).toBe(
      'the model answered without choosing an action (2 tries)',
    );
  });

  it('reads empty text, unknown tools and values past a bound', () => {
    expect(
      failureSentence([turn(invalid(dispute.decision, { action: 'accept', rationale: '' }))]),
    ).toBe('the model left "rationale" empty (1 try)');
    expect(
      failureSentence([turn({ kind: 'unknown_tool', tool: 'refund_everything', input: {} })]),
    ).toBe('the model called "refund_everything", which is not one of its tools (1 try)');
    const bounded = z.object({ percent: z.number().max(100), list: z.array(z.string()).min(1) });
    expect(failureSentence([turn(invalid(bounded, { percent: 250, list: [] }, 'offer'))])).toBe(
      '"percent" must be at most 100, the model sent 250; "list" must have at least 1 item, the model sent 0 (1 try)',
    );
    expect(failureSentence([turn(invalid(dispute.decision, 'accept'))])).toBe(
      'the model sent a string instead of an object (1 try)',
    );
  });

  it('quotes what the model wrote bounded, and without hidden characters', () => {
    const long = `evil\u202e${'x'.repeat(500)}`;
    const sentence = failureSentence([turn(invalid(dispute.decision, { action: long }))]);
    expect(sentence).not.toContain('\u202e');
    expect(sentence.length).toBeLessThan(220);
    expect(sentence).toMatch(/^the model chose action "evilx+…"; allowed: /);
  });
});

describe('the detail for the history', () => {
  it('keeps every request: the call, the input and zod’s own words', () => {
    const bad = turn(invalid(dispute.decision, { action: 'nuke_it_from_orbit', rationale: 'x' }));
    const stop: Turn = { problems: [], stopReason: 'end_turn', text: 'Hmm.' };
    const detail = failureDetail([bad, stop]);
    expect(detail.split('\n')).toEqual([
      'request 1: handle_dispute({"action":"nuke_it_from_orbit","rationale":"x"}) → action: Invalid option: expected one of "accept"|"submit_evidence"|"escalate_to_human" [invalid_value]',
      'request 2: no tool call (stop_reason end_turn); it wrote: Hmm.',
    ]);
  });

  it('is bounded, the earliest requests giving way to the last', () => {
    const big = turn(invalid(dispute.decision, { action: 'nope', rationale: 'r'.repeat(3000) }));
    const detail = failureDetail(times(10, big));
    expect(detail.length).toBeLessThanOrEqual(MAX_DETAIL);
    expect(detail).toMatch(/^\(\d+ earlier requests left out\)\n/);
    expect(detail).toContain('request 10: handle_dispute(');
  });
});

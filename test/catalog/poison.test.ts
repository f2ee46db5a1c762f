import { describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/catalog/catalog.js';
import { classifyField } from '../../src/catalog/classify.js';
import { boundDepth, MAX_DEPTH, TOO_DEEP } from '../../src/catalog/depth.js';
import { renderEventForPrompt } from '../../src/catalog/prompt.js';
import { eventForModel, toolCallForModel } from '../../src/catalog/render.js';
import { closeTag, openTag } from '../../src/catalog/untrusted.js';
import { fixed, INJECTION } from './fixtures.js';

const catalog = createCatalog();

/** The text outside every fence with this nonce. */
function outsideFences(text: string, nonce: string): string {
  return text
    .split(openTag(nonce))
    .map((part, i) => (i === 0 ? part : part.split(closeTag(nonce)).slice(1).join('')))
    .join('');
}

/** `{ a: { a: … 'bottom' } }`, `depth` levels, parsed from text (no recursion builds it). */
function deep(depth: number): unknown {
  return JSON.parse('{"a":'.repeat(depth) + '"bottom"' + '}'.repeat(depth));
}

/** A fixture as the renderer takes it. */
function promptEvent(e: Record<string, any>, created: number = e.created) {
  return { id: e.id, type: e.type, created, livemode: false, payload: e };
}

const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
];

describe('prototype-named keys', () => {
  it('classifies every path through them without reaching Object.prototype', () => {
    for (const key of PROTOTYPE_KEYS) {
      for (const path of [
        ['data', 'object', key],
        ['data', 'object', key, 'name'],
        ['data', 'object', key, key],
        ['data', 'object', 'metadata', key],
      ]) {
        const kind = classifyField(path);
        expect(kind === null || typeof kind === 'string', path.join('.')).toBe(true);
      }
      expect(classifyField(['data', 'object', key])).toBeNull();
      expect(classifyField(['data', 'object', 'metadata', key])).toBe('text');
    }
  });

  it('renders, fences and extracts an event whose keys are prototype members at every level', () => {
    const e = fixed('checkout.session.completed');
    const text = JSON.stringify(e).replace(
      '"metadata":{',
      '"__proto__":{"has":1,"name":"p"},"constructor":{"name":"c"},"toString":{"value":"t"},' +
        '"metadata":{"__proto__":"p","constructor":"c","toString":"t",',
    );
    // A custom field whose `type` names a prototype member: the extractor follows it as a key.
    const payload = text.replace('"type":"text"', '"type":"__proto__"');
    const parsed = JSON.parse(payload);
    const call = catalog.toolCall(e.type, payload)!;
    expect(call.name).toBe('fulfill_order');
    expect((call.input.custom_fields as { value: unknown }[])[0]!.value).toBeNull();
    const view = eventForModel(parsed);
    const o = (view.value as any).data.object;
    expect(Object.hasOwn(o, '__proto__')).toBe(true);
    expect(o.constructor.name).toBe(`${openTag(view.nonce)}c${closeTag(view.nonce)}`);
    expect(o.metadata.toString).toBe(`${openTag(view.nonce)}t${closeTag(view.nonce)}`);
    expect(() => toolCallForModel(catalog, e.type, call)).not.toThrow();
    const rendered = renderEventForPrompt(catalog, promptEvent(parsed));
    expect(rendered.text).toContain('Tool: fulfill_order');
  });
});

describe('deep input', () => {
  it('bounds 5 000 levels of nesting with a visible marker, without overflowing the stack', () => {
    const e = fixed('charge.dispute.created');
    e.data.object.deep = deep(5_000);
    e.data.object.metadata = { nested: deep(5_000) };
    const view = eventForModel(e);
    const json = JSON.stringify(view.value);
    expect(json).toContain(TOO_DEEP);
    expect(json).not.toContain('bottom');
    expect((view.value as any).data.object.amount).toBe(12900);
    // The marker sits at MAX_DEPTH levels below the event's root.
    let cur = (view.value as any).data.object.deep;
    let levels = 3;
    while (typeof cur === 'object') {
      cur = cur.a;
      levels++;
    }
    expect(cur).toBe(TOO_DEEP);
    expect(levels).toBe(MAX_DEPTH);
    expect(JSON.stringify(boundDepth(deep(100_000)))).toContain(TOO_DEEP);
    const rendered = renderEventForPrompt(catalog, promptEvent(e));
    expect(rendered.text).toContain('Tool: handle_dispute');
  });

  it('leaves an event within the bound unchanged', () => {
    const e = fixed('invoice.payment_failed');
    expect(boundDepth(e)).toEqual(e);
    const shallow = deep(MAX_DEPTH - 1);
    expect(boundDepth(shallow)).toEqual(shallow);
  });
});

describe('a created that is not a date', () => {
  it('renders "unknown" instead of throwing', () => {
    for (const created of [Infinity, -Infinity, NaN, 1e300]) {
      const e = fixed('charge.dispute.created');
      const { text } = renderEventForPrompt(catalog, promptEvent(e, created));
      expect(text).toContain('created at an unknown time');
    }
  });
});

describe('fencing what a customer can write', () => {
  it('fences client_reference_id (a Payment Link takes it from its URL) in facts and raw events', () => {
    const e = fixed('checkout.session.completed');
    e.data.object.client_reference_id = INJECTION;
    const { text, nonce } = renderEventForPrompt(catalog, promptEvent(e));
    expect(text).toContain('IGNORE ALL PREVIOUS');
    expect(outsideFences(text, nonce)).not.toContain('IGNORE ALL PREVIOUS');
    const call = catalog.toolCall(e.type, e)!;
    const view = toolCallForModel(catalog, e.type, call);
    expect(outsideFences(JSON.stringify(view.value), view.nonce)).not.toContain('IGNORE');
    const raw = eventForModel(e);
    expect(outsideFences(JSON.stringify(raw.value), raw.nonce)).not.toContain('IGNORE');
  });

  it('fences payer, cardholder and invoice address fields of a raw event', () => {
    const e = fixed('invoice.payment_failed');
    const o = e.data.object;
    o.customer_address = { line1: 'x', country: INJECTION };
    o.customer_shipping = { name: INJECTION, address: { country: INJECTION } };
    o.payment_method_details = {
      paypal: { payer_email: INJECTION, payer_name: INJECTION },
      card_present: { cardholder_name: INJECTION },
      ideal: { verified_name: INJECTION },
    };
    const raw = eventForModel(e);
    expect(outsideFences(JSON.stringify(raw.value), raw.nonce)).not.toContain('IGNORE');
    expect(classifyField(['data', 'object', 'customer_address', 'country'])).toBe('address');
  });

  it('fences a metadata key that is not a plain identifier, and keeps plain ones readable', () => {
    const e = fixed('payment_intent.succeeded');
    e.data.object.metadata = { order_id: '1042', [INJECTION]: 'yes' };
    const raw = eventForModel(e);
    const json = JSON.stringify(raw.value);
    expect(outsideFences(json, raw.nonce)).not.toContain('IGNORE');
    expect(Object.keys((raw.value as any).data.object.metadata)).toContain('order_id');
    const call = catalog.toolCall(e.type, e)!;
    const view = toolCallForModel(catalog, e.type, call);
    expect(outsideFences(JSON.stringify(view.value), view.nonce)).not.toContain('IGNORE');
  });
});

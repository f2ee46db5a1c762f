import { describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/catalog/catalog.js';
import { amountForModel, naivePrompt, renderEventForPrompt } from '../../src/catalog/prompt.js';
import { eventForModel, toolCallForModel } from '../../src/catalog/render.js';
import { cleanText, closeTag, fence, openTag } from '../../src/catalog/untrusted.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { fixed, INJECTION, injectedDispute } from './fixtures.js';

const catalog = createCatalog();

function render(
  event: Record<string, any>,
  redact: ('email' | 'phone' | 'address' | 'name')[] = [],
) {
  return renderEventForPrompt(
    catalog,
    {
      id: event.id,
      type: event.type,
      created: event.created,
      livemode: event.livemode,
      payload: event,
    },
    { redact },
  );
}

/** The text outside every fence with this nonce. */
function outsideFences(text: string, nonce: string): string {
  return text
    .split(openTag(nonce))
    .map((part, i) => (i === 0 ? part : part.split(closeTag(nonce)).slice(1).join('')))
    .join('');
}

describe('prompt injection', () => {
  it('keeps customer-written text inside one fence and changes no fact', () => {
    const clean = fixed('charge.dispute.created');
    const hostile = injectedDispute();
    const facts = catalog.toolCall(hostile.type, hostile)!.input;
    const cleanFacts = catalog.toolCall(clean.type, clean)!.input;
    for (const key of [
      'stripe_id',
      'amount',
      'currency',
      'customer',
      'reason',
      'charge',
      'status',
      'evidence_due_by',
    ]) {
      expect(facts[key], key).toEqual(cleanFacts[key]);
    }
    const { text, nonce } = render(hostile);
    expect(text.split(openTag(nonce))).toHaveLength(2);
    expect(text.split(closeTag(nonce))).toHaveLength(2);
    const outside = outsideFences(text, nonce);
    expect(outside).not.toContain('IGNORE ALL PREVIOUS');
    expect(outside).not.toContain('acct_attacker');
    expect(outside).not.toContain('999999');
    expect(outside).toContain('amount: 12900 (= $129.00 usd)');
    // The fake closing tags are inside, as data.
    const inside = text.slice(text.indexOf(openTag(nonce)), text.indexOf(closeTag(nonce)));
    expect(inside).toContain('</untrusted-data>');
    expect(inside).toContain('IGNORE ALL PREVIOUS');
  });

  it('fences every customer-written value of a tool call shown to a model', () => {
    const hostile = injectedDispute();
    const call = catalog.toolCall(hostile.type, hostile)!;
    const view = toolCallForModel(catalog, hostile.type, call);
    const json = JSON.stringify(view.value);
    expect(outsideFences(json, view.nonce)).not.toContain('IGNORE ALL PREVIOUS');
    expect(view.value.input.amount).toBe(12900);
    expect(view.notice).toContain(`untrusted-data-${view.nonce}`);
  });

  it('fences customer-written strings of a whole event as received, leaving ids and amounts readable', () => {
    const hostile = injectedDispute();
    const view = eventForModel(hostile);
    const json = JSON.stringify(view.value);
    expect(outsideFences(json, view.nonce)).not.toContain('IGNORE ALL PREVIOUS');
    const o = (view.value as any).data.object;
    expect(o.amount).toBe(12900);
    expect(o.id).toBe(hostile.data.object.id);
    expect(o.reason).toBe('fraudulent');
    expect(o.evidence.customer_name.startsWith(openTag(view.nonce))).toBe(true);
  });

  it('fences the checkout custom fields and metadata', () => {
    const e = fixed('checkout.session.completed');
    e.data.object.custom_fields[0].text.value = INJECTION;
    const { text, nonce } = render(e);
    expect(outsideFences(text, nonce)).not.toContain('IGNORE ALL PREVIOUS');
    expect(text).toContain('IGNORE ALL PREVIOUS');
  });
});

describe('redaction', () => {
  it('replaces emails, phones, addresses and names before a model sees them', () => {
    const e = fixed('checkout.session.completed');
    const { text } = render(e, ['email', 'phone', 'address', 'name']);
    expect(text).not.toContain('maya.okafor@example.com');
    expect(text).not.toContain('+15035550147');
    expect(text).not.toContain('Larkspur');
    expect(text).toContain('[redacted email]');
    expect(text).toContain('[redacted address]');
    const call = catalog.toolCall(e.type, e)!;
    const view = toolCallForModel(catalog, e.type, call, { redact: ['email'] });
    expect(view.value.input.customer_email).toBe('[redacted email]');
    // The facts for handlers are never redacted.
    expect(call.input.customer_email).toBe('maya.okafor@example.com');
    const raw = JSON.stringify(eventForModel(e, { redact: ['email', 'name'] }).value);
    expect(raw).not.toContain('maya.okafor@example.com');
  });
});

describe('hostile encodings', () => {
  it('removes control characters, repairs lone surrogates and truncates visibly', () => {
    expect(cleanText('a\u0000b\u001bc\u202Ed')).toBe('abcd');
    expect(cleanText('x\ud83dy').isWellFormed()).toBe(true);
    expect(cleanText('😀'.repeat(600))).toMatch(/^(😀){500}…\[truncated: 100 more characters\]$/);
    expect(fence('hi', 'n0')).toBe('<untrusted-data-n0>hi</untrusted-data-n0>');
  });

  it('handles NUL, lone surrogates, __proto__ keys, emoji and 100k-character strings without crashing', () => {
    const e = fixed('checkout.session.completed');
    const payload = JSON.stringify(e)
      .replace(
        '"order_id":"1042"',
        '"__proto__":"polluted","nested":{"__proto__":{"isAdmin":true}},"nul":"a\\u0000b","lone":"\\ud83d","constructor":"x","order_id":"1042"',
      )
      .replaceAll('"Maya Okafor"', `"🐛 ${'ü'.repeat(100_000)}"`);
    const call = catalog.toolCall(e.type, payload)!;
    const metadata = call.input.metadata as Record<string, unknown>;
    expect(Object.keys(metadata)).toEqual(
      expect.arrayContaining(['__proto__', 'nul', 'lone', 'constructor']),
    );
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    const { text } = renderEventForPrompt(catalog, {
      ...e,
      id: e.id,
      type: e.type,
      created: e.created,
      livemode: false,
      payload,
    });
    expect(text.isWellFormed()).toBe(true);
    expect(text).not.toContain('\u0000');
    expect(text).toContain('[truncated: ');
    expect(text.length).toBeLessThan(10_000);
    const view = JSON.stringify(eventForModel(JSON.parse(payload)).value);
    expect(view).not.toContain('\\u0000');
  });
});

describe('compact rendering', () => {
  it('keeps every fact the tool needs and is far smaller than the whole-object dump', () => {
    let ours = 0;
    let naive = 0;
    for (const def of catalog.entries()) {
      const e = fixed(def.type);
      const { text } = render(e);
      const facts = catalog.toolCall(def.type, e)!.input;
      for (const [key, value] of Object.entries(facts)) {
        if (value === null || (Array.isArray(value) && value.length === 0)) {
          expect(text, `${def.type} ${key}`).toMatch(new RegExp(`not set: .*\\b${key}\\b`));
        } else if (key === 'currency') {
          // Beside an amount (`amount: 12900 (= $129.00 usd)`), or on its own line without one.
          expect(text, `${def.type} currency`).toMatch(
            new RegExp(`\\(= [^)\\n]* ${String(value)}\\)|^currency: ${String(value)}$`, 'm'),
          );
        } else {
          expect(text, `${def.type} ${key}`).toContain(`${key}: `);
        }
      }
      ours += text.length;
      naive += naivePrompt(e.type, e.data.object).length;
    }
    // The benchmark reports the figures; here only that the rendering is not a dump.
    expect(ours).toBeLessThan(naive);
  });

  it('shows the model each amount as the integer the call carries and in its currency', () => {
    expect(amountForModel(412000, 'usd')).toBe('412000 (= $4,120.00 usd)');
    expect(amountForModel(500, 'jpy')).toBe('500 (= ¥500 jpy)');
    expect(amountForModel(1234, 'kwd')).toBe('1234 (= KWD 1.234 kwd)');
    const event = buildTestEvent('charge.dispute.created');
    const dispute = (event.data as { object: Record<string, unknown> }).object;
    dispute.amount = 50000;
    dispute.currency = 'jpy';
    const { text } = renderEventForPrompt(catalog, {
      id: String(event.id),
      type: 'charge.dispute.created',
      created: Number(event.created),
      livemode: false,
      payload: event,
    });
    expect(text).toContain('amount: 50000 (= ¥50,000 jpy)');
    // The currency is said beside the amount, not on a line of its own.
    expect(text).not.toMatch(/^currency:/m);
  });
});

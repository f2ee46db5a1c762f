import type { Catalog } from './catalog.js';

export interface ToolCall {
  name: string;
  input: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

/** Which field carries the money for each kind of object. */
const AMOUNT_FIELD: Record<string, string> = {
  dispute: 'amount',
  invoice: 'amount_due',
  charge: 'amount_refunded',
  payment_intent: 'amount',
  'checkout.session': 'amount_total',
};

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function obj(value: unknown): Obj | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Obj)
    : null;
}

/** An expandable reference is either an id or the expanded object with an id. */
function refId(value: unknown): string | null {
  return str(value) ?? str(obj(value)?.id);
}

function subscriptionRecurringTotal(sub: Obj): number | null {
  const items = obj(sub.items)?.data;
  if (!Array.isArray(items) || items.length === 0) return null;
  let total = 0;
  for (const item of items) {
    const price = obj(obj(item)?.price);
    const unit = num(price?.unit_amount);
    const quantity = num(obj(item)?.quantity) ?? 1;
    if (unit === null) return null;
    total += unit * quantity;
  }
  return total;
}

function reasonOf(o: Obj): string | null {
  return (
    str(o.reason) ??
    str(obj(o.cancellation_details)?.reason) ??
    str(obj(o.last_payment_error)?.decline_code) ??
    str(obj(o.last_payment_error)?.code) ??
    str(o.fraud_type) ??
    null
  );
}

/**
 * The facts every tool input carries, extracted deterministically from the event's object: no
 * model is involved in building a tool call. Null where the object has no such field.
 */
export function commonFacts(object: Obj): Record<string, unknown> {
  const kind = str(object.object) ?? '';
  const amountField = AMOUNT_FIELD[kind];
  const amount =
    kind === 'subscription'
      ? subscriptionRecurringTotal(object)
      : amountField
        ? num(object[amountField])
        : num(object.amount);
  return {
    stripe_id: str(object.id),
    amount,
    currency: str(object.currency),
    customer: refId(object.customer),
    reason: reasonOf(object),
  };
}

/** The tool call an event maps to in `catalog`, or null for an unmapped type. */
export function toolCallFor(catalog: Catalog, type: string, payload: string): ToolCall | null {
  const entry = catalog.lookup(type);
  if (!entry) return null;
  let object: Obj = {};
  try {
    object = obj(obj(obj(JSON.parse(payload) as unknown)?.data)?.object) ?? {};
  } catch {
    // A stored payload was verified JSON on arrival; an unreadable one still maps to its tool.
  }
  return { name: entry.tool, input: commonFacts(object) };
}

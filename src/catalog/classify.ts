import type { UntrustedKind } from './untrusted.js';

/**
 * Which fields of a raw Stripe object hold customer-written (or customer-supplied) text. Used to
 * fence a whole event "as received" before a model reads it. Stripe's own enums, ids, amounts and
 * timestamps stay as they are so the model can still read the facts.
 *
 * The tables are Maps and Sets, never plain objects: the keys looked up are the event's own keys,
 * and a key such as `__proto__` or `constructor` must not find Object.prototype's members.
 */
const BY_KEY = new Map<string, UntrustedKind>([
  ['email', 'email'],
  ['customer_email', 'email'],
  ['receipt_email', 'email'],
  ['customer_email_address', 'email'],
  ['billing_email', 'email'],
  ['payer_email', 'email'],
  ['instructions_email', 'email'],
  ['phone', 'phone'],
  ['customer_phone', 'phone'],
  ['name', 'name'],
  ['customer_name', 'name'],
  ['billing_name', 'name'],
  ['payer_name', 'name'],
  ['verified_name', 'name'],
  ['cardholder_name', 'name'],
  ['account_holder_name', 'name'],
  ['individual_name', 'name'],
  ['business_name', 'name'],
  ['description', 'text'],
  ['product_description', 'text'],
  ['comment', 'text'],
  ['footer', 'text'],
  ['memo', 'text'],
  // A Payment Link takes it from its URL (`?client_reference_id=…`): whoever holds the link sets it.
  ['client_reference_id', 'text'],
  ['statement_descriptor', 'text'],
  ['statement_descriptor_suffix', 'text'],
  ['calculated_statement_descriptor', 'text'],
  ['uncategorized_text', 'text'],
  ['cancellation_rebuttal', 'text'],
  ['customer_communication', 'text'],
  ['duplicate_charge_explanation', 'text'],
  ['refund_refusal_explanation', 'text'],
  ['access_activity_log', 'text'],
  ['shipping_carrier', 'text'],
  ['shipping_tracking_number', 'text'],
  ['customer_purchase_ip', 'text'],
  ['customer_signature', 'text'],
  ['label', 'text'],
  ['value', 'text'],
  ['custom', 'text'],
  ['line1', 'address'],
  ['line2', 'address'],
  ['city', 'address'],
  ['state', 'address'],
  ['postal_code', 'address'],
  ['billing_address', 'address'],
  ['shipping_address', 'address'],
]);

/** Containers whose every string value (and, when not a plain identifier, key) is customer-supplied. */
const ALL_STRINGS_UNDER = new Set([
  'metadata',
  'custom_fields',
  'evidence',
  'address',
  'shipping',
  'shipping_details',
  'customer_address',
  'customer_shipping',
  'customer_details',
  'customer_tax_ids',
  'billing_details',
  'payer_details',
]);

/** Containers of a postal address: their strings are `address` for `--redact`. */
const ADDRESS_UNDER = new Set([
  'address',
  'shipping',
  'shipping_details',
  'customer_address',
  'customer_shipping',
]);

/** Keys that look customer-written but are Stripe enums or ids. */
const TRUSTED_UNDER = new Map<string, Set<string>>([
  ['cancellation_details', new Set(['reason', 'feedback'])],
]);

export function classifyField(path: readonly string[]): UntrustedKind | null {
  const key = path.at(-1) ?? '';
  const parent = path.at(-2) ?? '';
  if (TRUSTED_UNDER.get(parent)?.has(key)) return null;
  const direct = BY_KEY.get(key);
  if (direct) return direct;
  if (underCustomerContainer(path.slice(0, -1))) {
    return path.some((segment) => ADDRESS_UNDER.has(segment)) ? 'address' : 'text';
  }
  return null;
}

/** Whether an object at `path` is (inside) a container whose keys a customer may choose. */
export function underCustomerContainer(path: readonly string[]): boolean {
  return path.some((segment) => ALL_STRINGS_UNDER.has(segment));
}

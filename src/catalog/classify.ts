import type { UntrustedKind } from './untrusted.js';

/**
 * Which fields of a raw Stripe object hold customer-written (or customer-supplied) text. Used to
 * fence a whole event "as received" before a model reads it. Stripe's own enums, ids, amounts and
 * timestamps stay as they are so the model can still read the facts.
 */
const BY_KEY: Record<string, UntrustedKind> = {
  email: 'email',
  customer_email: 'email',
  receipt_email: 'email',
  customer_email_address: 'email',
  billing_email: 'email',
  phone: 'phone',
  customer_phone: 'phone',
  name: 'name',
  customer_name: 'name',
  billing_name: 'name',
  description: 'text',
  product_description: 'text',
  comment: 'text',
  footer: 'text',
  memo: 'text',
  statement_descriptor: 'text',
  statement_descriptor_suffix: 'text',
  uncategorized_text: 'text',
  cancellation_rebuttal: 'text',
  customer_communication: 'text',
  duplicate_charge_explanation: 'text',
  refund_refusal_explanation: 'text',
  access_activity_log: 'text',
  shipping_carrier: 'text',
  shipping_tracking_number: 'text',
  customer_purchase_ip: 'text',
  customer_signature: 'text',
  label: 'text',
  value: 'text',
  custom: 'text',
  line1: 'address',
  line2: 'address',
  city: 'address',
  state: 'address',
  postal_code: 'address',
  billing_address: 'address',
  shipping_address: 'address',
};

/** Containers whose every string value is customer-supplied, whatever the key. */
const ALL_STRINGS_UNDER = new Set([
  'metadata',
  'custom_fields',
  'evidence',
  'address',
  'shipping',
  'customer_details',
  'billing_details',
]);

/** Keys that look customer-written but are Stripe enums or ids. */
const TRUSTED_UNDER: Record<string, Set<string>> = {
  cancellation_details: new Set(['reason', 'feedback']),
};

export function classifyField(path: readonly string[]): UntrustedKind | null {
  const key = path.at(-1) ?? '';
  const parent = path.at(-2) ?? '';
  if (TRUSTED_UNDER[parent]?.has(key)) return null;
  const direct = BY_KEY[key];
  if (direct) return direct;
  if (path.slice(0, -1).some((segment) => ALL_STRINGS_UNDER.has(segment))) {
    return path.includes('address') || path.includes('shipping') ? 'address' : 'text';
  }
  return null;
}

import type { ToolCall } from '../catalog/catalog.js';
import { amountThresholds, type ConfigFile } from '../config/file.js';
import { formatAmount } from '../money.js';

/**
 * The config's `approval`: tools that always wait, and per-currency amount thresholds. The old
 * single number is accepted here too (as the config file reads it: USD only), for callers that
 * build settings in code.
 */
export type ApprovalSettings = Omit<NonNullable<ConfigFile['approval']>, 'amount_over'> & {
  amount_over?: number | Record<string, number>;
};

/**
 * Why a decided call must wait for a person, or null. Pure, so the live loop and `rehearse`
 * apply the very same rule (rehearse's `approvals` count is this rule's): a tool listed in
 * `approval.tools`, or an `amount` (minor units) over the threshold `approval.amount_over` sets
 * for the call's currency.
 *
 * Thresholds are per currency because an amount means nothing without one: 50000 is $500.00 or
 * ¥50,000. A call with an amount in a currency that has no threshold is held (fail safe): the
 * loop cannot tell whether it is large, and a person can, with a reason that says which key to
 * add. An amount of 0 or below is over no threshold in any currency, so it is never held for it;
 * a call without an amount has nothing to gate. With no `amount_over` at all, amounts gate
 * nothing (as before).
 */
export function approvalReason(
  call: ToolCall,
  approval: ApprovalSettings | undefined,
): string | null {
  const rule = approval ?? {};
  if (rule.tools?.includes(call.name)) return `approval required for ${call.name}`;
  if (rule.amount_over === undefined) return null;
  const amount = call.input.amount;
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount <= 0) return null;
  const raw = call.input.currency;
  const currency = typeof raw === 'string' && /^[a-z]{3}$/i.test(raw) ? raw.toLowerCase() : null;
  if (currency === null) {
    return `amount ${amount} has no currency code, so no approval threshold applies: held`;
  }
  const thresholds = amountThresholds(rule.amount_over);
  // Own keys only: a currency code is never looked up through Object.prototype.
  const threshold = Object.hasOwn(thresholds, currency) ? thresholds[currency] : undefined;
  if (threshold === undefined) {
    return `no approval threshold is set for ${currency}: held (set approval.amount_over.${currency})`;
  }
  if (amount > threshold) {
    return `${formatAmount(amount, currency)} is over the ${formatAmount(threshold, currency)} threshold for ${currency}`;
  }
  return null;
}

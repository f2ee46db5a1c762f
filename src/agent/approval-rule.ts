import type { ToolCall } from '../catalog/catalog.js';
import type { ConfigFile } from '../config/file.js';

export type ApprovalSettings = NonNullable<ConfigFile['approval']>;

/**
 * Why a decided call must wait for a person, or null. Pure, so the live loop and `rehearse`
 * apply the very same rule: a tool listed in `approval.tools`, or an `amount` (smallest currency
 * unit) over `approval.amount_over`.
 */
export function approvalReason(
  call: ToolCall,
  approval: ApprovalSettings | undefined,
): string | null {
  const rule = approval ?? {};
  if (rule.tools?.includes(call.name)) return `approval required for ${call.name}`;
  const amount = call.input.amount;
  if (rule.amount_over !== undefined && typeof amount === 'number' && amount > rule.amount_over) {
    return `approval required: amount ${amount} is over ${rule.amount_over}`;
  }
  return null;
}

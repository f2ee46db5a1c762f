import type { EventBuffer, HistoryEntry } from '../buffer/buffer.js';
import type { ToolCall } from '../catalog/catalog.js';
import { DispatchError, dispatchAndAck, type Sink } from '../dispatch/dispatch.js';

/**
 * Decided calls that wait for a person (`approval` in the config, or the model asked for one).
 * Approving dispatches the decided call exactly as it was decided; rejecting records and acks.
 */
export interface PendingApproval {
  id: string;
  type: string;
  since: string;
  /** The decided call, or null when the model asked a person to look instead of deciding. */
  tool_call: ToolCall | null;
  reason: string | null;
}

const APPROVAL_LEASE_MS = 120_000;

function lastDecision(history: readonly HistoryEntry[]): HistoryEntry | undefined {
  return [...history].reverse().find((h) => h.kind === 'decision');
}

function lastHeld(history: readonly HistoryEntry[]): HistoryEntry | undefined {
  return [...history].reverse().find((h) => h.kind === 'held');
}

export async function listApprovals(buffer: EventBuffer, limit = 100): Promise<PendingApproval[]> {
  const page = await buffer.list({ statuses: ['awaiting_approval'], limit });
  return Promise.all(
    page.events.map(async (event) => {
      const history = await buffer.history(event.id);
      const held = lastHeld(history);
      return {
        id: event.id,
        type: event.type,
        since: held?.at ?? new Date(event.updatedAt).toISOString(),
        tool_call: lastDecision(history)?.tool_call ?? null,
        reason: held?.note ?? null,
      };
    }),
  );
}

export interface ApprovalResult {
  id: string;
  type: string;
  status: 'acked' | 'awaiting_approval';
  outcome: string;
  tool_call: ToolCall | null;
}

export async function approveAction(
  buffer: EventBuffer,
  sink: Sink,
  id: string,
  approver = `approver:${process.pid}`,
): Promise<ApprovalResult> {
  // One guarded transition: of two people approving (or one approving, one rejecting) at once,
  // exactly one gets the event; the other is refused with NotAwaitingApprovalError.
  const event = await buffer.approve(id, approver, APPROVAL_LEASE_MS);
  const token = event.leaseOwner!;
  const call = lastDecision(await buffer.history(id))?.tool_call ?? null;
  if (!call) {
    await buffer.ack(id, { token, by: approver, note: 'a person looked and approved' });
    return { id, type: event.type, status: 'acked', outcome: 'acknowledged', tool_call: null };
  }
  try {
    await dispatchAndAck(buffer, sink, event, call, token, { note: 'approved and dispatched' });
  } catch (error) {
    if (!(error instanceof DispatchError)) throw error;
    // Keep the approved call waiting: the person can approve again once the handler works.
    await buffer.hold(id, token, `approved, but dispatch failed: ${error.message}`);
    return {
      id,
      type: event.type,
      status: 'awaiting_approval',
      outcome: `dispatch failed: ${error.message}`,
      tool_call: call,
    };
  }
  return {
    id,
    type: event.type,
    status: 'acked',
    outcome: sink.kind === 'record' ? 'recorded' : 'dispatched',
    tool_call: call,
  };
}

export async function rejectAction(
  buffer: EventBuffer,
  id: string,
  reason: string,
  by = `approver:${process.pid}`,
): Promise<ApprovalResult> {
  const history = await buffer.history(id);
  // The guarded transition decides: refused unless the call still waits for approval.
  const event = await buffer.reject(id, by, reason);
  const call = lastDecision(history)?.tool_call ?? null;
  return { id, type: event.type, status: 'acked', outcome: 'rejected', tool_call: call };
}

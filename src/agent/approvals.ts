import type { EventBuffer, HistoryEntry } from '../buffer/buffer.js';
import type { ToolCall } from '../catalog/catalog.js';
import { AppError, EventNotFoundError } from '../errors.js';
import { dispatchAndAck, type Sink } from './dispatch.js';

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

async function awaiting(buffer: EventBuffer, id: string) {
  const event = await buffer.get(id);
  if (!event) throw new EventNotFoundError(id);
  if (event.status !== 'awaiting_approval') {
    throw new AppError(
      'not_awaiting_approval',
      `event ${id} is ${event.status}, not awaiting approval`,
    );
  }
  return event;
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
  await awaiting(buffer, id);
  // resume() is the one winner when two people approve at once; the other gets a clear error.
  const event = await buffer.resume(id, approver, APPROVAL_LEASE_MS);
  const call = lastDecision(await buffer.history(id))?.tool_call ?? null;
  if (!call) {
    await buffer.ack(id, 'a person looked and approved');
    return { id, type: event.type, status: 'acked', outcome: 'acknowledged', tool_call: null };
  }
  try {
    await dispatchAndAck(buffer, sink, event, call, undefined, 'approved and dispatched');
  } catch (error) {
    // Keep the approved call waiting: the person can approve again once the handler works.
    await buffer.hold(id, approver, `approved, but dispatch failed: ${(error as Error).message}`);
    return {
      id,
      type: event.type,
      status: 'awaiting_approval',
      outcome: `dispatch failed: ${(error as Error).message}`,
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
): Promise<ApprovalResult> {
  const event = await awaiting(buffer, id);
  const call = lastDecision(await buffer.history(id))?.tool_call ?? null;
  await buffer.ack(id, `rejected: ${reason}`, [
    { kind: 'decision', outcome: 'rejected', note: reason },
  ]);
  return { id, type: event.type, status: 'acked', outcome: 'rejected', tool_call: call };
}

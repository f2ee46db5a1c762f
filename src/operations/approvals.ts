import type {
  EventBuffer,
  EventOutcome,
  HistoryEntry,
  HistoryKind,
  RejectOptions,
  StoredEvent,
} from '../buffer/buffer.js';
import { APPROVED_CALL_INTERRUPTED } from '../buffer/transitions.js';
import type { Catalog, ToolCall } from '../catalog/catalog.js';
import {
  DispatchError,
  dispatchAndAck,
  type DispatchAckOptions,
  type Sink,
} from '../dispatch/dispatch.js';
import { LeaseLostError } from '../errors.js';
import { StripeReadError } from '../stripe/objects.js';
import { recordSuperseded, type Recheck } from './fresh.js';

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

/**
 * Renews an approver's claim every third of its lease while the handler has the call, so a slow
 * handler does not outlive the lease (whose expiry would have the loop dispatch the call a second
 * time). Only a dead or stalled process lets it expire. A claim lost meanwhile (a person acked)
 * aborts `signal`; any other failure is the store being down: tried again next time.
 */
export function keepClaim(
  buffer: EventBuffer,
  id: string,
  token: string,
  leaseMs: number,
): { signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  const renew = setInterval(
    () => {
      buffer.renew(id, token, leaseMs).catch((error: unknown) => {
        if (error instanceof LeaseLostError) controller.abort(error);
      });
    },
    Math.max(10, Math.floor(leaseMs / 3)),
  );
  return { signal: controller.signal, stop: () => clearInterval(renew) };
}

/** The approver's claim: renewed every third of it while the handler has the call. */
export const APPROVAL_LEASE_MS = 120_000;

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
  options: {
    leaseMs?: number;
    /** How the event ends when the call is dispatched (default `approved`; expiry: `expired`). */
    outcome?: EventOutcome;
    /** Re-read the call's object first (fresh.ts): an approval of a moot call is refused. */
    fresh?: { recheck: Recheck; catalog: Catalog };
  } = {},
): Promise<ApprovalResult> {
  const leaseMs = options.leaseMs ?? APPROVAL_LEASE_MS;
  // One guarded transition: of two people approving (or one approving, one rejecting) at once,
  // exactly one gets the event; the other is refused with NotAwaitingApprovalError.
  const event = await buffer.approve(id, approver, leaseMs);
  const token = event.leaseOwner!;
  // Renewed like a worker's claim while the handler has the call, so a slow handler does not
  // outlive the lease (whose expiry would have the loop dispatch the call a second time). Only a
  // dead or stalled process lets it expire; then the loop dispatches the approved call again
  // (approvedCall). A claim lost meanwhile (a person acked) aborts the dispatch.
  const { signal, stop } = keepClaim(buffer, id, token, leaseMs);
  try {
    const call = lastDecision(await buffer.history(id))?.tool_call ?? null;
    if (!call) {
      // Nothing to dispatch (an "ask a person" event): the person looked and closed it by hand.
      await buffer.ack(id, {
        token,
        by: approver,
        note: 'a person looked and approved',
        outcome: 'handled',
      });
      return { id, type: event.type, status: 'acked', outcome: 'acknowledged', tool_call: null };
    }
    const refused = await approvalSuperseded(buffer, event, token, approver, options.fresh);
    if (refused) return { id, type: event.type, ...refused, tool_call: call };
    const result = await dispatchApproved(buffer, sink, event, call, token, {
      signal,
      note: 'approved and dispatched',
      ...(options.outcome ? { outcome: options.outcome } : {}),
    });
    return { id, type: event.type, ...result, tool_call: call };
  } finally {
    stop();
  }
}

/**
 * The object re-read right before an approved call is carried out (it may have waited hours):
 * when its tool's precondition no longer holds, the approval is refused — the event is recorded
 * superseded, nothing dispatched — and the outcome says what changed. When Stripe cannot tell
 * (unreachable, a key without the permission), the call waits for approval again, nothing lost.
 * Null: go ahead.
 */
export async function approvalSuperseded(
  buffer: EventBuffer,
  event: StoredEvent,
  token: string,
  approver: string,
  fresh: { recheck: Recheck; catalog: Catalog } | undefined,
): Promise<ApprovedDispatch | null> {
  const def = fresh?.catalog.lookup(event.type);
  if (!fresh || !def) return null;
  let check;
  try {
    check = await fresh.recheck.check(event, def);
  } catch (error) {
    if (!(error instanceof StripeReadError)) throw error;
    await buffer.hold(event.id, token, `approved, but not carried out: ${error.message}`);
    return { status: 'awaiting_approval', outcome: `not carried out: ${error.message}` };
  }
  if (check.kind !== 'superseded') return null;
  const at = 'before carrying out the approval';
  await recordSuperseded(buffer, event.id, { token, by: approver, reason: check.reason, at });
  return {
    status: 'acked',
    outcome: `approval refused, nothing dispatched: ${check.reason}`,
  };
}

/** What became of an approved call: dispatched and acked, or waiting again (the handler failed). */
export interface ApprovedDispatch {
  status: 'acked' | 'awaiting_approval';
  outcome: string;
}

/**
 * Dispatches an approved call as the holder of claim `token` and acks, the dispatch recorded in
 * the same commit. When the handler fails the call waits for approval again, no attempt counted:
 * it was approved, so it is not the model's to decide again; the person approves once the handler
 * works. A claim lost meanwhile (`signal` aborted with LeaseLostError, or the ack refused) throws
 * LeaseLostError, with nothing held. approve_action and the agent loop (for an approved call whose
 * first dispatch was interrupted, see approvedCall) both dispatch through it.
 */
export async function dispatchApproved(
  buffer: EventBuffer,
  sink: Sink,
  event: StoredEvent,
  call: ToolCall,
  token: string,
  options: Omit<DispatchAckOptions, 'record'> & { note: string },
): Promise<ApprovedDispatch> {
  const { signal } = options;
  try {
    // `approved` unless the caller says otherwise (`decided`: a person chose the action).
    await dispatchAndAck(buffer, sink, event, call, token, {
      ...options,
      outcome: options.outcome ?? 'approved',
    });
  } catch (error) {
    // Aborted: the claim was lost (say so), or the caller is stopping (its release follows).
    if (signal?.aborted) throw signal.reason instanceof LeaseLostError ? signal.reason : error;
    if (!(error instanceof DispatchError)) throw error;
    // Keep the approved call waiting: the person can approve again once the handler works.
    await buffer.hold(event.id, token, `approved, but dispatch failed: ${error.message}`);
    return { status: 'awaiting_approval', outcome: `dispatch failed: ${error.message}` };
  }
  return { status: 'acked', outcome: sink.kind === 'record' ? 'recorded' : 'dispatched' };
}

/** What, once recorded after an approval, means the approval no longer stands. */
const ENDS_APPROVAL: ReadonlySet<HistoryKind> = new Set<HistoryKind>([
  'acked',
  'nacked',
  'dead',
  'replayed',
  'held',
  // A new decision: a person's (a reject, an ack without approving) or the model's.
  'decision',
]);

/**
 * The approved call to dispatch again for an event whose approval was interrupted (the approving
 * process died or stalled past its lease: the expiry rule put the event back to pending with
 * `last_error` starting with APPROVED_CALL_INTERRUPTED, attempts unchanged), with who approved it;
 * null for every other event. The agent loop asks right after it claims: for a call it dispatches
 * exactly that call (dispatchApproved, with its claim token; the same idempotency key as the first
 * dispatch) and asks the model nothing.
 *
 * The `last_error` check costs nothing (no read) and rules out ordinary events. It is not the
 * guard: a person's nack reason can start with the same words. The history is: the last approval
 * (`resumed`) comes after the last decision with a call, and nothing since has ended it (an ack, a
 * nack, death, a replay, another hold, a new decision).
 */
export async function approvedCall(
  buffer: EventBuffer,
  event: StoredEvent,
): Promise<{ call: ToolCall; by: string } | null> {
  if (!event.lastError?.startsWith(APPROVED_CALL_INTERRUPTED)) return null;
  const history = await buffer.history(event.id);
  const approval = history.findLastIndex((h) => h.kind === 'resumed');
  const decided = history.findLastIndex((h) => h.kind === 'decision' && h.tool_call !== undefined);
  if (approval < 0 || decided < 0 || decided > approval) return null;
  if (history.slice(approval + 1).some((h) => ENDS_APPROVAL.has(h.kind))) return null;
  return { call: history[decided]!.tool_call!, by: history[approval]!.by ?? 'a person' };
}

/** The ack note of an approved call the agent loop dispatched again after an interruption. */
export function redispatchNote(by: string): string {
  return `approved by ${by}; dispatched again after the first dispatch was interrupted`;
}

export async function rejectAction(
  buffer: EventBuffer,
  id: string,
  reason: string,
  by = `approver:${process.pid}`,
  options: RejectOptions = {},
): Promise<ApprovalResult> {
  const history = await buffer.history(id);
  // The guarded transition decides: refused unless the call still waits for approval.
  const event = await buffer.reject(id, by, reason, options);
  const call = lastDecision(history)?.tool_call ?? null;
  const outcome = options.outcome ?? 'rejected';
  return { id, type: event.type, status: 'acked', outcome, tool_call: call };
}

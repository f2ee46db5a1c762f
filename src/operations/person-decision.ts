import type { AckOptions, EventBuffer, HistoryInput, StoredEvent } from '../buffer/buffer.js';
import type { Catalog, ToolCall } from '../catalog/catalog.js';
import { checkDecision, type FieldIssue } from '../catalog/decision-fields.js';
import { cleanModelText } from '../catalog/model-text.js';
import { DispatchError, dispatchAndAck, type Sink } from '../dispatch/dispatch.js';
import {
  AppError,
  EventNotFoundError,
  LeaseLostError,
  NotAwaitingApprovalError,
} from '../errors.js';
import {
  APPROVAL_LEASE_MS,
  approvalSuperseded,
  keepClaim,
  type ApprovalResult,
} from './approvals.js';
import type { Recheck } from './fresh.js';

/**
 * "Ask a person" leads somewhere (issue #20.3): when the model handed an event to a person (held,
 * no call decided), the person decides instead — one of the tool's actions and its fields,
 * checked by the same schema as the model's decision (catalog/decision-fields.ts) and dispatched
 * through the same dispatchAndAck as an approved call — or marks it handled by hand with a note.
 * Every door (console, MCP decide_event, CLI `events decide`) calls these.
 */

/** A person's decision failed the tool's rules: each issue names its field. Nothing changed. */
export class InvalidDecisionError extends AppError {
  constructor(
    readonly tool: string,
    readonly issues: readonly FieldIssue[],
  ) {
    super(
      'invalid_decision',
      `the decision does not fit ${tool}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}. Nothing was dispatched`,
    );
  }
}

/** The event waits with a call the model decided: that call is approved or rejected instead. */
export class CallAlreadyDecidedError extends AppError {
  constructor(id: string, tool: string) {
    super(
      'call_already_decided',
      `event ${id} waits with a decided ${tool} call: approve or reject it (a person decides only where the model asked a person). Nothing was changed`,
    );
  }
}

export interface PersonDecisionRequest {
  by: string;
  action: string;
  /** The decision's other fields (rationale, customer_message, …), as the person filled them. */
  fields: Record<string, unknown>;
}

/** How a person ended an event: chose the action (decided) or did it by hand (handled). */
export type PersonOutcome = 'decided' | 'handled';

/**
 * The ack of a person's outcome: every ack in this module is built here, and only here, so a
 * person's decision ends as `decided` and a hand-handled event as `handled` (buffer.ts outcomes).
 */
function personAck(
  outcome: PersonOutcome,
  by: string,
  note: string,
): Pick<AckOptions, 'note' | 'outcome'> {
  return {
    outcome,
    note:
      outcome === 'decided'
        ? `decided by ${by} and dispatched${note ? `: ${note}` : ''}`
        : `handled by hand by ${by}: ${note}`,
  };
}

/**
 * A person's decision on an event the model handed to a person: checked, then dispatched as the
 * holder of an approver's claim (renewed while the handler runs, as for approve_action) and acked
 * with the person's decision recorded in the same commit. When the handler fails, the person's
 * call waits for approval with the failure said (approve it once the handler works): nothing the
 * person filled is lost.
 */
export async function decideByPerson(
  buffer: EventBuffer,
  sink: Sink,
  catalog: Catalog,
  id: string,
  request: PersonDecisionRequest,
  options: {
    leaseMs?: number;
    /** Re-read the object before the person's call is dispatched (fresh.ts), as for an approval. */
    fresh?: { recheck: Recheck; catalog: Catalog };
  } = {},
): Promise<ApprovalResult> {
  const leaseMs = options.leaseMs ?? APPROVAL_LEASE_MS;
  const { by } = request;
  const before = await buffer.get(id);
  if (!before) throw new EventNotFoundError(id);
  if (before.status !== 'awaiting_approval') throw new NotAwaitingApprovalError(id, before.status);
  const history = await buffer.history(id);
  const decided = [...history].reverse().find((h) => h.kind === 'decision');
  if (decided?.tool_call) throw new CallAlreadyDecidedError(id, decided.tool_call.name);
  const def = catalog.lookup(before.type);
  const facts = catalog.toolCall(before.type, before.payload);
  if (!def || !facts) {
    throw new AppError(
      'not_in_catalog',
      `event ${id} is of type ${before.type}, which maps to no tool: mark it handled instead`,
    );
  }
  const check = checkDecision(def, { ...request.fields, action: request.action });
  if (!check.ok) throw new InvalidDecisionError(def.tool, check.issues);
  const decision = Object.fromEntries(
    Object.entries(check.decision).map(([k, v]) => [
      k,
      typeof v === 'string' ? cleanModelText(v) : v,
    ]),
  );
  // The facts are the catalog's extraction, as for the model's call; only the decision is theirs.
  const call: ToolCall = { name: def.tool, input: { ...facts.input, ...decision } };
  const entry: HistoryInput = {
    kind: 'decision',
    by,
    tool_call: call,
    outcome: 'decided',
    note: 'chosen by a person, where the model asked a person',
  };

  // First the person's call becomes the event's decided call, in one guarded commit (an
  // approver's claim, then a hold recording the decision): of two people acting at once exactly
  // one gets the event, and from here the call is durable — a crash leaves it waiting, or, once
  // approved below, the agent loop dispatches exactly it again (approvedCall), like any approval.
  const recording = await buffer.approve(id, by, leaseMs);
  await buffer.hold(
    id,
    recording.leaseOwner!,
    `decided by ${by} (${def.tool} ${String(decision.action)}): dispatching it`,
    [entry],
  );
  // Then it is approved and dispatched as any held call is, by the same person.
  const event = await buffer.approve(id, by, leaseMs);
  const token = event.leaseOwner!;
  const { signal, stop } = keepClaim(buffer, id, token, leaseMs);
  try {
    // The object may have moved on while the event waited for a person (a dispute closed).
    const refused = await approvalSuperseded(buffer, event, token, by, options.fresh);
    if (refused) return { id, type: event.type, ...refused, tool_call: call };
    return await dispatchPersonCall(buffer, sink, event, call, token, by, signal);
  } finally {
    stop();
  }
}

async function dispatchPersonCall(
  buffer: EventBuffer,
  sink: Sink,
  event: StoredEvent,
  call: ToolCall,
  token: string,
  by: string,
  signal: AbortSignal,
): Promise<ApprovalResult> {
  try {
    await dispatchAndAck(buffer, sink, event, call, token, {
      signal,
      ...personAck('decided', by, ''),
    });
  } catch (error) {
    if (signal.aborted) throw signal.reason instanceof LeaseLostError ? signal.reason : error;
    if (!(error instanceof DispatchError)) throw error;
    // The person's call keeps waiting, recorded: approving it later dispatches it as filled.
    await buffer.hold(event.id, token, `decided by ${by}, but dispatch failed: ${error.message}`);
    return {
      id: event.id,
      type: event.type,
      status: 'awaiting_approval',
      outcome: `dispatch failed: ${error.message}`,
      tool_call: call,
    };
  }
  return {
    id: event.id,
    type: event.type,
    status: 'acked',
    outcome: sink.kind === 'record' ? 'recorded' : 'dispatched',
    tool_call: call,
  };
}

/** Longest note kept for a hand-handled event. */
export const MAX_HANDLED_NOTE = 2000;

/**
 * Marked handled by hand: acked without dispatching anything, the person's note saying what they
 * did. Refused (by the store) for an event a worker holds.
 */
export async function markHandled(
  buffer: EventBuffer,
  id: string,
  request: { by: string; note: string },
): Promise<StoredEvent> {
  const note = request.note.trim();
  if (!note) {
    throw new AppError('note_required', 'a note is required: say what was done by hand');
  }
  if (note.length > MAX_HANDLED_NOTE) {
    throw new AppError('too_long', `the note is over ${MAX_HANDLED_NOTE} characters`);
  }
  return buffer.ack(id, { by: request.by, ...personAck('handled', request.by, note) });
}

import type { Catalog } from '../catalog/catalog.js';
import type { Recheck } from './fresh.js';
import type { EventBuffer, HistoryEntry, StoredEvent } from '../buffer/buffer.js';
import { at, num, obj } from '../catalog/extract.js';
import type { ToolCall } from '../catalog/catalog.js';
import { formatDuration } from '../config/duration.js';
import { APPROVAL_DEFAULTS, type ConfigFile } from '../config/file.js';
import type { Sink } from '../dispatch/dispatch.js';
import { NotAwaitingApprovalError } from '../errors.js';
import type { Logger } from '../logger.js';
import { approveAction, rejectAction } from './approvals.js';

/**
 * Approvals expire (issue #20.6). A call that waits for a person waits until its deadline: the
 * config's `approval.expires_after` after it was held, or — for a dispute — `dispute_margin`
 * before the dispute's `evidence_due_by`, whichever comes first (evidence sent after the bank's
 * deadline is worth nothing, so a person's late approval would be a loss dressed as a decision).
 * Past it, the configured default applies through the same guarded transitions a person uses:
 * `reject` (default) acks the event as expired, `approve` dispatches the decided call as approved
 * by `expiry`.
 *
 * Durable and once across instances: nothing about expiry is kept in a process. Every process that
 * runs serve or the agent sweeps the store's `awaiting_approval` events on a timer (and at start,
 * so a restart catches up); the store's atomic reject/approve lets exactly one of them apply the
 * default, the others are refused with NotAwaitingApprovalError and do nothing.
 */

export type OnExpiry = 'reject' | 'approve';

export interface ExpirySettings {
  expiresAfterMs: number;
  disputeMarginMs: number;
  onExpiry: OnExpiry;
}

/** The config's `approval` section with its defaults filled in. */
export function expirySettings(approval: ConfigFile['approval'] | undefined): ExpirySettings {
  return {
    expiresAfterMs: approval?.expires_after ?? APPROVAL_DEFAULTS.expiresAfterMs,
    disputeMarginMs: approval?.dispute_margin ?? APPROVAL_DEFAULTS.disputeMarginMs,
    onExpiry: approval?.on_expiry ?? APPROVAL_DEFAULTS.onExpiry,
  };
}

export interface ApprovalDeadline {
  /** When the default applies (ms since epoch). */
  at: number;
  /** Which rule set it: the waiting time, or the dispute's evidence deadline less the margin. */
  why: 'expires_after' | 'evidence_due_by';
}

/**
 * When the approval of `event`, held since `heldAt` (ms; a held event's `updatedAt`), expires.
 * Pure: the console's approval card shows the same deadline the sweep applies. A dispute is an
 * event whose object is a dispute with `evidence_details.due_by` (Unix seconds); its deadline is
 * that time less `disputeMarginMs` when that is earlier than `heldAt + expiresAfterMs`. A payload
 * that is not JSON, or a dispute without a due date, has the plain deadline.
 */
export function approvalDeadline(
  event: Pick<StoredEvent, 'payload'>,
  heldAt: number,
  settings: Pick<ExpirySettings, 'expiresAfterMs' | 'disputeMarginMs'>,
): ApprovalDeadline {
  const plain: ApprovalDeadline = { at: heldAt + settings.expiresAfterMs, why: 'expires_after' };
  const dueBy = evidenceDueBy(event.payload);
  if (dueBy === null) return plain;
  const disputeAt = dueBy * 1000 - settings.disputeMarginMs;
  return disputeAt < plain.at ? { at: disputeAt, why: 'evidence_due_by' } : plain;
}

/** A dispute's `evidence_details.due_by` (Unix seconds), or null. */
function evidenceDueBy(payload: string): number | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return null;
  }
  const object = obj(at(parsed, 'data', 'object'));
  if (!object || object.object !== 'dispute') return null;
  const dueBy = num(at(object, 'evidence_details', 'due_by'));
  return dueBy !== null && dueBy > 0 ? dueBy : null;
}

/**
 * When the "expires soon" notice is due: a tenth of the waiting window before the deadline, or an
 * hour before, whichever is sooner (closer to the deadline) — a 24 h approval warns 1 h ahead, a
 * 2 h one 12 min ahead, so the notice comes while there is still time to act, and not so early
 * that it is just a second "waiting" message.
 */
export function warningAt(deadline: ApprovalDeadline, heldAt: number): number {
  const window = Math.max(0, deadline.at - heldAt);
  return deadline.at - Math.min(window / 10, 3_600_000);
}

/** The words of an expiry, in the history and in the notice. */
export function expiryReason(deadline: ApprovalDeadline, settings: ExpirySettings): string {
  const within =
    deadline.why === 'evidence_due_by'
      ? `before the dispute's evidence deadline less ${formatDuration(settings.disputeMarginMs)}`
      : `within ${formatDuration(settings.expiresAfterMs)}`;
  return `expired: the approval was not given ${within}`;
}

export interface AppliedExpiry {
  id: string;
  type: string;
  /** What was applied: `rejected`, or what the approved dispatch became. */
  outcome: string;
  /** The history note. */
  note: string;
  onExpiry: OnExpiry;
  deadline: ApprovalDeadline;
}

/** Who applies an expiry default, in the history. */
export const EXPIRY_ACTOR = 'expiry';

function lastDecisionCall(history: readonly HistoryEntry[]): ToolCall | null {
  return [...history].reverse().find((h) => h.kind === 'decision')?.tool_call ?? null;
}

/**
 * Applies the expiry default to one held event, through the guarded transitions. Throws
 * NotAwaitingApprovalError when the call no longer waits (a person or another instance got there
 * first): the caller does nothing more.
 *
 * An "ask a person" event (no decided call) is rejected even with `on_expiry: approve`: there is
 * nothing to dispatch, and acking it as approved would record that a person looked when nobody did.
 */
export async function applyExpiry(
  buffer: EventBuffer,
  sink: Sink,
  event: StoredEvent,
  deadline: ApprovalDeadline,
  settings: ExpirySettings,
  fresh?: { recheck: Recheck; catalog: Catalog },
): Promise<AppliedExpiry> {
  const reason = expiryReason(deadline, settings);
  const call = lastDecisionCall(await buffer.history(event.id));
  if (settings.onExpiry === 'approve' && call) {
    // Recorded as `expired` (the note says the default approved it), not as a person's approval.
    const result = await approveAction(buffer, sink, event.id, EXPIRY_ACTOR, {
      outcome: 'expired',
      // Approved by default is still carried out only if the object still calls for it.
      fresh,
    });
    const note = `${reason}; approved by default (approval.on_expiry: approve)`;
    // Recorded after the guarded approve, by its winner only: a loser was refused above.
    await buffer.addHistory(event.id, { kind: 'note', note, by: EXPIRY_ACTOR });
    return {
      id: event.id,
      type: event.type,
      outcome: result.outcome,
      note,
      onExpiry: 'approve',
      deadline,
    };
  }
  const note = call
    ? `${reason}; rejected by default`
    : `${reason}; rejected by default (a person was asked to look; there is no call to dispatch)`;
  // The store's entries say `expired` already (the outcome heads the acked entry's note).
  const recorded = note.replace(/^expired: /, '');
  await rejectAction(buffer, event.id, recorded, EXPIRY_ACTOR, { outcome: 'expired' });
  return {
    id: event.id,
    type: event.type,
    outcome: 'expired',
    note,
    onExpiry: 'reject',
    deadline,
  };
}

/** A held call inside its warning window: the notice goes out (once across instances). */
export interface ExpiringSoon {
  event: StoredEvent;
  deadline: ApprovalDeadline;
}

export interface ExpirySweepOptions {
  buffer: EventBuffer;
  sink: Sink;
  settings: ExpirySettings;
  logger: Logger;
  now?: () => number;
  /** Re-reads the object before a default approval is carried out (fresh.ts), when set. */
  fresh?: { recheck: Recheck; catalog: Catalog };
  /** Called by the one process that applied a default. */
  onExpired?: (applied: AppliedExpiry, event: StoredEvent) => void;
  /** Called by the one process whose `ledger.once` took the warning of this hold. */
  onExpiringSoon?: (soon: ExpiringSoon) => void;
}

/** Held events read per page, and pages per sweep: a sweep's bound, whatever waits. */
export const EXPIRY_PAGE = 100;
export const EXPIRY_MAX_PAGES = 20;
/** How often each serve/agent process sweeps. Short: an expiry applies within this of its time. */
export const EXPIRY_SWEEP_MS = 2_000;

/**
 * One pass over the held events (at most EXPIRY_PAGE × EXPIRY_MAX_PAGES; the rest next time):
 * applies the default to those past their deadline and announces those in their warning window.
 * Returns how many this process expired.
 */
export async function sweepExpired(options: ExpirySweepOptions): Promise<number> {
  const { buffer, sink, settings, logger } = options;
  const now = options.now ?? Date.now;
  let cursor: string | null = null;
  let expired = 0;
  for (let page = 0; page < EXPIRY_MAX_PAGES; page++) {
    const listed = await buffer.list({
      statuses: ['awaiting_approval'],
      limit: EXPIRY_PAGE,
      cursor,
    });
    for (const event of listed.events) {
      // updatedAt is when it was held: nothing but leaving awaiting_approval moves it.
      const deadline = approvalDeadline(event, event.updatedAt, settings);
      const t = now();
      if (t >= deadline.at) {
        try {
          const applied = await applyExpiry(buffer, sink, event, deadline, settings, options.fresh);
          expired++;
          logger.info('approval expired; default applied', {
            id: event.id,
            type: event.type,
            onExpiry: applied.onExpiry,
            outcome: applied.outcome,
            why: deadline.why,
          });
          options.onExpired?.(applied, event);
        } catch (error) {
          if (error instanceof NotAwaitingApprovalError) continue;
          logger.warn('could not apply an expired approval; retried next sweep', {
            id: event.id,
            error,
          });
        }
      } else if (options.onExpiringSoon && t >= warningAt(deadline, event.updatedAt)) {
        // Keyed by the hold (a call held again after a failed dispatch is a new wait), kept until
        // the deadline passes.
        const key = `notify:expiring:${event.id}:${event.updatedAt}`;
        if (await buffer.ledger.once(key, deadline.at - t + 60_000)) {
          options.onExpiringSoon({ event, deadline });
        }
      }
    }
    cursor = listed.nextCursor;
    if (!cursor) break;
  }
  return expired;
}

/** The sweep on a timer (unref'd: it never keeps a process alive), first run at once. */
export function startExpirySweep(options: ExpirySweepOptions & { everyMs?: number }): {
  stop(): Promise<void>;
} {
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const tick = () => {
    if (stopped || running) return;
    running = sweepExpired(options)
      .catch((error: unknown) => options.logger.warn('expiry sweep failed', { error }))
      .finally(() => (running = null));
  };
  const timer = setInterval(tick, options.everyMs ?? EXPIRY_SWEEP_MS);
  timer.unref();
  tick();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

import {
  BeingHandledError,
  HeldForApprovalError,
  InvalidTransitionError,
  LeaseLostError,
  NotAwaitingApprovalError,
} from '../errors.js';
import type {
  BufferChange,
  EventOutcome,
  EventStatus,
  HistoryInput,
  StoredEvent,
} from './buffer.js';

/**
 * The queue's state machine, once, as pure rules: given the stored event, a command and who asks,
 * the new state, the history entries to record and the change to announce — or a typed refusal.
 * The memory and SQLite stores apply these functions; the Redis scripts (redis/scripts.ts) restate
 * them in Lua because they must run inside Redis, and the contract suite (test/buffer/contract.ts)
 * holds all three to the same answers, refusals included. The table is in docs/ARCHITECTURE.md.
 *
 * Who asks:
 * - a **worker** holds a claim and proves it with the claim's token (`leaseOwner` of the claimed
 *   event). Every change a worker makes carries it; a token that no longer holds the claim (the lease
 *   expired, another worker took over, a person acked) is refused with LeaseLostError and changes
 *   nothing — the fence that keeps a paused worker from acting on an event it lost.
 * - a **person** (MCP client, CLI, console) acts without a token and is named in the history. A
 *   person's ack wins over a worker's claim; a replay never pulls an event out from under one.
 */

/** What the store keeps per queue and every process that opens it follows. */
export interface QueuePolicy {
  /** Failed attempts after which an event is dead. */
  maxAttempts: number;
  /** First retry delay after a failed attempt (doubles per attempt, capped at an hour). */
  retryBaseMs: number;
}

export const DEFAULT_POLICY: QueuePolicy = { maxAttempts: 5, retryBaseMs: 30_000 };

/** Backoff for an expired lease: the holder died or stalled, so the next try need not wait. */
export const LEASE_EXPIRY_RETRY_MS = 0;

/** How an approver's claim token starts (`approver:<by>~<nonce>`, made by the approve command). */
export const APPROVER_TOKEN_PREFIX = 'approver:';

/**
 * How `last_error` starts when an approved call was interrupted before its ack (the approving
 * process died or stalled past its lease): the event is pending again and the agent loop
 * dispatches the call as approved, without a new decision. Only a cheap pre-check: a person's nack
 * reason can start with it too, so the history decides (operations/approvals.ts approvedCall).
 */
export const APPROVED_CALL_INTERRUPTED = 'approved call interrupted';

/** `last_error` of an interrupted approval by `by`. Redis restates it in Lua (redis/scripts.ts). */
export function interruptedApprovalError(by: string): string {
  return `${APPROVED_CALL_INTERRUPTED}: approved by ${by}; it is dispatched again`;
}

/** The note of the `lease_expired` entry of an interrupted approval by `by`. */
export function interruptedApprovalNote(by: string): string {
  return `approved by ${by}: the approved call was interrupted and will be dispatched again, as approved`;
}

/** Who approved, for an approver's claim token; null for any other token. */
export function approverOf(token: string | null): string | null {
  if (token === null || !token.startsWith(APPROVER_TOKEN_PREFIX)) return null;
  return ownerOf(token).slice(APPROVER_TOKEN_PREFIX.length);
}

/** The note of the `decision` entry a person's ack of a held call records. */
export function notCarriedOutNote(by: string | undefined): string {
  return `acked by ${by ?? 'a person'} without approving: nothing was dispatched`;
}

export type Command =
  /** Extends the lease of the claim `token` still holds. */
  | { op: 'renew'; token: string; leaseMs: number }
  /**
   * Gives a claim back to pending without counting an attempt (shutdown, an outage, a per-tool
   * limit), optionally not before `retryInMs`, with `note` saying why.
   */
  | { op: 'release'; token: string; retryInMs?: number; note?: string }
  /** Parks a claimed event for a person (`awaiting_approval`, no lease). */
  | { op: 'hold'; token: string; note?: string; record?: readonly HistoryInput[] }
  /** Done. With `token`: the worker's outcome; without: a person's, allowed while a worker holds it. */
  | {
      op: 'ack';
      token?: string;
      by?: string;
      note?: string;
      record?: readonly HistoryInput[];
      /** How it ended (default: `handled` for a person, `dispatched` for a worker). */
      outcome?: EventOutcome;
    }
  /** A failed attempt: back to pending (retry later) or dead at the policy's limit. */
  | {
      op: 'nack';
      token?: string;
      by?: string;
      reason: string;
      retryInMs?: number;
      record?: readonly HistoryInput[];
    }
  /** A person approves a held call: it becomes claimed under `token` while it is dispatched. */
  | { op: 'approve'; by: string; token: string; leaseMs: number }
  /**
   * A person rejects a held call: acked, the reason recorded, nothing dispatched. `outcome`
   * `expired`: the approval ran out and the expiry sweep rejected it (default `rejected`).
   */
  | { op: 'reject'; by: string; reason: string; outcome?: 'rejected' | 'expired' }
  /** Back to pending with attempts reset: for finished (acked, dead) or pending events only. */
  | { op: 'replay'; by?: string; note?: string }
  /** A history entry that changes no state (e.g. a dispatch recorded after the claim was lost). */
  | { op: 'note'; entry: HistoryInput };

export type CommandOp = Command['op'];

/** The fields a transition may change. */
export type EventState = Pick<
  StoredEvent,
  'status' | 'attempts' | 'retryAt' | 'leaseOwner' | 'leaseExpiresAt' | 'lastError' | 'outcome'
>;

export interface Transition {
  /** The new state; equal to the old one for a no-op (an ack of an acked event, a note). */
  state: EventState;
  /** Recorded in order, in the same commit as the state. */
  entries: HistoryInput[];
  /** Announced once committed; null when nothing others watch for changed. */
  change: BufferChange['kind'] | null;
  /** True when nothing at all is written (idempotent repeats). */
  noop?: boolean;
}

export function stateOf(event: StoredEvent): EventState {
  return {
    status: event.status,
    attempts: event.attempts,
    retryAt: event.retryAt,
    leaseOwner: event.leaseOwner,
    leaseExpiresAt: event.leaseExpiresAt,
    lastError: event.lastError,
    outcome: event.outcome,
  };
}

const UNLEASED = { leaseOwner: null, leaseExpiresAt: null } as const;

/** A failed attempt (nack or expired lease): retry later, or dead once attempts run out. */
export function afterFailure(
  attempts: number,
  maxAttempts: number,
  now: number,
  retryInMs: number,
): Pick<EventState, 'status' | 'attempts' | 'retryAt'> {
  const next = attempts + 1;
  if (next >= maxAttempts) return { status: 'dead', attempts: next, retryAt: null };
  return { status: 'pending', attempts: next, retryAt: retryInMs > 0 ? now + retryInMs : null };
}

/** Does `token` hold `event`'s claim at `now`? */
/** What `holds` reads of an event. */
export type Lease = Pick<StoredEvent, 'status' | 'leaseOwner' | 'leaseExpiresAt'>;

export function holds(event: Lease, token: string, now: number): boolean {
  return (
    event.status === 'claimed' && event.leaseOwner === token && (event.leaseExpiresAt ?? 0) > now
  );
}

function assertHolds(event: StoredEvent, token: string, now: number, op: CommandOp): void {
  if (!holds(event, token, now)) throw new LeaseLostError(event.id, describe(event, now), op);
}

/** How an event stands, in words, for refusals. */
function describe(event: StoredEvent, now: number): string {
  if (event.status !== 'claimed') return event.status;
  if ((event.leaseExpiresAt ?? 0) <= now) return 'claimed under an expired lease';
  return `claimed by ${ownerOf(event.leaseOwner)}`;
}

/** The worker part of a claim token (`<owner>~<nonce>`), for people to read. */
export function ownerOf(token: string | null): string {
  if (token === null) return 'nobody';
  const cut = token.lastIndexOf('~');
  return cut > 0 ? token.slice(0, cut) : token;
}

function withNote<T extends HistoryInput>(entry: T, note: string | undefined): T {
  return note === undefined ? entry : { ...entry, note };
}

function withBy<T extends HistoryInput>(entry: T, by: string | undefined): T {
  return by === undefined ? entry : { ...entry, by };
}

/** The claim rule, for one due pending event. Stores pick the due events (oldest first). */
export function claimed(
  event: StoredEvent,
  token: string,
  leaseMs: number,
  now: number,
): Transition {
  if (event.status !== 'pending' || (event.retryAt !== null && event.retryAt > now)) {
    throw new InvalidTransitionError(event.id, event.status, 'claimed');
  }
  return {
    state: {
      ...stateOf(event),
      status: 'claimed',
      leaseOwner: token,
      leaseExpiresAt: now + leaseMs,
    },
    entries: [{ kind: 'claimed', note: token }],
    change: 'claimed',
  };
}

/**
 * The expiry rule: a claim whose lease ran out counts as a failed attempt — except an approver's.
 * A person approved that call: the approval stands, so the event goes back to pending with its
 * attempts unchanged and `last_error` saying so, and the agent loop dispatches the approved call
 * again instead of having the model decide anew (never dead: nothing about the event failed).
 * A worker's claim on an event whose approved call it was dispatching again expires as usual
 * (attempt counted, dead at the limit), but keeps that `last_error`, so the next worker still
 * dispatches the call as approved. Redis restates this rule in Lua (redis/scripts.ts `recover`).
 */
export function expired(event: StoredEvent, policy: QueuePolicy, now: number): Transition | null {
  if (event.status !== 'claimed' || (event.leaseExpiresAt ?? 0) > now) return null;
  const approver = approverOf(event.leaseOwner);
  if (approver !== null) {
    return {
      state: {
        ...stateOf(event),
        status: 'pending',
        retryAt: null,
        ...UNLEASED,
        lastError: interruptedApprovalError(approver),
      },
      entries: [{ kind: 'lease_expired', note: interruptedApprovalNote(approver) }],
      change: 'released',
    };
  }
  const failure = afterFailure(event.attempts, policy.maxAttempts, now, LEASE_EXPIRY_RETRY_MS);
  const dead = failure.status === 'dead';
  const keepsMarker = !dead && event.lastError?.startsWith(APPROVED_CALL_INTERRUPTED) === true;
  return {
    state: {
      ...stateOf(event),
      ...failure,
      ...UNLEASED,
      lastError: keepsMarker ? event.lastError : 'lease expired',
    },
    entries: [{ kind: dead ? 'dead' : 'lease_expired' }],
    change: dead ? 'dead' : 'released',
  };
}

/**
 * Every single-event command. Throws LeaseLostError (a token that does not hold the claim),
 * BeingHandledError (a person's replay or nack of an event a worker or an approval holds;
 * HeldForApprovalError for a nack of a held call),
 * NotAwaitingApprovalError (approve/reject of a call no longer held) or InvalidTransitionError.
 */
export function transition(
  event: StoredEvent,
  command: Command,
  policy: QueuePolicy,
  now: number,
): Transition {
  const s = stateOf(event);
  switch (command.op) {
    case 'renew':
      assertHolds(event, command.token, now, 'renew');
      return { state: { ...s, leaseExpiresAt: now + command.leaseMs }, entries: [], change: null };

    case 'release':
      assertHolds(event, command.token, now, 'release');
      return {
        state: {
          ...s,
          status: 'pending',
          ...UNLEASED,
          retryAt: command.retryInMs ? now + command.retryInMs : null,
        },
        entries: [
          {
            kind: 'released',
            note: command.note
              ? `${ownerOf(command.token)}: ${command.note}`
              : ownerOf(command.token),
          },
        ],
        change: 'released',
      };

    case 'hold':
      assertHolds(event, command.token, now, 'hold');
      return {
        state: { ...s, status: 'awaiting_approval', ...UNLEASED },
        entries: [...(command.record ?? []), withNote({ kind: 'held' }, command.note)],
        change: 'held',
      };

    case 'ack': {
      if (command.token !== undefined) assertHolds(event, command.token, now, 'ack');
      else if (event.status === 'acked') return { state: s, entries: [], change: null, noop: true };
      // A person's ack of a held call ends it without approving it: the history says the
      // decision was not carried out, so nobody reads the decided call as done.
      const dropped: HistoryInput[] =
        command.token === undefined && event.status === 'awaiting_approval'
          ? [
              withBy(
                {
                  kind: 'decision',
                  outcome: 'not_carried_out',
                  note: notCarriedOutNote(command.by),
                },
                command.by,
              ),
            ]
          : [];
      return {
        state: {
          ...s,
          status: 'acked',
          retryAt: null,
          ...UNLEASED,
          outcome: command.outcome ?? (command.token === undefined ? 'handled' : 'dispatched'),
        },
        entries: [
          ...(command.record ?? []),
          ...dropped,
          withBy(withNote({ kind: 'acked' }, command.note), command.by),
        ],
        change: 'acked',
      };
    }

    case 'nack': {
      if (command.token !== undefined) assertHolds(event, command.token, now, 'nack');
      else if (event.status === 'claimed')
        throw new BeingHandledError(event.id, describe(event, now), 'nacked');
      // A nack would discard the held decision and have the model decide again: reject it.
      else if (event.status === 'awaiting_approval') throw new HeldForApprovalError(event.id);
      else if (event.status !== 'pending') {
        throw new InvalidTransitionError(event.id, event.status, 'nacked');
      }
      const failure = afterFailure(event.attempts, policy.maxAttempts, now, command.retryInMs ?? 0);
      const dead = failure.status === 'dead';
      return {
        state: { ...s, ...failure, ...UNLEASED, lastError: command.reason },
        entries: [
          ...(command.record ?? []),
          withBy({ kind: dead ? 'dead' : 'nacked', note: command.reason }, command.by),
        ],
        change: dead ? 'dead' : 'nacked',
      };
    }

    case 'approve':
      if (event.status !== 'awaiting_approval')
        throw new NotAwaitingApprovalError(event.id, event.status);
      return {
        state: {
          ...s,
          status: 'claimed',
          leaseOwner: command.token,
          leaseExpiresAt: now + command.leaseMs,
        },
        entries: [{ kind: 'resumed', note: `approved by ${command.by}`, by: command.by }],
        change: 'claimed',
      };

    case 'reject': {
      if (event.status !== 'awaiting_approval')
        throw new NotAwaitingApprovalError(event.id, event.status);
      const outcome = command.outcome ?? 'rejected';
      return {
        state: { ...s, status: 'acked', retryAt: null, ...UNLEASED, outcome },
        entries: [
          { kind: 'decision', outcome, note: command.reason, by: command.by },
          { kind: 'acked', note: `${outcome}: ${command.reason}`, by: command.by },
        ],
        change: 'acked',
      };
    }

    case 'replay':
      if (event.status === 'claimed' || event.status === 'awaiting_approval') {
        throw new BeingHandledError(event.id, describe(event, now), 'replayed');
      }
      return {
        state: {
          status: 'pending',
          attempts: 0,
          retryAt: null,
          ...UNLEASED,
          lastError: null,
          outcome: null,
        },
        entries: [withBy(withNote({ kind: 'replayed' }, command.note), command.by)],
        change: 'replayed',
      };

    case 'note':
      return { state: s, entries: [command.entry], change: null };
  }
}

/** Statuses a person may ack from (everything but acked, which is a no-op). */
export const ACKABLE: readonly EventStatus[] = ['pending', 'claimed', 'awaiting_approval', 'dead'];

/**
 * Whether a transition moves `updatedAt` (what prune ages finished events by): any change but a
 * renewed lease's expiry. A note or a renew leaves it.
 */
export function touches(before: EventState, after: EventState): boolean {
  return (
    before.status !== after.status ||
    before.attempts !== after.attempts ||
    before.retryAt !== after.retryAt ||
    before.leaseOwner !== after.leaseOwner ||
    before.lastError !== after.lastError
  );
}

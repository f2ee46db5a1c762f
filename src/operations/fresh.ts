import { asEventInput } from '../catalog/catalog.js';
import type { EventBuffer, HistoryInput, StoredEvent } from '../buffer/buffer.js';
import type { ToolDefinition } from '../catalog/catalog.js';
import { obj, str } from '../catalog/extract.js';
import { checkPrecondition } from '../catalog/precondition.js';
import {
  OBJECT_RESOURCES,
  StripeReadError,
  type ObjectReader,
  type StripeObjectRef,
} from '../stripe/objects.js';

/**
 * Acting on what is true now. An event is a snapshot of its object when it happened; Stripe sends
 * events out of order and for days, and an approval can wait for hours. With STRIPE_SECRET_KEY set
 * the object is read again before the model decides, right before a decided call is dispatched,
 * and before an approved call is carried out; when the tool's precondition (catalog) no longer
 * holds, nothing happens and the event is recorded superseded. Without a key nothing is
 * re-checked, and every door says so.
 */

/** What a re-check found. */
export type FreshCheck =
  /** Nothing re-checked: no key, no precondition, or an object this cannot read. */
  | { kind: 'unchecked'; why: string }
  /** The precondition holds now: the facts as they are, and which differ from the event's. */
  | {
      kind: 'current';
      object: Record<string, unknown>;
      facts: Record<string, unknown>;
      changed: string[];
      fetchedAt: number;
    }
  /** It no longer holds: `reason` says what is true instead. */
  | { kind: 'superseded'; reason: string; fetchedAt: number };

export interface Recheck {
  /** Whether objects are re-read at all (STRIPE_SECRET_KEY is set). */
  readonly enabled: boolean;
  /**
   * Reads the event's object and checks its tool's precondition. Throws StripeReadError
   * (`unavailable`/`forbidden`) when Stripe cannot tell: the caller must not act on a guess.
   */
  check(event: Pick<StoredEvent, 'type' | 'payload'>, def: ToolDefinition): Promise<FreshCheck>;
}

/** The words every door uses for an agent that decides on the event's snapshot alone. */
export const NOT_RECHECKED =
  'facts are not re-checked against Stripe (no STRIPE_SECRET_KEY): decisions use the event as it was sent';

/** The event's object and account, from its payload (`data.object`, `account`). */
export function objectRef(payload: string | unknown): StripeObjectRef | null {
  let parsed: unknown = payload;
  if (typeof payload === 'string') {
    try {
      parsed = JSON.parse(payload);
    } catch {
      return null;
    }
  }
  const event = obj(parsed);
  const object = obj(obj(event?.data)?.object);
  const type = str(object?.object);
  const id = str(object?.id);
  if (!type || !id) return null;
  return { type, id, account: str(event?.account) };
}

/** The connected account an event came from (`event.account`), or null. */
export function eventAccount(payload: string | unknown): string | null {
  return objectRef(payload)?.account ?? null;
}

export function createRecheck(reader: ObjectReader | null, now: () => number = Date.now): Recheck {
  return {
    enabled: reader !== null,
    async check(event, def) {
      if (!reader) return { kind: 'unchecked', why: NOT_RECHECKED };
      if (!def.precondition)
        return { kind: 'unchecked', why: `${def.tool} states no precondition` };
      const ref = objectRef(event.payload);
      if (!ref) return { kind: 'unchecked', why: 'the event names no object to re-read' };
      if (!OBJECT_RESOURCES[ref.type]) {
        return { kind: 'unchecked', why: `a ${ref.type} is not an object this re-reads` };
      }
      let object: Record<string, unknown>;
      try {
        object = await reader(ref);
      } catch (error) {
        if (error instanceof StripeReadError && error.kind === 'missing') {
          return { kind: 'superseded', reason: error.message, fetchedAt: now() };
        }
        throw error;
      }
      const fetchedAt = now();
      const reason = checkPrecondition(def.precondition, object, fetchedAt);
      if (reason) return { kind: 'superseded', reason, fetchedAt };
      const before = def.extract(asEventInput(event.type, event.payload));
      const facts = def.extract({ type: event.type, data: { object } });
      const changed = Object.keys(facts).filter(
        (key) => JSON.stringify(facts[key]) !== JSON.stringify(before[key]),
      );
      return { kind: 'current', object, facts, changed, fetchedAt };
    },
  };
}

/** Where the re-check found the action moot. */
export type SupersededAt =
  'before deciding' | 'before dispatching' | 'before carrying out the approval';

/** The note a superseded event is acked with; it starts "superseded: ". */
export function supersededNote(reason: string, at: SupersededAt): string {
  return `superseded: ${reason} (checked against Stripe ${at}); nothing was done`;
}

/**
 * Records an event as superseded and takes it out of the queue: acked (by the claim's holder,
 * `token`), nothing dispatched, with a note saying what is true now. The one place superseded
 * events are written, so the integrator's outcome field lands in one spot.
 */
export async function recordSuperseded(
  buffer: EventBuffer,
  id: string,
  options: {
    token: string;
    reason: string;
    at: SupersededAt;
    by?: string;
    /** Entries written in the same commit (e.g. the decision the check overruled). */
    record?: readonly HistoryInput[];
  },
): Promise<StoredEvent> {
  const note = supersededNote(options.reason, options.at);
  return buffer.ack(id, {
    token: options.token,
    ...(options.by ? { by: options.by } : {}),
    note,
    outcome: 'superseded',
    record: [...(options.record ?? []), { kind: 'note', outcome: 'superseded', note }],
  });
}

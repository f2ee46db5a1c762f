import { z } from 'zod';
import { at } from './extract.js';

/**
 * Preconditions: the state of an event's Stripe object under which its tool's action still makes
 * sense, as data — a list of conditions on fields of the object (all must hold). The catalog states
 * one per built-in tool; `--config` `events.<type>.precondition` states a user's own. The agent
 * checks them against the object fetched fresh from Stripe before deciding and before dispatching
 * (src/operations/fresh.ts): Stripe sends events out of order and for days, and an approval can
 * wait for hours, so the event's snapshot alone is not what is true now.
 */

/** A dotted path into the object, as Stripe names fields: `status`, `evidence_details.due_by`. */
export const FIELD_PATH = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*){0,5}$/;

const scalar = z.union([z.string().max(200), z.number(), z.boolean(), z.null()]);
const OPERATORS = ['in', 'not_in', 'gt', 'gte', 'lt', 'lte', 'after_now'] as const;

export const conditionSchema = z
  .object({
    field: z
      .string()
      .regex(
        FIELD_PATH,
        'a field path of the Stripe object, such as status or evidence_details.due_by',
      ),
    /** The field's value is one of these. */
    in: z.array(scalar).min(1).max(32).optional(),
    /** The field's value is none of these. */
    not_in: z.array(scalar).min(1).max(32).optional(),
    gt: z.number().finite().optional(),
    gte: z.number().finite().optional(),
    lt: z.number().finite().optional(),
    lte: z.number().finite().optional(),
    /** The field is a Unix timestamp (seconds, as Stripe sends them) still in the future. */
    after_now: z.literal(true).optional(),
  })
  .strict()
  .refine((c) => OPERATORS.filter((op) => c[op] !== undefined).length === 1, {
    message: `exactly one of ${OPERATORS.join(', ')} beside field`,
  });

export type Condition = z.infer<typeof conditionSchema>;

/** Every condition must hold; at most 16 (a precondition is a short statement, not a program). */
export const preconditionSchema = z.array(conditionSchema).min(1).max(16);

export type Precondition = readonly Condition[];

/** How an object type reads in a sentence: `payment_intent` → "payment intent". */
export function objectNoun(type: unknown): string {
  if (typeof type !== 'string' || type === '') return 'object';
  const last = type.split('.').pop()!;
  return last.replace(/_/g, ' ');
}

function shown(value: unknown): string {
  if (value === undefined || value === null) return 'not set';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

function fieldValue(object: Record<string, unknown>, path: string): unknown {
  return at(object, ...path.split('.'));
}

function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * When the object reached `status`, if it says: Stripe stamps some transitions
 * (`status_transitions.paid_at` on invoices, `canceled_at` on subscriptions and payment intents).
 */
function reachedAt(object: Record<string, unknown>, status: string): string | null {
  const stamp = fieldValue(object, `status_transitions.${status}_at`) ?? object[`${status}_at`];
  return typeof stamp === 'number' && Number.isFinite(stamp) ? isoSeconds(stamp) : null;
}

/** Why one condition fails, as a sentence; null when it holds. */
function failure(object: Record<string, unknown>, c: Condition, nowMs: number): string | null {
  const noun = objectNoun(object.object);
  const value = fieldValue(object, c.field);
  const plainValue = value === undefined ? null : value;
  const expected = (list: readonly unknown[]) => list.map(shown).join(', ');
  if (c.in !== undefined || c.not_in !== undefined) {
    const holds =
      c.in !== undefined
        ? c.in.includes(plainValue as never)
        : !c.not_in!.includes(plainValue as never);
    if (holds) return null;
    if (c.field === 'status' && typeof value === 'string') {
      const when = reachedAt(object, value);
      return `the ${noun} is now ${value}${when ? ` since ${when}` : ''} (status: ${value})`;
    }
    const wanted =
      c.in !== undefined ? `one of ${expected(c.in)}` : `none of ${expected(c.not_in!)}`;
    return `the ${noun}'s ${c.field} is now ${shown(value)} (the action needs ${wanted})`;
  }
  if (c.after_now) {
    if (typeof value === 'number' && value * 1000 > nowMs) return null;
    return typeof value === 'number'
      ? `the ${noun}'s ${c.field} passed at ${isoSeconds(value)}`
      : `the ${noun}'s ${c.field} is ${shown(value)}, not a time still ahead`;
  }
  const bounds: [keyof Condition, string, (a: number, b: number) => boolean][] = [
    ['gt', 'above', (a, b) => a > b],
    ['gte', 'at least', (a, b) => a >= b],
    ['lt', 'below', (a, b) => a < b],
    ['lte', 'at most', (a, b) => a <= b],
  ];
  for (const [op, words, test] of bounds) {
    const bound = c[op];
    if (typeof bound !== 'number') continue;
    if (typeof value === 'number' && test(value, bound)) return null;
    return `the ${noun}'s ${c.field} is now ${shown(value)} (the action needs ${words} ${bound})`;
  }
  return null;
}

/**
 * Whether the action still makes sense for `object` as it is now: null when every condition holds,
 * else a sentence saying what is true instead ("the dispute is now won (status: won)"). Pure: the
 * caller passes the time.
 */
export function checkPrecondition(
  precondition: Precondition | undefined,
  object: Record<string, unknown>,
  nowMs: number,
): string | null {
  if (!precondition) return null;
  const reasons = precondition
    .map((c) => failure(object, c, nowMs))
    .filter((r): r is string => r !== null);
  return reasons.length ? reasons.join('; ') : null;
}

/** A precondition in words, for the catalog's documentation and export. */
export function describePrecondition(precondition: Precondition | undefined): string | null {
  if (!precondition) return null;
  return precondition
    .map((c) => {
      if (c.in) return `${c.field} in ${c.in.map(shown).join('/')}`;
      if (c.not_in) return `${c.field} not in ${c.not_in.map(shown).join('/')}`;
      if (c.after_now) return `${c.field} after now`;
      for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
        const sign = { gt: '>', gte: '≥', lt: '<', lte: '≤' }[op];
        if (c[op] !== undefined) return `${c.field} ${sign} ${c[op]}`;
      }
      return c.field;
    })
    .join(' and ');
}

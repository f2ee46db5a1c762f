import { WebhookRejectedError } from '../errors.js';

/**
 * The envelope every stored event must have, checked at the door (webhook, fetched thin-event
 * snapshot, backfill) before anything is stored. A correctly signed body can still be hostile or
 * broken (a leaked secret, an upstream bug): one event stored with `created: Infinity` or a 10 000
 * character id breaks listing for the whole queue, so such an event is refused, not stored.
 */

/** Real ids are `evt_` + ~24 alphanumerics; test and CLI ids add underscores. */
export const EVENT_ID = /^evt_[A-Za-z0-9_]{1,250}$/;
/** `charge.dispute.created`, `v1.billing.meter.error_report_triggered`: dotted word tokens. */
export const EVENT_TYPE = /^[A-Za-z0-9_]{1,64}(?:\.[A-Za-z0-9_]{1,64}){0,9}$/;
const MAX_TYPE_LENGTH = 200;
/** Deepest nesting of objects and arrays accepted; Stripe's own events stay under ~10. */
export const MAX_DEPTH = 64;

function refuse(message: string): never {
  throw new WebhookRejectedError('invalid_event', message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Whether `value` nests objects and arrays more than `limit` levels deep. Walked with an explicit
 * stack, not recursion: deep input must not overflow the stack here (nor, once refused, in
 * whoever would have walked it later). Cheaper than scanning the JSON text: only objects and
 * arrays are visited. A cycle (never in parsed JSON) counts as too deep.
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const node = stack.pop();
    const depth = depths.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > limit) return true;
    const children: unknown[] = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (child !== null && typeof child === 'object') {
        stack.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

/**
 * Throws WebhookRejectedError `invalid_event` unless `event` has a bounded
 * `evt_` id, a bounded dotted `type`, a finite integer `created`, a plain-object `data.object`,
 * and nests at most MAX_DEPTH levels.
 */
export function assertEnvelope(event: unknown): void {
  if (!isPlainObject(event)) refuse('the event is not a JSON object');
  const { id, type, created, data } = event;
  if (typeof id !== 'string' || !EVENT_ID.test(id)) {
    refuse('the event id is not evt_ followed by 1 to 250 letters, digits or underscores');
  }
  if (typeof type !== 'string' || type.length > MAX_TYPE_LENGTH || !EVENT_TYPE.test(type)) {
    refuse('the event type is not a dotted name of letters, digits and underscores');
  }
  if (typeof created !== 'number' || !Number.isSafeInteger(created) || created < 0) {
    refuse('the event has no finite whole-number created timestamp');
  }
  if (!isPlainObject(data) || !isPlainObject(data.object)) {
    refuse('the event has no data.object that is a JSON object');
  }
  if (nestsDeeperThan(event, MAX_DEPTH)) {
    refuse(`the event nests deeper than ${MAX_DEPTH} levels`);
  }
}

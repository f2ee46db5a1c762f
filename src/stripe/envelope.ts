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
 * The deepest nesting of `{`/`[` in JSON text, counted by one scan without recursion (deep input
 * must not overflow the stack of whoever walks it later). Stops counting once past `limit`.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/**
 * Throws WebhookRejectedError `invalid_event` unless `event` (parsed from `text`) has a bounded
 * `evt_` id, a bounded dotted `type`, a finite integer `created`, a plain-object `data.object`,
 * and nests at most MAX_DEPTH levels.
 */
export function assertEnvelope(event: unknown, text: string): void {
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
  if (jsonDepthExceeds(text, MAX_DEPTH)) {
    refuse(`the event nests deeper than ${MAX_DEPTH} levels`);
  }
}

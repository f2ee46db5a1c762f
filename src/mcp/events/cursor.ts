import { decodeCursor, encodeCursor } from '../../buffer/cursor.js';
import { DEDUP_WINDOW_MS } from '../../buffer/buffer.js';

/**
 * An MCP Events cursor: a durable position in the store's arrival order (the events' seq, which
 * every store keeps and never reuses) and the time that position was reached. Opaque to clients.
 *
 * The time is what makes a stale cursor honest: acked and dead events are pruned once unchanged
 * for DEDUP_WINDOW_MS (7 days). Every event after the position arrived after the position was
 * reached, and an event is pruned only once its last change is older than the window, so when the
 * cursor's time is inside the window nothing after it can have been pruned; outside it, something
 * may have been, and the reader says `truncated` rather than resume silently past a hole.
 */

const PREFIX = 'e1.';
/**
 * A queue type's cursor (happenings.ts): a position in the store's happenings log, a space of its
 * own, so it names its event type: used for another type it is refused (BadEventsCursorError),
 * never read as a position in the wrong log.
 */
const QUEUE_PREFIX = 'q1.';

export interface EventsCursor {
  /**
   * Arrival seq of the last event at or before this position (0: before the first); for a queue
   * type, the happenings log's seq instead.
   */
  seq: number;
  /** When this position was reached (ms). */
  at: number;
  /** The queue type whose happenings log `seq` counts in; absent for Stripe event types. */
  space?: string;
}

export class BadEventsCursorError extends Error {
  constructor(
    message = 'the cursor is not one this server gave out (pass null to start from now)',
  ) {
    super(message);
    this.name = 'BadEventsCursorError';
  }
}

export function encodeEventsCursor(cursor: EventsCursor): string {
  if (cursor.space !== undefined) {
    const inner = `${cursor.seq}.${cursor.at}.${cursor.space}`;
    return QUEUE_PREFIX + Buffer.from(inner, 'utf8').toString('base64url');
  }
  return PREFIX + Buffer.from(`${cursor.seq}.${cursor.at}`, 'utf8').toString('base64url');
}

export function decodeEventsCursor(text: string): EventsCursor {
  if (text.startsWith(QUEUE_PREFIX)) {
    const inner = Buffer.from(text.slice(QUEUE_PREFIX.length), 'base64url').toString('utf8');
    const match = /^(\d{1,15})\.(\d{1,15})\.([a-z_.]{1,64})$/.exec(inner);
    if (!match) throw new BadEventsCursorError();
    return { seq: Number(match[1]), at: Number(match[2]), space: match[3]! };
  }
  if (!text.startsWith(PREFIX)) throw new BadEventsCursorError();
  const inner = Buffer.from(text.slice(PREFIX.length), 'base64url').toString('utf8');
  const match = /^(\d{1,15})\.(\d{1,15})$/.exec(inner);
  if (!match) throw new BadEventsCursorError();
  return { seq: Number(match[1]), at: Number(match[2]) };
}

/**
 * Checks that a decoded cursor belongs to event type `name`'s position space (`queueType`: the
 * name when it is a queue type, else undefined). A Stripe type's cursor given for a queue type,
 * or one queue type's for another, is refused: its number counts in another log.
 */
export function assertSpace(cursor: EventsCursor, name: string, queueType: boolean): void {
  const want = queueType ? name : undefined;
  if (cursor.space !== want) {
    const owner = cursor.space === undefined ? 'a Stripe event type' : cursor.space;
    throw new BadEventsCursorError(
      `the cursor is a position of ${owner}, not of ${name} (pass null to start from now)`,
    );
  }
}

/** The store's own list cursor for "after this position". */
export function storeCursor(cursor: EventsCursor): string {
  return encodeCursor(cursor.seq);
}

export function seqOf(storeListCursor: string): number {
  return decodeCursor(storeListCursor);
}

/** Whether events after `cursor` may already have been pruned (see above). */
export function mayBeTruncated(cursor: EventsCursor, now: number): boolean {
  return cursor.at < now - DEDUP_WINDOW_MS;
}

import type { EventBuffer } from '../../buffer/buffer.js';
import type { Catalog } from '../../catalog/catalog.js';
import type { RedactKind } from '../../catalog/untrusted.js';
import {
  decodeEventsCursor,
  encodeEventsCursor,
  mayBeTruncated,
  seqOf,
  storeCursor,
  type EventsCursor,
} from './cursor.js';
import { occurrenceData, typesOf, type EventFilters } from './types.js';

/**
 * Occurrences read from the store after a cursor: the one reader behind poll, push and webhook
 * delivery, so all three resume the same way (in arrival order, exactly after the cursor).
 */

export interface Occurrence {
  eventId: string;
  name: string;
  timestamp: string;
  data: Record<string, unknown>;
  /** The position after this occurrence. */
  cursor: string;
}

export interface ReadRequest {
  name: string;
  filters: EventFilters;
  /** null: from now on. */
  cursor: string | null;
  maxAgeMs?: number;
  maxEvents: number;
}

export interface ReadResult {
  events: Occurrence[];
  /** The position after everything read (matched or skipped). */
  cursor: string;
  truncated: boolean;
  hasMore: boolean;
}

export interface Reader {
  buffer: EventBuffer;
  catalog: Catalog;
  redact: readonly RedactKind[];
  now: () => number;
}

/** How many events one read looks at, matched or not: a read's cost is bounded. */
const SCAN_LIMIT = 500;

/** The position "now": after the newest event ever queued. */
export async function headPosition(reader: Reader): Promise<EventsCursor> {
  return { seq: seqOf(await reader.buffer.headCursor()), at: reader.now() };
}

/**
 * Where reading starts: the client's cursor, or now. A cursor older than the store's retention
 * may point before pruned events: reading restarts from now and says `truncated` (the extension
 * allows resetting to now; the events still queued stay in list_pending_events).
 */
export async function startPosition(
  reader: Reader,
  cursor: string | null,
): Promise<{ position: EventsCursor; truncated: boolean }> {
  if (cursor === null) return { position: await headPosition(reader), truncated: false };
  const position = decodeEventsCursor(cursor);
  if (mayBeTruncated(position, reader.now())) {
    return { position: await headPosition(reader), truncated: true };
  }
  return { position, truncated: false };
}

/**
 * Up to `maxEvents` occurrences after `position`, looking at SCAN_LIMIT events at most. With
 * `oneByOne`, every occurrence carries its own exact cursor (push and webhook need it); a poll
 * needs only the page's end and reads in pages.
 */
export async function readAfter(
  reader: Reader,
  request: Omit<ReadRequest, 'cursor'>,
  start: EventsCursor,
  oneByOne: boolean,
): Promise<ReadResult> {
  const types = typesOf(request.name, request.filters, reader.catalog);
  if (types === null) throw new Error(`unknown event type ${request.name}`);
  const floor =
    request.maxAgeMs === undefined ? null : reader.now() - Math.max(0, request.maxAgeMs);
  let position = start;
  let truncated = false;
  const events: Occurrence[] = [];
  let scanned = 0;
  let reachedEnd = false;
  if (types.length === 0) {
    return {
      events,
      cursor: encodeEventsCursor(await headPosition(reader)),
      truncated,
      hasMore: false,
    };
  }
  while (events.length < request.maxEvents && scanned < SCAN_LIMIT) {
    const readAt = reader.now();
    const limit = oneByOne ? 1 : Math.min(SCAN_LIMIT - scanned, 100);
    const page = await reader.buffer.list({ types, limit, cursor: storeCursor(position) });
    if (page.events.length === 0) {
      reachedEnd = true;
      // Nothing after `position` at readAt: whatever comes later arrives after readAt.
      position = { seq: position.seq, at: Math.max(position.at, readAt) };
      break;
    }
    const lastCursor = page.lastCursor;
    // A store that did not say where its page ends would make every position a guess.
    if (!lastCursor) throw new Error(`the ${reader.buffer.kind} store's page has no lastCursor`);
    for (const [i, event] of page.events.entries()) {
      if (events.length >= request.maxEvents) break;
      scanned += 1;
      const last = i === page.events.length - 1;
      if (floor !== null && event.receivedAt < floor) {
        truncated = true;
      } else {
        const data = occurrenceData(event, request.filters, reader.catalog, reader.redact);
        if (data) {
          events.push({
            eventId: event.id,
            name: request.name,
            timestamp: new Date(event.receivedAt).toISOString(),
            data,
            // Exact only for the page's last event; a paged read (poll) uses the page's end.
            cursor: last
              ? encodeEventsCursor({ seq: seqOf(lastCursor), at: event.receivedAt })
              : '',
          });
        }
      }
      if (last) {
        // Events after this one arrived after it: its receivedAt bounds their prune time.
        position = { seq: seqOf(lastCursor), at: event.receivedAt };
      } else if (events.length >= request.maxEvents) {
        // Stopped mid-page: the page's end would skip unread events, so read the rest again
        // one by one next time (rare: only when a page holds more matches than asked for).
        return readAfter(reader, request, start, true);
      }
    }
    if (!page.nextCursor) {
      reachedEnd = true;
      position = { seq: position.seq, at: Math.max(position.at, readAt) };
      break;
    }
  }
  return { events, cursor: encodeEventsCursor(position), truncated, hasMore: !reachedEnd };
}

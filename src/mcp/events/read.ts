import type { EventBuffer } from '../../buffer/buffer.js';
import type { Catalog } from '../../catalog/catalog.js';
import type { RedactKind } from '../../catalog/untrusted.js';
import {
  assertSpace,
  decodeEventsCursor,
  encodeEventsCursor,
  mayBeTruncated,
  seqOf,
  storeCursor,
  type EventsCursor,
} from './cursor.js';
import { happeningData, isQueueType, queueKindOf } from './queue-types.js';
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

/** The changes that may bring a stream or a webhook delivery something new to read. */
export const WAKES: ReadonlySet<string> = new Set(['queued', 'external', 'held', 'dead', 'agent']);

/** How many events one read looks at, matched or not: a read's cost is bounded. */
const SCAN_LIMIT = 500;

/**
 * The position "now" for event type `name`: after the newest event ever queued, or for a queue
 * type after the newest happening ever logged (its own position space, cursor.ts).
 */
export async function headPosition(reader: Reader, name: string): Promise<EventsCursor> {
  if (isQueueType(name)) {
    return { seq: await reader.buffer.happeningsHead(), at: reader.now(), space: name };
  }
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
  name: string,
): Promise<{ position: EventsCursor; truncated: boolean }> {
  if (cursor === null) return { position: await headPosition(reader, name), truncated: false };
  const position = decodeEventsCursor(cursor);
  assertSpace(position, name, isQueueType(name));
  if (mayBeTruncated(position, reader.now())) {
    return { position: await headPosition(reader, name), truncated: true };
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
  if (isQueueType(request.name)) return readHappenings(reader, request, start);
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
      cursor: encodeEventsCursor(await headPosition(reader, request.name)),
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

/**
 * A queue type's occurrences after `start`: the store's happenings log of that kind, in order.
 * Every happening has its own number, so each occurrence carries its exact cursor (poll, push and
 * webhook alike); skipped ones (another kind, filtered, their event pruned) still move the
 * position. Occurrence ids are `hap_<number>` (one per happening; the Stripe id is in the data).
 */
async function readHappenings(
  reader: Reader,
  request: Omit<ReadRequest, 'cursor'>,
  start: EventsCursor,
): Promise<ReadResult> {
  const kind = queueKindOf(request.name)!;
  const floor =
    request.maxAgeMs === undefined ? null : reader.now() - Math.max(0, request.maxAgeMs);
  let position: EventsCursor = { ...start, space: request.name };
  let truncated = false;
  const events: Occurrence[] = [];
  let scanned = 0;
  while (events.length < request.maxEvents && scanned < SCAN_LIMIT) {
    const readAt = reader.now();
    const page = await reader.buffer.happenings(position.seq, Math.min(100, SCAN_LIMIT - scanned));
    if (page.length === 0) {
      // Nothing after `position` at readAt: whatever comes later is logged after readAt.
      position = { ...position, at: Math.max(position.at, readAt) };
      return { events, cursor: encodeEventsCursor(position), truncated, hasMore: false };
    }
    for (const happening of page) {
      if (events.length >= request.maxEvents) break;
      scanned += 1;
      const next: EventsCursor = { seq: happening.seq, at: happening.at, space: request.name };
      if (happening.kind === kind) {
        if (floor !== null && happening.at < floor) {
          truncated = true;
        } else {
          const data = await dataOf(reader, happening, request.filters);
          if (data) {
            events.push({
              eventId: `hap_${happening.seq}`,
              name: request.name,
              timestamp: new Date(happening.at).toISOString(),
              data,
              cursor: encodeEventsCursor(next),
            });
          }
        }
      }
      position = next;
    }
  }
  return { events, cursor: encodeEventsCursor(position), truncated, hasMore: true };
}

async function dataOf(
  reader: Reader,
  happening: Awaited<ReturnType<Reader['buffer']['happenings']>>[number],
  filters: EventFilters,
): Promise<Record<string, unknown> | null> {
  const event = happening.eventId ? await reader.buffer.get(happening.eventId) : null;
  const history = event ? await reader.buffer.history(event.id) : [];
  return happeningData(
    happening,
    event,
    history,
    filters,
    reader.catalog,
    reader.redact,
    (e, nonce) =>
      reader.catalog.toolCall(e.type, e.payload)
        ? (occurrenceData(e, filters, reader.catalog, reader.redact, nonce) ?? 'skip')
        : null,
  );
}

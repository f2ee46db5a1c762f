import type { StoredEvent } from '../buffer/buffer.js';
import { encodeCursor } from '../buffer/cursor.js';
import { newestSeq, type Lister } from './newest.js';

/**
 * The queue's search box: an event by its id, its object's id (`dp_…`, `in_…`, `sub_…`), an id the
 * object points to (`ch_…`, `cus_…`, `pi_…`) or a customer's email. No store keeps an index of
 * payload fields, so past the event id (one `get`, at any age) it reads the newest SEARCH_SCAN
 * arrivals through the port's list, in pages, and says when older events were left unread: a
 * bounded cost on a full store, the same on every store.
 */

/** Arrival numbers read, newest first: enough for days of a busy account, cheap to parse. */
export const SEARCH_SCAN = 5000;
/** Matches shown; more are counted as "more". */
export const SEARCH_RESULTS = 50;
/** The longest query read: ids and emails are far shorter. */
export const MAX_QUERY = 200;
const PAGE = 500;
/** How deep into the event's object emails are looked for (`evidence.customer_email_address`). */
const EMAIL_DEPTH = 3;

export interface SearchResult {
  query: string;
  /** Newest first. */
  events: StoredEvent[];
  /** More matched than SEARCH_RESULTS. */
  more: boolean;
  /** Events read. */
  scanned: number;
  /** Older events exist that were not read (an event id is found at any age). */
  cut: boolean;
}

/** The query as searched: trimmed; null when empty or too long to be an id or an email. */
export function searchTerm(raw: unknown): string | null {
  if (typeof raw !== 'string') return null;
  const term = raw.trim();
  return term && term.length <= MAX_QUERY ? term : null;
}

const STRIPE_ID = /^[a-z][a-z0-9]*_[A-Za-z0-9_]+$/;

/** The ids an event's object carries at its top level: its own and those it points to. */
function idsOf(object: Record<string, unknown>): string[] {
  const ids: string[] = [];
  for (const value of Object.values(object)) {
    if (typeof value === 'string' && STRIPE_ID.test(value)) ids.push(value);
    // An expanded reference (`customer: { id: 'cus_…', … }`).
    else if (value && typeof value === 'object' && !Array.isArray(value)) {
      const id = (value as { id?: unknown }).id;
      if (typeof id === 'string') ids.push(id);
    }
  }
  return ids;
}

/** Every string under a key that names an email (`email`, `customer_email`, `receipt_email` …). */
function emailsOf(value: unknown, depth: number, out: string[], key = ''): string[] {
  if (typeof value === 'string') {
    if (/email/i.test(key)) out.push(value.toLowerCase());
  } else if (value && typeof value === 'object' && depth >= 0) {
    for (const [k, v] of Object.entries(value)) emailsOf(v, depth - 1, out, k);
  }
  return out;
}

/**
 * Whether the event is the one asked for. An id matches exactly; an email whatever its case. The
 * payload's text is checked first, so most events are passed over without being parsed.
 */
export function eventMatches(event: StoredEvent, term: string): boolean {
  if (event.id === term || event.objectId === term) return true;
  const email = term.includes('@');
  const needle = email ? term.toLowerCase() : term;
  if (!(email ? event.payload.toLowerCase() : event.payload).includes(needle)) return false;
  let object: unknown;
  try {
    object = (JSON.parse(event.payload) as { data?: { object?: unknown } }).data?.object;
  } catch {
    return false;
  }
  if (!object || typeof object !== 'object') return false;
  return email
    ? emailsOf(object, EMAIL_DEPTH, []).includes(needle)
    : idsOf(object as Record<string, unknown>).includes(term);
}

/**
 * The events matching `term`, newest first: the event with that id (any age), then whatever
 * matches among the newest `scan` arrivals.
 */
export async function searchEvents(
  store: { get(id: string): Promise<StoredEvent | null>; list: Lister },
  term: string,
  bounds: { scan?: number; results?: number } = {},
): Promise<SearchResult> {
  const scan = bounds.scan ?? SEARCH_SCAN;
  const results = bounds.results ?? SEARCH_RESULTS;
  const list: Lister = (q) => store.list(q);
  const [byId, top] = await Promise.all([
    STRIPE_ID.test(term) ? store.get(term) : Promise.resolve(null),
    newestSeq(list),
  ]);
  const from = Math.max(0, top - scan);
  // Oldest to newest (the port's order): the last `results` matches are the newest.
  let found: StoredEvent[] = [];
  let matched = 0;
  let scanned = 0;
  let cursor: string | null = from > 0 ? encodeCursor(from) : null;
  for (;;) {
    const page = await list({ cursor, limit: PAGE });
    scanned += page.events.length;
    for (const event of page.events) {
      if (event.id === byId?.id || !eventMatches(event, term)) continue;
      matched += 1;
      found.push(event);
      if (found.length > results * 2) found = found.slice(-results);
    }
    if (!page.nextCursor || page.events.length === 0) break;
    cursor = page.nextCursor;
  }
  const newest = found.slice(-results).reverse();
  const events = byId ? [byId, ...newest].slice(0, results) : newest;
  return {
    query: term,
    events,
    more: matched + (byId ? 1 : 0) > results,
    scanned,
    cut: from > 0,
  };
}

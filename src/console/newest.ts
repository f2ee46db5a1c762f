import type {
  EventOutcome,
  EventStatus,
  ListPage,
  ListQuery,
  StoredEvent,
} from '../buffer/buffer.js';
import { decodeCursor, encodeCursor } from '../buffer/cursor.js';

/** The port's list: matching events after a cursor, oldest first (arrival order by seq). */
export type Lister = (query: ListQuery) => Promise<ListPage>;

export interface NewestQuery {
  statuses?: readonly EventStatus[];
  types?: readonly string[];
  /** Only finished events that ended so. */
  outcomes?: readonly EventOutcome[];
  limit: number;
  /** Only events that arrived at or before this arrival number (from a previous page's `older`). */
  through?: number | null;
}

export interface NewestPage {
  /** Newest first. */
  events: StoredEvent[];
  /** Pass as `through` for the next, older page; null when this page reaches the oldest. */
  older: number | null;
}

/**
 * The arrival number (seq) of the newest matching event, 0 when none matches: the smallest x with
 * no match after it, by exponential then binary search with one-row pages (about 2·log2(seq)
 * index lookups, no payloads to speak of).
 */
export async function newestSeq(
  list: Lister,
  query: Pick<NewestQuery, 'statuses' | 'types' | 'outcomes'> = {},
): Promise<number> {
  const base = { statuses: query.statuses, types: query.types, outcomes: query.outcomes };
  const exists = async (x: number) =>
    (await list({ ...base, cursor: x > 0 ? encodeCursor(x) : null, limit: 1 })).events.length > 0;
  if (!(await exists(0))) return 0;
  let lo = 0; // exists(lo) holds, exists(hi) does not
  let hi = 1;
  while (await exists(hi)) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await exists(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * The events among the last `n` arrival numbers, newest first: a bounded "recent" sample (what
 * the insights read) for the price of one page once the newest seq is known.
 */
export async function lastArrivals(list: Lister, n: number): Promise<StoredEvent[]> {
  const top = await newestSeq(list);
  const from = Math.max(0, top - n);
  const page = await list({ cursor: from > 0 ? encodeCursor(from) : null, limit: n });
  return page.events.reverse();
}

/**
 * The newest `limit` matching events, newest first, read through the port's oldest-first `list`
 * without reading everything before them. The port's cursor is an arrival number (seq): a page
 * after cursor `x` holds the first matching events with seq > x. So "at most `limit` match in
 * (x, through]" is a question one small page answers (`list(after x, limit + 1)`), and the newest
 * page starts at the smallest such x. From the top (the newest matching seq, or `through`) the
 * search gallops down in steps of limit, 2·limit, 4·limit … then bisects: an unfiltered view,
 * whose seqs are nearly dense, costs a few pages of `limit + 1` rows; a sparse filter a few more
 * (about 2·log2 of the distance). Every store, no change to the stores.
 *
 * Concurrent changes between the probes can shift a page by an event or two (an event that
 * changed status leaves a filtered view); the next refresh shows the settled state.
 */
export async function listNewest(list: Lister, query: NewestQuery): Promise<NewestPage> {
  const n = query.limit;
  const through = query.through ?? Infinity;
  const base = { statuses: query.statuses, types: query.types, outcomes: query.outcomes };
  const after = (x: number, limit: number) =>
    list({ ...base, cursor: x > 0 ? encodeCursor(x) : null, limit });

  // At most n matching events with x < seq <= through?
  const fits = async (x: number): Promise<boolean> => {
    const page = await after(x, n + 1);
    if (page.events.length <= n) return true;
    if (through === Infinity) return false;
    // nextCursor is the seq of the (n+1)-th match after x (when more follow it).
    if (page.nextCursor) return decodeCursor(page.nextCursor) > through;
    // Exactly n + 1 follow x, so the (n+1)-th is the newest match of all: past `through`?
    return (await after(through, 1)).events.length > 0;
  };

  const top = through === Infinity ? await newestSeq(list, base) : through;
  // fits(hi) holds (nothing matches past the top); find the smallest such x, galloping down.
  let hi = top;
  let lo = -1; // -1: not yet found a failing x
  for (let step = n; hi > 0; step *= 2) {
    const x = Math.max(0, hi - step);
    if (await fits(x)) hi = x;
    else {
      lo = x;
      break;
    }
  }
  if (lo >= 0) {
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await fits(mid)) hi = mid;
      else lo = mid;
    }
  }

  if (hi > 0) {
    // fits(hi - 1) is false and one seq adds at most one match: exactly n in (hi, through].
    const page = await after(hi, n);
    return { events: page.events.reverse(), older: hi };
  }
  // The oldest page: every match with seq <= through, which may be fewer than n.
  const page = await after(0, n);
  if (through === Infinity) return { events: page.events.reverse(), older: null };
  // Keep the first k, the largest k whose k-th match is at or before `through`.
  const kthWithin = async (k: number): Promise<boolean> => {
    const probe = await after(0, k);
    if (probe.events.length < k) return false;
    if (probe.nextCursor) return decodeCursor(probe.nextCursor) <= through;
    return (await after(through, 1)).events.length === 0;
  };
  let keep = 0;
  let top2 = page.events.length + 1; // kthWithin(keep) holds (vacuously at 0); kthWithin(top2) not
  while (top2 - keep > 1) {
    const mid = Math.floor((keep + top2) / 2);
    if (await kthWithin(mid)) keep = mid;
    else top2 = mid;
  }
  return { events: page.events.slice(0, keep).reverse(), older: null };
}

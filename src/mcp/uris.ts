/** The resource URIs (docs/ARCHITECTURE.md "Public names"). */
export const PENDING_URI = 'stripe-events://pending';
export const EVENT_URI_TEMPLATE = 'stripe-events://events/{id}';
const EVENT_URI_PREFIX = 'stripe-events://events/';

export function eventUri(id: string): string {
  return EVENT_URI_PREFIX + encodeURIComponent(id);
}

/** The event id of a `stripe-events://events/{id}` URI, else null. */
export function eventIdOfUri(uri: string): string | null {
  if (!uri.startsWith(EVENT_URI_PREFIX)) return null;
  const rest = uri.slice(EVENT_URI_PREFIX.length);
  if (rest === '' || rest.includes('/')) return null;
  try {
    return decodeURIComponent(rest);
  } catch {
    return null;
  }
}

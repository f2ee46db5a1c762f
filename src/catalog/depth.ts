/**
 * A bound on how deep a stored event is walked. The webhook refuses deeper envelopes, but a store
 * can hold events written before it did, or by another path; V8's JSON.stringify overflows the
 * stack near 5 000 levels (JSON.parse does not), so everything that renders an event copies it
 * through `boundDepth` first. Its recursion stops at the bound, so it cannot overflow itself.
 */
export const MAX_DEPTH = 64;

/** What stands in for a value nested deeper than the bound. */
export const TOO_DEEP = '[nested too deep]';

/**
 * A copy of a JSON value with everything below `max` levels replaced by `TOO_DEEP`. Keys are
 * copied with define semantics (Object.fromEntries), so a `__proto__` key stays a plain key.
 */
export function boundDepth(value: unknown, max = MAX_DEPTH, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= max) return TOO_DEEP;
  if (Array.isArray(value)) return value.map((v) => boundDepth(v, max, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, boundDepth(v, max, depth + 1)]),
  );
}

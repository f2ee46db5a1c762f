/**
 * A bound on how deep a stored event is walked. The webhook refuses deeper envelopes, but a store
 * can hold events written before it did, or by another path; V8's JSON.stringify overflows the
 * stack near 5 000 levels (JSON.parse does not), so everything that renders an event copies it
 * through `boundDepth` first.
 */
export const MAX_DEPTH = 64;

/** What stands in for a value nested deeper than the bound. */
export const TOO_DEEP = '[nested too deep]';

/** Whether a JSON value has an object or array `max` or more levels down; a loop, not recursion. */
export function deeperThan(value: unknown, max = MAX_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [current, depth] = item;
    if (current === null || typeof current !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Object.values(current)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * A JSON value with everything below `max` levels replaced by `TOO_DEEP`: the value itself when
 * nothing is that deep (the common case costs one walk, no copy), else a copy. Keys are copied with
 * define semantics (Object.fromEntries), so a `__proto__` key stays a plain key.
 */
export function boundDepth(value: unknown, max = MAX_DEPTH): unknown {
  return deeperThan(value, max) ? copyBounded(value, max, 0) : value;
}

/** Recursion stops at `max`, so it cannot overflow the stack. */
function copyBounded(value: unknown, max: number, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= max) return TOO_DEEP;
  if (Array.isArray(value)) return value.map((v) => copyBounded(v, max, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, copyBounded(v, max, depth + 1)]),
  );
}

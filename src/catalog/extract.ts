/** Small, total readers for untyped Stripe JSON: each returns null instead of throwing. */
export type Obj = Record<string, unknown>;

export function obj(value: unknown): Obj | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Obj)
    : null;
}

export function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

export function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function bool(value: unknown): boolean | null {
  return typeof value === 'boolean' ? value : null;
}

export function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** An expandable reference is either an id or the expanded object carrying the id. */
export function refId(value: unknown): string | null {
  return str(value) ?? str(obj(value)?.id);
}

/** Unix seconds → ISO-8601, null when absent. */
export function isoDate(value: unknown): string | null {
  const n = num(value);
  if (n === null) return null;
  const d = new Date(n * 1000);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** A property of an untyped object, own properties only (never Object.prototype's members). */
export function own(o: Obj | null, key: string): unknown {
  return o !== null && Object.hasOwn(o, key) ? o[key] : undefined;
}

/** Follows a path of keys through nested objects and arrays (own properties only). */
export function at(root: unknown, ...path: (string | number)[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (typeof key === 'number') cur = Array.isArray(cur) ? cur[key] : undefined;
    else cur = own(obj(cur), key);
    if (cur === undefined || cur === null) return null;
  }
  return cur;
}

/** A flat string map of a metadata-like object (non-string values dropped). */
export function stringMap(value: unknown): Record<string, string> | null {
  const o = obj(value);
  if (!o) return null;
  const entries = Object.entries(o).filter((e): e is [string, string] => typeof e[1] === 'string');
  return entries.length ? Object.fromEntries(entries) : null;
}

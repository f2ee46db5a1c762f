/**
 * Durations in the config file: `"90s"`, `"90m"`, `"24h"`, `"2d"`, or a plain number of seconds.
 * One whole number and one unit, nothing else ("1h30m" and "1.5h" are refused): a value a person
 * reads at a glance, since these decide when a default applies to money.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The duration in ms, or null when `value` is not one. */
export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value * 1000 : null;
  }
  if (typeof value !== 'string') return null;
  const match = /^(\d{1,9})([smhd])$/.exec(value.trim());
  if (!match) return null;
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

/**
 * `86400000` → `24h`, `5400000` → `90m`, `172800000` → `2d`: the largest unit that divides it
 * (days from two on: "24h" is how people say a day's wait), for messages.
 */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit]!;
    if (ms >= (unit === 'd' ? 2 * size : size) && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}

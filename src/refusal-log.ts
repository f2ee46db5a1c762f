import type { Logger } from './logger.js';

export interface RefusalLogOptions {
  /** The summary line's message, e.g. "webhooks rejected (more, not logged one by one)". */
  summary: string;
  /** Refusals logged one by one before the rest are only counted. */
  individually?: number;
  /** Length of an interval; one summary line per interval that counted any. */
  intervalMs?: number;
}

export const REFUSAL_LOG_DEFAULTS = { individually: 5, intervalMs: 10_000 } as const;

export interface RefusalLog {
  /** A refused request: logged as a warning (`message`), or counted by `reason` for the summary. */
  refused(message: string, reason: string, fields: Record<string, unknown>): void;
  /** Writes the pending summary now and stops the timer (server shutdown). */
  flush(): void;
}

/**
 * Warnings for refused requests (forged webhooks, foreign Hosts and Origins, wrong tokens),
 * bounded: a flood writes its first few refusals in full, then one line per interval with counts
 * by reason, instead of one line per request (a log is a disk and a bill too, and a stranger
 * chooses how many requests to send). One per door, so a flood at one door does not hide the
 * first refusals at another.
 */
export function createRefusalLog(logger: Logger, options: RefusalLogOptions): RefusalLog {
  const individually = options.individually ?? REFUSAL_LOG_DEFAULTS.individually;
  const intervalMs = options.intervalMs ?? REFUSAL_LOG_DEFAULTS.intervalMs;
  let logged = 0;
  let suppressed = new Map<string, number>();
  let timer: NodeJS.Timeout | null = null;

  const arm = () => {
    timer = setTimeout(endInterval, intervalMs);
    timer.unref();
  };

  /** Writes the summary of what was counted; returns whether there was any. */
  const summarize = (): boolean => {
    if (suppressed.size === 0) return false;
    // A list, not an object keyed by reason: the logger redacts keys like `invalid_signature`.
    const reasons = [...suppressed].map(([reason, count]) => ({ reason, count }));
    const count = [...suppressed.values()].reduce((a, b) => a + b, 0);
    suppressed = new Map();
    logger.warn(options.summary, {
      count,
      reasons,
      intervalSeconds: intervalMs / 1000,
    });
    return true;
  };

  // A flood stays summarized until a whole interval passes without a counted refusal; only then
  // are refusals logged one by one again.
  const endInterval = () => {
    timer = null;
    if (summarize()) arm();
    else logged = 0;
  };

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    summarize();
    logged = 0;
  };

  return {
    refused(message, reason, fields) {
      // The interval starts at its first refusal; the timer ends it.
      if (!timer) arm();
      if (logged < individually) {
        logged++;
        logger.warn(message, { reason, ...fields });
        return;
      }
      suppressed.set(reason, (suppressed.get(reason) ?? 0) + 1);
    },
    flush,
  };
}

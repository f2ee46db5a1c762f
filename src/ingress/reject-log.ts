import type { Logger } from '../logger.js';

export interface RejectLogOptions {
  /** Rejections logged one by one before the rest are only counted. */
  individually?: number;
  /** Length of an interval; one summary line per interval that counted any. */
  intervalMs?: number;
}

export const REJECT_LOG_DEFAULTS = { individually: 5, intervalMs: 10_000 } as const;

export interface RejectLog {
  /** A rejected webhook: logged as a warning, or counted toward the interval's summary. */
  rejected(reason: string, fields: Record<string, unknown>): void;
  /** Writes the pending summary now and stops the timer (server shutdown). */
  flush(): void;
}

/**
 * Warnings for rejected webhooks, bounded: a flood of forgeries writes its first few rejections
 * in full, then one line per interval with counts by reason, instead of one line per request (a
 * log is a disk and a bill too).
 */
export function createRejectLog(logger: Logger, options: RejectLogOptions = {}): RejectLog {
  const individually = options.individually ?? REJECT_LOG_DEFAULTS.individually;
  const intervalMs = options.intervalMs ?? REJECT_LOG_DEFAULTS.intervalMs;
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
    logger.warn('webhooks rejected (more, not logged one by one)', {
      count,
      reasons,
      intervalSeconds: intervalMs / 1000,
    });
    return true;
  };

  // A flood stays summarized until a whole interval passes without a counted rejection; only
  // then are rejections logged one by one again.
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
    rejected(reason, fields) {
      // The interval starts at its first rejection; the timer ends it.
      if (!timer) arm();
      if (logged < individually) {
        logged++;
        logger.warn('webhook rejected', { reason, ...fields });
        return;
      }
      suppressed.set(reason, (suppressed.get(reason) ?? 0) + 1);
    },
    flush,
  };
}

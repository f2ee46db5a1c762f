import crypto from 'node:crypto';
import type { EventBuffer } from '../../buffer/buffer.js';
import type { SubscriptionPatch, WebhookSubscription } from '../../buffer/subscriptions.js';
import type { Catalog } from '../../catalog/catalog.js';
import type { RedactKind } from '../../catalog/untrusted.js';
import type { Logger } from '../../logger.js';
import type { AddressAllowance } from './address.js';
import { postCallback, type CallbackResult } from './callback.js';
import { decodeEventsCursor, encodeEventsCursor } from './cursor.js';
import {
  headPosition,
  readAfter,
  startPosition,
  WAKES,
  type Occurrence,
  type Reader,
} from './read.js';
import { signedHeaders } from './signature.js';
import type { EventFilters } from './types.js';

/**
 * Webhook delivery of MCP Events (docs/MCP.md "Events"). Every instance on the store runs one;
 * they share the subscriptions and take a lease on a subscription before posting its next
 * occurrence, so each occurrence goes to each subscription once, whichever instance sends it.
 * Per subscription, occurrences go in arrival order, one at a time: the next is sent only once the
 * callback accepted the previous one (2xx) or it was given up, and the cursor the body carries is
 * the position after it, so the cursor the receiver keeps never skips anything.
 *
 * A failed attempt is retried with exponential backoff (RETRY_BASE_MS doubling, at most
 * RETRY_MAX_MS apart) for RETRY_FOR_MS, then the occurrence is given up (the cursor moves past it)
 * and the next one is tried. 410 means the receiver has dropped the subscription: it ends. 413 is
 * not retried (the extension says so). A subscription not refreshed before `refreshBefore` ends:
 * it is told with a `terminated` body (one try) and removed.
 */

export const RETRY_BASE_MS = 1_000;
export const RETRY_MAX_MS = 15 * 60_000;
/** Hours of retries for one occurrence before it is given up. */
export const RETRY_FOR_MS = 24 * 60 * 60_000;
const LEASE_MS = 60_000;
/**
 * A lease younger than this is still ours through a whole attempt (the callback's timeout is
 * 10 s), so it is not renewed before each post: at 50 subscriptions the renewals were a fifth of
 * the store writes a new event cost.
 */
const RENEW_AFTER_MS = LEASE_MS / 2;
/**
 * A caught-up subscription's stored cursor keeps the time of the last read (it bounds what may
 * have been pruned, over days): rewritten when the read moved past skipped events, or when the
 * stored time is this old, rather than after every read (one store write per subscription and
 * new event, for a time no one needs fresher than the retention's days).
 */
const FRESHEN_AFTER_MS = 60 * 60_000;
const SWEEP_MS = 1_000;
/** Occurrences one subscription sends per turn before others get theirs. */
const PER_TURN = 20;

export interface DelivererOptions {
  buffer: EventBuffer;
  catalog: Catalog;
  redact: readonly RedactKind[];
  logger: Logger;
  allow: AddressAllowance;
  now?: () => number;
  /** Test hook: how long between sweeps when nothing changes (ms). */
  sweepMs?: number;
}

export function backoffMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, failures - 1));
}

export function filtersOf(sub: WebhookSubscription): EventFilters {
  return JSON.parse(sub.arguments) as EventFilters;
}

/** A control body's webhook-id: `msg_<type>_<random>`, as the extension names them. */
function controlId(type: string): string {
  return `msg_${type}_${crypto.randomBytes(9).toString('base64url')}`;
}

/** Whether an idle read's position should replace the stored one (FRESHEN_AFTER_MS). */
function worthStoring(stored: string, read: string): boolean {
  let was;
  try {
    was = decodeEventsCursor(stored);
  } catch {
    return true;
  }
  const now = decodeEventsCursor(read);
  return now.seq !== was.seq || now.at - was.at >= FRESHEN_AFTER_MS;
}

export class WebhookDeliverer {
  /** This instance's lease owner name. */
  readonly owner = `${process.pid}:${crypto.randomUUID()}`;
  private readonly reader: Reader;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly busy = new Set<string>();
  private sweeping: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private readonly options: DelivererOptions) {
    this.now = options.now ?? Date.now;
    this.reader = {
      buffer: options.buffer,
      catalog: options.catalog,
      redact: options.redact,
      now: this.now,
    };
  }

  start(): void {
    if (this.timer) return;
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.options.sweepMs ?? SWEEP_MS);
    this.timer.unref();
    // A new event, here or on another instance: deliver now rather than at the next sweep.
    this.unwatch = this.options.buffer.watch((change) => {
      if (WAKES.has(change.kind)) this.kick();
    });
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    await this.sweeping;
  }

  /** Resolves once no sweep is under way (tests; a kick made before waits for its sweep). */
  async idle(): Promise<void> {
    while (this.sweeping) await this.sweeping;
  }

  /** Runs a sweep now (or right after the one under way). */
  kick(): void {
    if (this.stopped) return;
    if (this.sweeping) {
      this.again = true;
      return;
    }
    this.sweeping = this.sweep()
      .catch((error: unknown) =>
        this.options.logger.warn('mcp events delivery sweep failed', { error: String(error) }),
      )
      .finally(() => {
        this.sweeping = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async sweep(): Promise<void> {
    const subs = await this.options.buffer.subscriptions.all();
    await Promise.all(
      subs
        .filter((sub) => !this.busy.has(sub.id))
        .map(async (sub) => {
          this.busy.add(sub.id);
          try {
            await this.serve(sub);
          } finally {
            this.busy.delete(sub.id);
          }
        }),
    );
  }

  /** One subscription's turn: expiry, then up to PER_TURN occurrences, under its lease. */
  private async serve(initial: WebhookSubscription): Promise<void> {
    const now = this.now();
    if (initial.refreshBefore !== null && initial.refreshBefore <= now) {
      await this.expire(initial);
      return;
    }
    if (initial.nextAttemptAt > now) return;
    const store = this.options.buffer.subscriptions;
    if (!(await store.lease(initial.id, this.owner, LEASE_MS))) return;
    let leasedAt = this.now();
    try {
      for (let sent = 0; sent < PER_TURN && !this.stopped; sent++) {
        // Read again under the lease: a refresh may have changed the secret, an unsubscribe
        // removed it (then nothing more goes out), another instance moved the cursor.
        const sub = await store.get(initial.id);
        if (!sub) return;
        const next = await this.nextOccurrence(sub);
        if (next === 'idle') return;
        if (this.now() - leasedAt >= RENEW_AFTER_MS) {
          if (!(await store.lease(sub.id, this.owner, LEASE_MS))) return;
          leasedAt = this.now();
        }
        const result = await this.post(sub, next.webhookId, next.body);
        if (!(await this.settle(sub, next, result))) return;
      }
    } finally {
      await store.unlease(initial.id, this.owner);
    }
  }

  /** The next body to send: an occurrence, or a gap notice for a stale cursor. */
  private async nextOccurrence(
    sub: WebhookSubscription,
  ): Promise<{ webhookId: string; body: string; cursor: string; eventId: string | null } | 'idle'> {
    const start = await startPosition(this.reader, sub.cursor, sub.name);
    if (start.truncated) {
      const cursor = encodeEventsCursor(start.position);
      return {
        webhookId: controlId('gap'),
        body: JSON.stringify({ type: 'gap', cursor }),
        cursor,
        eventId: null,
      };
    }
    const read = await readAfter(
      this.reader,
      { name: sub.name, filters: filtersOf(sub), maxEvents: 1 },
      start.position,
      true,
    );
    const occurrence: Occurrence | undefined = read.events[0];
    if (!occurrence) {
      // Nothing to send: keep the position the read reached (skipped events, a fresher time).
      if (read.cursor !== sub.cursor && worthStoring(sub.cursor, read.cursor)) {
        await this.options.buffer.subscriptions.advance(sub.id, this.owner, {
          cursor: read.cursor,
        });
      }
      return 'idle';
    }
    return {
      webhookId: occurrence.eventId,
      body: JSON.stringify(occurrence),
      cursor: occurrence.cursor,
      eventId: occurrence.eventId,
    };
  }

  private post(sub: WebhookSubscription, webhookId: string, body: string): Promise<CallbackResult> {
    const headers = signedHeaders(sub.secret, webhookId, sub.id, body, this.now());
    return postCallback(new URL(sub.url), headers, body, this.options.allow);
  }

  /** Records an attempt's outcome; true when the next occurrence may go now. */
  private async settle(
    sub: WebhookSubscription,
    next: { cursor: string; eventId: string | null },
    result: CallbackResult,
  ): Promise<boolean> {
    const store = this.options.buffer.subscriptions;
    const now = this.now();
    if (result.ok) {
      await store.advance(sub.id, this.owner, {
        cursor: next.cursor,
        failures: 0,
        nextAttemptAt: now,
        lastError: null,
        lastDeliveryAt: now,
      });
      return true;
    }
    if (result.status === 410) {
      this.options.logger.info('mcp events subscription ended by its receiver (410)', {
        subscription: sub.id,
      });
      await store.remove(sub.id);
      return false;
    }
    const failures = sub.failures + 1;
    const failingSince = sub.lastDeliveryAt ?? sub.createdAt;
    const giveUp =
      result.status === 413 || now - Math.max(failingSince, this.firstTry(sub)) >= RETRY_FOR_MS;
    const patch: SubscriptionPatch = giveUp
      ? { cursor: next.cursor, failures: 0, nextAttemptAt: now, lastError: result.reason }
      : { failures, nextAttemptAt: now + backoffMs(failures), lastError: result.reason };
    this.options.logger.warn(
      giveUp ? 'mcp events occurrence given up' : 'mcp events delivery failed; will retry',
      { subscription: sub.id, event: next.eventId, reason: result.reason, attempts: failures },
    );
    await store.advance(sub.id, this.owner, patch);
    return giveUp;
  }

  /** When the current occurrence was first tried: reconstructed from the backoff so far. */
  private firstTry(sub: WebhookSubscription): number {
    let spent = 0;
    for (let i = 1; i <= sub.failures; i++) spent += backoffMs(i);
    return sub.nextAttemptAt - spent;
  }

  /** Ends a subscription its client did not refresh: a `terminated` body (one try), then gone. */
  private async expire(sub: WebhookSubscription): Promise<void> {
    const store = this.options.buffer.subscriptions;
    if (!(await store.lease(sub.id, this.owner, LEASE_MS))) return;
    const body = JSON.stringify({
      type: 'terminated',
      error: {
        code: -32011,
        message: 'The subscription expired: it was not refreshed before refreshBefore.',
        data: { kind: 'subscription', reason: 'expired' },
      },
    });
    // Removed first: whatever the callback answers, nothing more is sent.
    await store.remove(sub.id);
    const result = await this.post(sub, controlId('terminated'), body);
    this.options.logger.info('mcp events subscription expired', {
      subscription: sub.id,
      told: result.ok,
    });
  }

  /** Where a new subscription starts: the client's cursor, or now. */
  async initialCursor(
    cursor: string | null,
    name: string,
  ): Promise<{ cursor: string; truncated: boolean }> {
    if (cursor !== null) decodeEventsCursor(cursor);
    const start =
      cursor === null
        ? { position: await headPosition(this.reader, name), truncated: false }
        : await startPosition(this.reader, cursor, name);
    return { cursor: encodeEventsCursor(start.position), truncated: start.truncated };
  }
}

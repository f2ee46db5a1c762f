import type { Logger } from '../../logger.js';
import type { Notice } from './notice.js';
import { DeliveryError, type NotifyTarget } from './targets.js';

/**
 * Deliveries, off the queue's path: `push` only stores the notice (never awaited by a state
 * change); a small pump sends it to each target, retrying a failure with backoff a bounded number
 * of times, each attempt under a timeout, then gives it up (counted, logged without the URL's
 * secret path). The queue is in memory and bounded: when full, the oldest delivery is dropped and
 * counted — a burst of events never grows memory, and the newest news is what is kept.
 */
export interface DeliveryCounts {
  sent: number;
  failed: number;
  dropped: number;
  retried: number;
}

export interface DeliveryQueueOptions {
  targets: readonly NotifyTarget[];
  logger: Logger;
  /** Deliveries held at once (waiting, retrying or sending); default 1000. */
  capacity?: number;
  /** Attempts per delivery; default 5. */
  attempts?: number;
  timeoutMs?: number;
  /** Wait before retry n (1-based), ms; default 1 s doubling, jittered, at most 60 s. */
  backoffMs?: (n: number) => number;
  /** Deliveries in flight at once; default 2. */
  concurrency?: number;
  /** Called as each delivery ends: for metrics. */
  onResult?: (target: string, result: 'sent' | 'failed' | 'dropped' | 'retried') => void;
}

interface Delivery {
  target: NotifyTarget;
  notice: Notice;
  attempt: number;
  /** Not before (ms): set while it waits for its retry. */
  dueAt: number;
}

export class DeliveryQueue {
  private readonly waiting: Delivery[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly aborts = new Set<AbortController>();
  private readonly idle = new Set<() => void>();
  readonly counts: DeliveryCounts = { sent: 0, failed: 0, dropped: 0, retried: 0 };
  private readonly capacity: number;
  private readonly attempts: number;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly backoff: (n: number) => number;

  constructor(private readonly options: DeliveryQueueOptions) {
    this.capacity = options.capacity ?? 1000;
    this.attempts = options.attempts ?? 5;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.concurrency = options.concurrency ?? 2;
    this.backoff =
      options.backoffMs ?? ((n) => Math.min(60_000, 1000 * 2 ** (n - 1) * (0.5 + Math.random())));
  }

  /** Queues `notice` for every target; returns at once. */
  push(notice: Notice): void {
    if (this.closed) return;
    for (const target of this.options.targets) {
      if (this.waiting.length + this.inFlight >= this.capacity && this.waiting.length > 0) {
        const oldest = this.waiting.shift()!;
        this.count(oldest.target.name, 'dropped');
      }
      this.waiting.push({ target, notice, attempt: 0, dueAt: 0 });
    }
    // Sending starts after the caller's turn: push itself only stores.
    queueMicrotask(() => this.pump());
  }

  /** Deliveries waiting or in flight. */
  get size(): number {
    return this.waiting.length + this.inFlight;
  }

  /** Resolves when nothing waits or is in flight (tests; a graceful stop). */
  drained(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  /** Stops: in-flight attempts are aborted, waiting deliveries dropped (not counted as failures). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const abort of this.aborts) abort.abort();
    this.waiting.length = 0;
    this.settle();
  }

  private count(target: string, result: 'sent' | 'failed' | 'dropped' | 'retried'): void {
    this.counts[result]++;
    this.options.onResult?.(target, result);
  }

  private settle(): void {
    if (this.size > 0) return;
    for (const resolve of this.idle) resolve();
    this.idle.clear();
  }

  private pump(): void {
    if (this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const now = Date.now();
    while (this.inFlight < this.concurrency) {
      const index = this.waiting.findIndex((d) => d.dueAt <= now);
      if (index < 0) break;
      const [delivery] = this.waiting.splice(index, 1);
      void this.send(delivery!);
    }
    const next = Math.min(...this.waiting.map((d) => d.dueAt));
    if (Number.isFinite(next) && this.inFlight < this.concurrency) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, next - now));
      // A waiting retry never keeps the process alive.
      this.timer.unref();
    }
  }

  private async send(delivery: Delivery): Promise<void> {
    this.inFlight++;
    delivery.attempt++;
    const abort = new AbortController();
    this.aborts.add(abort);
    const timeout = setTimeout(() => abort.abort(new Error('timed out')), this.timeoutMs);
    timeout.unref();
    try {
      await delivery.target.send(delivery.notice, abort.signal);
      this.count(delivery.target.name, 'sent');
    } catch (error) {
      const retryable = !(error instanceof DeliveryError) || error.retryable;
      const message = abort.signal.aborted ? 'timed out' : (error as Error).message;
      if (!this.closed && retryable && delivery.attempt < this.attempts) {
        this.count(delivery.target.name, 'retried');
        delivery.dueAt = Date.now() + this.backoff(delivery.attempt);
        this.waiting.push(delivery);
      } else if (!this.closed) {
        this.count(delivery.target.name, 'failed');
        this.options.logger.warn('notification given up', {
          target: delivery.target.name,
          kind: delivery.notice.kind,
          id: delivery.notice.event?.id,
          attempts: delivery.attempt,
          error: message,
        });
      }
    } finally {
      clearTimeout(timeout);
      this.aborts.delete(abort);
      this.inFlight--;
      this.pump();
      this.settle();
    }
  }
}

import client from 'prom-client';
import type { EventBuffer } from './buffer/buffer.js';

/**
 * The Prometheus series this process exports. One registry per app instance (never the global
 * one) so that several apps in one test process do not share counters.
 */
export interface Metrics {
  registry: client.Registry;
  received: client.Counter;
  queued: client.Counter<'type'>;
  duplicate: client.Counter;
  ignored: client.Counter;
  rejected: client.Counter<'reason'>;
  ingestSeconds: client.Histogram<'status'>;
}

export function createMetrics(
  buffer: EventBuffer,
  options: { processMetrics?: boolean } = {},
): Metrics {
  const registry = new client.Registry();
  if (options.processMetrics ?? true) {
    client.collectDefaultMetrics({ register: registry, prefix: 'stripe_events_' });
  }
  const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    new client.Counter<L>({
      name: `stripe_events_${name}_total`,
      help,
      labelNames,
      registers: [registry],
    });

  // Queue depth comes from the store at scrape time, so it is right even when another process
  // (the CLI, a second instance) changed it.
  const depth = new client.Gauge<'status'>({
    name: 'stripe_events_queue',
    help: 'Stored events by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      try {
        const { counts } = await buffer.stats();
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      } catch {
        // The store is down: /healthz says so; the scrape still answers with the other series.
      }
    },
  });
  void depth;

  return {
    registry,
    received: counter('received', 'Webhook deliveries received'),
    queued: counter('queued', 'Events stored as new work', ['type']),
    duplicate: counter('duplicate', 'Deliveries of an event already stored'),
    ignored: counter('ignored', 'Verified events of a type the catalog does not map'),
    rejected: counter('rejected', 'Deliveries refused, by reason', ['reason']),
    ingestSeconds: new client.Histogram<'status'>({
      name: 'stripe_events_ingest_duration_seconds',
      help: 'Time from request to answer on POST /stripe/webhook, durable commit included',
      labelNames: ['status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}

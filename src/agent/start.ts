import client from 'prom-client';
import type { EventBuffer } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import type { RedactKind } from '../catalog/untrusted.js';
import type { AgentSettings } from '../config/agent.js';
import type { ConfigFile } from '../config/file.js';
import type { Logger } from '../logger.js';
import type { Sink } from '../dispatch/dispatch.js';
import { createModelClient } from './client.js';
import { AgentLoop, type AgentLoopOptions } from './loop.js';
import { createAgentMetrics } from './metrics.js';
import { Guardrails } from './guardrails.js';
import { costOf, priceOf } from './pricing.js';

export interface StartAgentOptions {
  buffer: EventBuffer;
  catalog: Catalog;
  settings: AgentSettings;
  sink: Sink;
  approval: NonNullable<ConfigFile['approval']>;
  redact: readonly RedactKind[];
  logger: Logger;
  registry: client.Registry;
  enrich?: AgentLoopOptions['enrich'];
  recheck?: AgentLoopOptions['recheck'];
  /** --config `budget`, `limits`, `breaker`, `pricing`. */
  guardrails?: Pick<ConfigFile, 'budget' | 'limits' | 'breaker' | 'pricing'>;
  /** Called when the loop's circuit breaker opens (the notifier). */
  onBreakerOpen?: AgentLoopOptions['onBreakerOpen'];
}

/** Builds and starts the loop; without settings.baseURL the SDK reads ANTHROPIC_BASE_URL itself. */
export async function startAgent(options: StartAgentOptions): Promise<AgentLoop> {
  const g = options.guardrails ?? {};
  const guardrails = new Guardrails(options.buffer.ledger, {
    budget: g.budget,
    limits: g.limits,
    breaker: g.breaker?.failures ? { threshold: g.breaker.failures } : undefined,
    price: (model, usage) => {
      const price = priceOf(model, g.pricing);
      return price ? costOf(usage, price) : null;
    },
  });
  const pausedGauge = new client.Gauge({
    name: 'stripe_events_agent_paused',
    help: 'Whether the agent loop is paused, by reason (manual, budget, breaker)',
    labelNames: ['reason'],
    registers: [options.registry],
  });
  const loop = new AgentLoop({
    guardrails,
    pausedGauge,
    buffer: options.buffer,
    catalog: options.catalog,
    client: createModelClient({
      apiKey: options.settings.apiKey,
      maxRetries: 4,
      baseURL: options.settings.baseURL,
    }),
    sink: options.sink,
    logger: options.logger.child({ component: 'agent' }),
    metrics: createAgentMetrics(options.registry),
    model: options.settings.model,
    concurrency: options.settings.concurrency,
    maxTurns: options.settings.maxTurns,
    maxTokens: options.settings.maxTokens,
    dryRun: options.settings.dryRun,
    approval: options.approval,
    redact: options.redact,
    leaseMs: options.settings.leaseMs,
    enrich: options.enrich,
    onBreakerOpen: options.onBreakerOpen,
    recheck: options.recheck,
  });
  loop.start();
  return loop;
}

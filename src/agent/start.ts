import Anthropic from '@anthropic-ai/sdk';
import type client from 'prom-client';
import type { EventBuffer } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import type { RedactKind } from '../catalog/untrusted.js';
import type { AgentSettings } from '../config/agent.js';
import type { ConfigFile } from '../config/file.js';
import type { Logger } from '../logger.js';
import type { Sink } from './dispatch.js';
import { AgentLoop, type AgentLoopOptions } from './loop.js';
import { createAgentMetrics } from './metrics.js';

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
}

/** Builds and starts the loop; the SDK reads ANTHROPIC_BASE_URL itself. */
export async function startAgent(options: StartAgentOptions): Promise<AgentLoop> {
  const loop = new AgentLoop({
    buffer: options.buffer,
    catalog: options.catalog,
    client: new Anthropic({ apiKey: options.settings.apiKey, maxRetries: 4 }),
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
  });
  loop.start();
  return loop;
}

import type Stripe from 'stripe';
import type { EventBuffer } from '../buffer/buffer.js';
import { openParkedStore, type ParkedStore } from '../buffer/parked.js';
import { createCatalog, type Catalog, type EventOverrides } from '../catalog/catalog.js';
import { Enricher, type Enrich } from '../catalog/enrich.js';
import { LIST_PRICES, priceOf } from '../agent/pricing.js';
import type { ConfigFile } from '../config/file.js';
import { checkModuleHandlers, checkPricing } from '../config/names.js';
import { createSink, moduleHandlerNames, type Sink } from '../dispatch/dispatch.js';
import type { Logger } from '../logger.js';
import type { BackfillRunner } from '../operations/backfill.js';
import { createRecheck, type Recheck } from '../operations/fresh.js';
import { createQueueOperations, type QueueOperations } from '../operations/queue.js';
import { createObjectReader } from '../stripe/objects.js';
import { openStore, type OpenStoreSettings } from './store.js';

/** What a process needs to build its services; ServeConfig is one (plus `ifMissing`). */
export interface ServiceSettings extends OpenStoreSettings {
  /** `events` of the --config file, applied to the default catalog. */
  catalogOverrides?: EventOverrides;
  /** Where decided tool calls go; default: recorded in the history only. */
  dispatch?: NonNullable<ConfigFile['dispatch']>;
  /** The --config file's directory: a `module` dispatch path is relative to it. */
  configDir?: string;
  /** The --config file's path, for errors naming it. */
  configFile?: string;
  /** The agent loop's model, when this process runs the loop: `pricing` and `budget` name it. */
  agentModel?: string;
  /** The --config file's `budget` and `pricing`, checked against `agentModel`. */
  guardrails?: Pick<ConfigFile, 'budget' | 'pricing'>;
  /** STRIPE_SECRET_KEY: backfill and --enrich need it. Never logged. */
  stripeSecretKey?: string | null;
  stripeApiBase?: string | null;
  /** --enrich: look up facts events lack (needs the key). */
  enrich?: boolean;
}

/** Everything the doors (HTTP, MCP, agent, CLI, console) work from, built once per process. */
export interface Services {
  store: EventBuffer;
  catalog: Catalog;
  /** One sink for the agent loop and approve_action: a module sink loads its module once. */
  sink: Sink;
  /** The Stripe API client; null without STRIPE_SECRET_KEY. */
  stripe: Stripe | null;
  /** Thin notifications that wait for a key (in Redis when that is the store, else the data dir). */
  parked: ParkedStore;
  /** Backfill from the Events API; undefined without STRIPE_SECRET_KEY. */
  runBackfill?: BackfillRunner;
  /** --enrich lookups; undefined when off. */
  enrich?: Enrich;
  /** Re-reads an event's object before acting (disabled without STRIPE_SECRET_KEY). */
  recheck: Recheck;
  /** The queue operations every door calls. */
  operations: QueueOperations;
  /** Closes the store (last: callers stop their users of it first). */
  close(): Promise<void>;
}

/**
 * The composition, once: `serve`, `agent`, `stdio` (listening or attached) and every CLI command
 * build their services here, so a door never assembles its own store, catalog or sink.
 */
export async function composeServices(
  settings: ServiceSettings,
  logger?: Logger,
): Promise<Services> {
  // What the config file names is checked against what it names before the store is opened, so a
  // typo exits 2 having changed nothing (not even the stored policy).
  const setting = `--config ${settings.configFile ?? '<file>'}`;
  if (settings.agentModel !== undefined) {
    checkPricing(
      settings.guardrails ?? {},
      settings.agentModel,
      { priceOf, list: LIST_PRICES },
      setting,
      { budget: true },
    );
  }
  const catalog = createCatalog(settings.catalogOverrides ?? {});
  const dispatch = settings.dispatch ?? { type: 'record' };
  const sink = await createSink(dispatch, settings.configDir);
  if (dispatch.type === 'module') {
    checkModuleHandlers(
      await moduleHandlerNames(dispatch.path, settings.configDir),
      dispatch.path,
      catalog.entries().map((def) => def.tool),
      setting,
    );
  }
  const store = await openStore(settings, logger);
  try {
    // The Stripe SDK, express (via the ingress) and the backfill load only with a key: every
    // `events` command composes too, and should start quickly.
    const stripeApi = settings.stripeSecretKey ? await import('../stripe/client.js') : null;
    const stripe =
      stripeApi && settings.stripeSecretKey
        ? stripeApi.createStripeClient({
            secretKey: settings.stripeSecretKey,
            apiBase: settings.stripeApiBase ?? null,
          })
        : null;
    const parked = openParkedStore(store, settings.dataDir);
    let runBackfill: BackfillRunner | undefined;
    if (stripe) {
      const { backfill, parseSince } = await import('../ingress/backfill.js');
      runBackfill = ({ since, types, onProgress }) =>
        backfill({
          stripe,
          buffer: store,
          catalog,
          parked,
          since: parseSince(since ?? '24h'),
          types,
          onProgress,
        });
    }
    const enrich =
      settings.enrich && stripe && stripeApi
        ? enricher(stripe, settings, stripeApi.stripeErrorMessage, logger)
        : undefined;
    // The same client as backfill and --enrich: one connection pool, one retry policy.
    const recheck = createRecheck(
      stripe ? createObjectReader(stripe, { secretKey: settings.stripeSecretKey }) : null,
    );
    const operations = createQueueOperations({
      store,
      sink,
      backfill: runBackfill,
      recheck,
      catalog,
    });
    return {
      store,
      catalog,
      sink,
      stripe,
      parked,
      runBackfill,
      enrich,
      recheck,
      operations,
      close: () => store.close(),
    };
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}

/** --enrich: facts the events lack, for the agent's decisions and the MCP event views. */
function enricher(
  stripe: Stripe,
  settings: ServiceSettings,
  stripeErrorMessage: (error: unknown, secretKey: string) => string,
  logger?: Logger,
): Enrich {
  const lookups = new Enricher(
    {
      charge: async (id) =>
        (await stripe.charges.retrieve(id)) as unknown as Record<string, unknown>,
      customer: async (id) =>
        (await stripe.customers.retrieve(id)) as unknown as Record<string, unknown>,
    },
    {
      onError: (error, what) =>
        logger?.warn('enrichment lookup failed; going on without it', {
          what,
          reason: stripeErrorMessage(error, settings.stripeSecretKey ?? ''),
        }),
    },
  );
  return (type, facts) => lookups.enrich(type, facts);
}
